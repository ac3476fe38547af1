"""Model Monitor in the cloud: where an endpoint's monitoring lives in S3, and its baseline.

A schedule's job (the monitoring image, `python3 -m monitoring.job`) compares each window of captured traffic
with `baseline/statistics.json` (the reference profiles, vocabulary and test scores of the model version the
endpoint serves) under the limits of `baseline/constraints.json` (configs/monitoring.yaml). Both are written
here from the registered package's lineage: its metadata names the S3 folders where the pipeline's preprocess
and evaluate steps wrote their `profile` and `evaluation` outputs, the same folders the local monitor reads.
`pravah schedule deploy` writes them for the version the endpoint serves, and `pravah deploy --target
sagemaker` again for each version it deploys.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from aws.environments import Environment
from aws.requests import Aws, download_prefix, s3_location
from foundation.errors import PravahError


def monitoring_prefix(environment: Environment, endpoint: str) -> str:
    """An endpoint's monitoring folder: `baseline/` (statistics.json, constraints.json) and `reports/`."""
    return f"s3://{environment.bucket}/monitoring/{endpoint}"


def capture_destination(environment: Environment, endpoint: str) -> str:
    """The DataCaptureConfig destination of an endpoint: SageMaker writes `/{endpoint}/{variant}/yyyy/mm/dd/hh/`
    below it, and a schedule's job gets that window of it."""
    return f"s3://{environment.bucket}/capture/{endpoint}"


def served_package(aws: Aws, endpoint: str) -> str | None:
    """The model package behind the endpoint's first variant; None when there is no such endpoint (yet)."""
    described = aws.read("sagemaker", "describe_endpoint", EndpointName=endpoint)
    config = described and aws.read("sagemaker", "describe_endpoint_config",
                                    EndpointConfigName=described["EndpointConfigName"])  # fmt: skip
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
            aws.say(f"(dry run: cannot read {package_arn}; its baseline would be written to "
                    f"{monitoring_prefix(aws.environment, endpoint)}/baseline/)")  # fmt: skip
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
    baseline.update(package=package_arn, model=package.get("ModelPackageGroupName"),
                    version=package.get("ModelPackageVersion"))  # fmt: skip
    folder = f"{monitoring_prefix(aws.environment, endpoint)}/baseline"
    for name, content in (("statistics.json", baseline), ("constraints.json", constraints)):
        bucket, key = s3_location(f"{folder}/{name}")
        aws.call("s3", "put_object", Bucket=bucket, Key=key, ContentType="application/json",
                 Body=json.dumps(content, ensure_ascii=False).encode())  # fmt: skip
    return folder
