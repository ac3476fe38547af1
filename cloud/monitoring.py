"""Monitoring in the cloud without Model Monitor (closed to new customers; AWS's advice: keep Data Capture,
run the drift job on a schedule, alert through SNS and CloudWatch): where an endpoint's monitoring lives in S3,
its baseline, and its monitoring pipeline.

The monitoring pipeline (`pravah-monitor-ENDPOINT`) is a SageMaker pipeline of one processing step on the
monitoring image (`python3 -m monitoring.scheduled`) or, when the environment gives the job more than one instance
(`monitoring_instances`), a scan step on that many instances and a judge step on one, compiled here with the SDK
and started by an EventBridge rule (`pravah schedule deploy`, or the template): it judges the window before its
start against `baseline/statistics.json` (the reference profiles, vocabulary and test scores of the model version
the endpoint serves) under the limits of `baseline/constraints.json` (configs/monitoring.yaml), writes its reports
under `reports/EXECUTION/`, puts its figures into CloudWatch and publishes a violation to the endpoint's SNS
topic. The baseline is written here from the registered package's lineage: its metadata names the S3 folders where
the pipeline's preprocess and evaluate steps wrote their `profile` and `evaluation` outputs, the same folders the
local monitor reads. `pravah schedule deploy` writes it for the version the endpoint serves, and
`pravah deploy --target sagemaker` again for each version it deploys.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws.environments import Environment
from aws.requests import Aws, download_prefix
from foundation.errors import PravahError


def monitoring_prefix(environment: Environment, endpoint: str) -> str:
    """An endpoint's monitoring folder: `baseline/` (statistics.json, constraints.json) and `reports/`."""
    return f"s3://{environment.bucket}/monitoring/{endpoint}"


def monitoring_pipeline_name(endpoint: str) -> str:
    return f"pravah-monitor-{endpoint}"


def monitoring_pipeline_description(endpoint: str) -> str:
    return f"pravah: drift and estimated quality of endpoint {endpoint}"


def alert_topic_name(endpoint: str) -> str:
    """The endpoint's SNS topic: the template's alarms and the monitoring pipeline's drift alerts."""
    return f"pravah-{endpoint}-alarms"


def alert_topic_arn(environment: Environment, endpoint: str) -> str:
    return f"arn:aws:sns:{environment.region}:{environment.account}:{alert_topic_name(endpoint)}"


def monitoring_definition(
    environment: Environment, endpoint: str, window_seconds: int, retrain_pipeline: str = ""
) -> dict[str, Any]:
    """The monitoring pipeline's definition, compiled by the SDK offline and checked as SageMaker would check
    it: the drift job on the monitoring image over the `window_seconds` before each execution's start."""
    import logging
    import warnings

    from pipelines.sagemaker.compiler import check_definition, offline

    offline(environment)  # before the SDK's imports, which create clients
    import boto3
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow import Pipeline

    prefix = monitoring_prefix(environment, endpoint)
    reports = Join(on="/", values=[f"{prefix}/reports", ExecutionVariables.PIPELINE_EXECUTION_ID])
    arguments = [
        "--endpoint",
        endpoint,
        "--capture",
        capture_destination(environment, endpoint),
        "--window-seconds",
        str(window_seconds),
        "--started",
        Join(on="", values=[ExecutionVariables.START_DATETIME]),
        "--region",
        environment.region,
        "--topic",
        alert_topic_arn(environment, endpoint),
        "--reports",
        reports,
    ]
    if retrain_pipeline:
        arguments += ["--retrain-pipeline", retrain_pipeline]
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = PipelineSession(
                boto_session=boto3.Session(region_name=environment.region), default_bucket=environment.bucket
            )

            steps = _monitoring_steps(environment, session, prefix, reports, arguments)
            pipeline = Pipeline(name=monitoring_pipeline_name(endpoint), steps=steps, sagemaker_session=session)
            definition = json.loads(pipeline.definition())
    finally:
        logging.disable(logging.NOTSET)
    check_definition(definition, environment=environment)
    return definition


def _monitoring_steps(environment: Environment, session, prefix: str, reports, arguments: list) -> list:
    """One step on one instance; or, for `monitoring_instances` above one, a scan step on that many instances
    (each scanning its share of the window's files) and a judge step merging what they counted."""
    from sagemaker.core.processing import Processor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ProcessingStep

    def processor(instances: int) -> Processor:
        return Processor(
            role=environment.role_arn,
            image_uri=environment.monitoring_image_uri,
            instance_count=instances,
            instance_type=environment.instance_types.processing,
            entrypoint=["python3", "-m", "monitoring.scheduled"],
            volume_size_in_gb=20,
            max_runtime_in_seconds=3600,
            sagemaker_session=session,
            base_job_name="pravah-monitor",
        )

    def folder(name: str, local: str, uri) -> ProcessingInput:
        return ProcessingInput(
            input_name=name,
            s3_input={"s3_uri": uri, "local_path": local, "s3_data_type": "S3Prefix", "s3_input_mode": "File"},
        )

    def written(name: str, uri) -> ProcessingOutput:
        return ProcessingOutput(
            output_name=name,
            s3_output={
                "s3_uri": uri,
                "local_path": "/opt/ml/processing/resultdata",
                "s3_upload_mode": "EndOfJob",
            },
        )

    baseline = folder("baseline", "/opt/ml/processing/baseline", f"{prefix}/baseline/")
    instances = environment.monitoring_instances
    if instances == 1:
        run = processor(1).run(inputs=[baseline], outputs=[written("reports", reports)], arguments=arguments)
        steps = [ProcessingStep(name="monitor", step_args=run)]
    else:  # each instance scans its share of the window's files, then one merges what they counted
        parts = Join(on="/", values=[f"{prefix}/reports", ExecutionVariables.PIPELINE_EXECUTION_ID, "parts"])
        run = processor(instances).run(
            inputs=[baseline], outputs=[written("parts", parts)], arguments=[*arguments, "--stage", "scan"]
        )
        scan = ProcessingStep(name="scan", step_args=run)
        scanned = scan.properties.ProcessingOutputConfig.Outputs["parts"].S3Output.S3Uri
        run = processor(1).run(
            inputs=[baseline, folder("parts", "/opt/ml/processing/parts", scanned)],
            outputs=[written("reports", reports)],
            arguments=[*arguments, "--stage", "judge"],
        )
        steps = [scan, ProcessingStep(name="judge", step_args=run)]
    return steps


def capture_destination(environment: Environment, endpoint: str) -> str:
    """The DataCaptureConfig destination of an endpoint: SageMaker writes `/{endpoint}/{variant}/yyyy/mm/dd/hh/`
    below it, and the monitoring pipeline's job reads its window of it."""
    return f"s3://{environment.bucket}/capture/{endpoint}"


def served_package(aws: Aws, endpoint: str) -> str | None:
    """The model package behind the endpoint's first variant; None when there is no such endpoint (yet)."""
    described = aws.read("sagemaker", "describe_endpoint", EndpointName=endpoint)
    config = described and aws.read(
        "sagemaker", "describe_endpoint_config", EndpointConfigName=described["EndpointConfigName"]
    )
    model = config and aws.read("sagemaker", "describe_model", ModelName=config["ProductionVariants"][0]["ModelName"])
    if not model:
        return None
    return (model.get("Containers") or [model.get("PrimaryContainer", {})])[0].get("ModelPackageName")


def upload_baseline(aws: Aws, endpoint: str, package_arn: str, constraints: dict[str, Any]) -> str | None:
    """Build the baseline of `package_arn` from the outputs its lineage names, and write it with `constraints`
    under the endpoint's monitoring prefix; the baseline's S3 folder, or None for a package whose pipeline
    wrote no text profile (a table's model: there is nothing for the monitoring job to compare)."""
    from monitoring.monitor import BASELINE_OUTPUTS, baseline_of_outputs, baseline_sources

    package = aws.read("sagemaker", "describe_model_package", ModelPackageName=package_arn)
    if package is None:
        if aws.dry_run:
            aws.say(
                f"(dry run: cannot read {package_arn}; its baseline would be written to "
                f"{monitoring_prefix(aws.environment, endpoint)}/baseline/)"
            )
            return None
        raise PravahError(f"no model package {package_arn}")
    metadata = package.get("CustomerMetadataProperties", {})
    produced = baseline_sources({key.removeprefix("pravah."): value for key, value in metadata.items()})
    if len(produced) < len(BASELINE_OUTPUTS):
        return None
    with tempfile.TemporaryDirectory(prefix="pravah-baseline-") as scratch:
        folders = {name: Path(scratch) / name for name in BASELINE_OUTPUTS}
        for name, folder in folders.items():
            if download_prefix(aws.client("s3"), produced[name], folder) == 0:
                raise PravahError(f"{produced[name]} is empty: the {name} output of {package_arn} is gone from S3")
        if not (folders["profile"] / "reference.json").is_file():
            return None  # a table's profile, not a text reference profile
        baseline = baseline_of_outputs(folders["profile"], folders["evaluation"])
    baseline.update(
        package=package_arn, model=package.get("ModelPackageGroupName"), version=package.get("ModelPackageVersion")
    )
    folder = f"{monitoring_prefix(aws.environment, endpoint)}/baseline"
    for name, content in (("statistics.json", baseline), ("constraints.json", constraints)):
        aws.put_json(f"{folder}/{name}", content)
    return folder


def deploy_monitoring_pipeline(aws: Aws, endpoint: str, window_seconds: int, retrain_pipeline: str = "") -> str:
    """The endpoint's alert topic and its monitoring pipeline, created or updated; the pipeline's name."""
    from pipelines.sagemaker.pipeline import put_pipeline

    ensure_alert_topic(aws, endpoint)
    definition = monitoring_definition(aws.environment, endpoint, window_seconds, retrain_pipeline)
    name = monitoring_pipeline_name(endpoint)
    put_pipeline(aws, name, definition, monitoring_pipeline_description(endpoint))
    return name


def ensure_alert_topic(aws: Aws, endpoint: str) -> str:
    """The endpoint's alert topic, created when it is missing; its ARN."""
    arn = alert_topic_arn(aws.environment, endpoint)
    if not aws.exists("sns", "get_topic_attributes", TopicArn=arn):
        aws.call("sns", "create_topic", Name=alert_topic_name(endpoint))
    return arn


def upload_baseline_of(aws, endpoint: str, package: str | None, config: str | None, say: Callable[[str], None]) -> None:
    """The monitoring baseline of the version an endpoint serves, for its monitoring pipeline; `say` hears what
    was done (or why not)."""
    from monitoring.config import load_monitoring_config

    if package is None:
        say(
            f"endpoint {endpoint} serves no model package yet: its monitoring baseline is written when "
            "pravah deploy --target sagemaker deploys a version to it"
        )
        return
    constraints = load_monitoring_config(Path(config) if config else None).constraints()
    folder = upload_baseline(aws, endpoint, package, constraints)
    if folder:
        say(f"monitoring baseline of {package}: {folder}/")
    elif not aws.dry_run:
        say(f"{package} has no monitoring baseline (its pipeline wrote no text profile): not monitored")
