"""`pravah pipeline emulate`: SageMaker's part in running a compiled pipeline, played offline.

S3 and the SageMaker API are a moto server on this machine, playing the environment's own account. The pipeline
is created there by the same code as `pravah pipeline upsert` (so the uploads are the ones AWS would get), an
execution is started as `pravah pipeline start` starts one, and from then on only the definition JSON read back
from the server is used, not the spec: it is checked as CreatePipeline would check it and run by the engine
(emulator.engine). A registered package is then approved, served and asked for one prediction, whose traffic is
captured and judged by the endpoint's monitoring pipeline, started as its EventBridge rule starts it
(emulator.scheduled_monitoring), and scored over S3 by a Batch Transform job (emulator.batch_transform).

Differences from AWS, on purpose: steps run one at a time; step caching and retries are not emulated; an
image is what its Dockerfile installs into a virtualenv of its Python, with its files, ENV and ENTRYPOINT, not
the image Docker would build.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aws.definition import all_steps
from aws.environments import Environment
from aws.requests import Aws, s3_location
from aws.service_model import typed_value
from emulator import containers
from emulator.engine import Emulation, Execution, ExecutionFailed
from foundation.errors import PravahError
from pipelines.spec import Pipeline


@contextmanager
def moto_server(account: str | None = None) -> Iterator[str]:
    """A moto server on a free local port, and this process's AWS clients pointed at it (fake credentials);
    with `account`, the server is that account (ARNs carry it, as the environment's own do)."""
    import logging

    from moto.server import ThreadedMotoServer

    for noisy in ("werkzeug", "botocore.credentials", "botocore.configprovider"):  # a line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    names = ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MOTO_ACCOUNT_ID")
    saved = {key: os.environ.get(key) for key in names}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="emulated", AWS_SECRET_ACCESS_KEY="emulated")
    if account:  # moto reads it at each request
        os.environ["MOTO_ACCOUNT_ID"] = account
    try:
        yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def emulate(
    pipeline: Pipeline,
    environment: Environment,
    overrides: dict[str, str],
    staged: dict[str, Path],
    folder: Path,
    sample: dict[str, Any] | None,
    say: Callable[[str], None] = print,
) -> Emulation:
    """Compile, upsert and start `pipeline` on a moto server, run the execution from its definition, and serve
    what it registered. `staged` are S3 URIs to fill from local files first (data the bucket would hold);
    `sample` the body of the prediction to ask for (none: no serving)."""
    from cloud.bootstrap import bootstrap
    from emulator.batch_transform import transform_sample
    from emulator.endpoint import serve
    from emulator.images import declared_image
    from emulator.scheduled_monitoring import monitor_exchange
    from inference.lambda_package import build_into
    from pipelines.sagemaker.compiler import check_definition, compile_pipeline
    from pipelines.sagemaker.pipeline import start, upsert

    containers.check_namespaces()
    compiled = compile_pipeline(pipeline, environment)
    with moto_server(environment.account) as url:
        aws = Aws(environment, say=lambda line: None)
        bootstrap(aws, [], build_into, say)  # an empty account, made ready as a user makes it
        for uri, local in staged.items():
            _stage(aws, uri, local)
        upsert(aws, pipeline, compiled)
        arn = start(aws, pipeline, overrides)
        say(f"started {arn} on the emulator (moto at {url})")
        described = aws.call("sagemaker", "describe_pipeline", PipelineName=pipeline.name)
        definition = json.loads(described["PipelineDefinition"])
        values = _parameter_values(definition, aws, arn)
        check_definition(definition, values, environment)
        images = {image: declared_image(image, say) for image in _images(definition)}
        emulation = Emulation(arn, folder=folder)
        execution = Execution(definition, values, emulation, aws, url, images, folder, say)
        try:
            execution.run()
            emulation.status = "Succeeded"
        except ExecutionFailed as exc:
            emulation.status, emulation.failure = "Failed", str(exc)
            return emulation
        if emulation.model_package_arn and sample is not None:
            emulation.prediction = serve(aws, url, images, emulation.model_package_arn, sample, folder, say)
            emulation.monitoring = monitor_exchange(
                aws, url, emulation.model_package_arn, sample, emulation.prediction, folder, say
            )
            emulation.transformed = transform_sample(aws, url, emulation.model_package_arn, sample, images, folder, say)
    return emulation


def _stage(aws: Aws, uri: str, local: Path) -> None:
    from pipelines.sagemaker.source_archive import Upload

    if not local.exists():
        raise PravahError(f"--stage {local}={uri}: no such file or folder")
    for key, body in Upload(uri, path=local).objects():
        aws.call("s3", "put_object", Bucket=s3_location(uri)[0], Key=key, Body=body)


def _parameter_values(definition: dict[str, Any], aws: Aws, arn: str) -> dict[str, Any]:
    """The execution's parameters: the values it was started with, else the definition's defaults."""
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    values = {name: p.get("DefaultValue") for name, p in declared.items()}
    answer = aws.read("sagemaker", "list_pipeline_parameters_for_execution", PipelineExecutionArn=arn) or {}
    for given in answer.get("PipelineParameters", []):
        values[given["Name"]] = given["Value"]
    return {name: typed_value(value, declared[name]["Type"]) for name, value in values.items()}


def _images(definition: dict[str, Any]) -> set[str]:
    found = set()
    for step in all_steps(definition):
        arguments = step.get("Arguments", {})
        for image in (
            arguments.get("AppSpecification", {}).get("ImageUri"),
            arguments.get("AlgorithmSpecification", {}).get("TrainingImage"),
            arguments.get("PrimaryContainer", {}).get("Image"),
            arguments.get("TrainingJobDefinition", {}).get("AlgorithmSpecification", {}).get("TrainingImage"),
            *(c.get("Image") for c in arguments.get("InferenceSpecification", {}).get("Containers", [])),
        ):
            if isinstance(image, str):
                found.add(image)
    return found
