"""`pravah pipeline emulate`: SageMaker's part in running a compiled pipeline, played offline.

S3 and the SageMaker API are a moto server on this machine. The pipeline is created there by the same code as
`pravah pipeline upsert` (so the uploads are the ones AWS would get), an execution is started as `pravah
pipeline start` starts one, and from then on only the definition JSON read back from the server is used, not
the spec: each step's Arguments with Parameters, `Get`, `Std:Join` and `Std:JsonGet` (PropertyFiles) resolved
as SageMaker resolves them, the resulting request (CreateProcessingJob, CreateTrainingJob, CreateModelPackage,
CreateModel) checked against botocore's service model and sent to the server, and the job's container contract
run (emulator.containers) on the image's stand-in (emulator.images). Conditions choose
their branch; a Fail step fails the execution with its message. A registered package is then served as its
container would serve it and asked for one prediction, which is then captured and monitored as a Model Monitor
schedule would (emulator.model_monitor).

Differences from AWS, on purpose: steps run one at a time; step caching and retries are not emulated; the
images are virtualenvs of the images' Python with their open-source toolkits, not the images themselves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws.environments import Environment
from aws.requests import Aws, s3_location
from aws.service_model import STEP_OPERATIONS, all_steps, as_text, request_problems, typed_value
from emulator import containers
from emulator.containers import JobFailed, Runtime
from emulator.tuning import run_tuning
from foundation.errors import PravahError
from pipelines.spec import Pipeline

STEP_REFERENCE = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.(.+)$")
PATH_PART = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")
COMPARISONS = {"Equals": lambda a, b: a == b, "GreaterThan": lambda a, b: a > b,
               "GreaterThanOrEqualTo": lambda a, b: a >= b, "LessThan": lambda a, b: a < b,
               "LessThanOrEqualTo": lambda a, b: a <= b}  # fmt: skip


class ExecutionFailed(PravahError):
    """The emulated execution failed (a step's job, a Fail step, or a value SageMaker could not resolve)."""


@dataclass
class StepRecord:
    name: str
    kind: str
    status: str  # Succeeded, Failed, or Skipped (a branch not taken)
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Emulation:
    execution_arn: str
    status: str = "Executing"
    failure: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    model_package_arn: str = ""
    prediction: Any = None
    monitoring: dict[str, Any] | None = None  # the monitoring job's metrics on the served prediction's capture
    transformed: list[dict[str, Any]] | None = None  # a Batch Transform job's answers to the sample's records
    folder: Path | None = None


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free local port, and this process's AWS clients pointed at it (fake credentials)."""
    import logging

    from moto.server import ThreadedMotoServer

    for noisy in ("werkzeug", "botocore.credentials", "botocore.configprovider"):  # a line per request otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    saved = {key: os.environ.get(key) for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="emulated", AWS_SECRET_ACCESS_KEY="emulated")
    try:
        yield url
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


def emulate(pipeline: Pipeline, environment: Environment, overrides: dict[str, str], staged: dict[str, Path],
            folder: Path, sample: dict[str, Any] | None, say: Callable[[str], None] = print) -> Emulation:  # fmt: skip
    """Compile, upsert and start `pipeline` on a moto server, run the execution from its definition, and serve
    what it registered. `staged` are S3 URIs to fill from local files first (data the bucket would hold);
    `sample` the body of the prediction to ask for (none: no serving)."""
    from emulator.batch_transform import transform_sample
    from emulator.images import stand_in
    from emulator.model_monitor import monitor_exchange
    from pipelines.sagemaker.compiler import check_definition, compile_pipeline
    from pipelines.sagemaker.pipeline import start, upsert

    containers.check_namespaces()
    compiled = compile_pipeline(pipeline, environment)
    archive = next(u for u in compiled.uploads if u.s3_uri.endswith("/source.tar.gz"))
    requirements = _member(archive.data, "requirements.txt")
    with moto_server() as url:
        aws = Aws(environment, say=lambda line: None)
        aws.call("s3", "create_bucket", Bucket=environment.bucket,
                 CreateBucketConfiguration={"LocationConstraint": environment.region})  # fmt: skip
        for uri, local in staged.items():
            _stage(aws, uri, local)
        upsert(aws, pipeline, compiled)
        arn = start(aws, pipeline, overrides)
        say(f"started {arn} on the emulator (moto at {url})")
        described = aws.call("sagemaker", "describe_pipeline", PipelineName=pipeline.name)
        definition = json.loads(described["PipelineDefinition"])
        values = _parameter_values(definition, aws, arn)
        check_definition(definition, values, environment)
        images = {image: stand_in(image, requirements, say) for image in _images(definition)}
        emulation = Emulation(arn, folder=folder)
        execution = _Execution(definition, values, emulation, aws, url, images, folder, say)
        try:
            execution.run()
            emulation.status = "Succeeded"
        except ExecutionFailed as exc:
            emulation.status, emulation.failure = "Failed", str(exc)
            return emulation
        if emulation.model_package_arn and sample is not None:
            emulation.prediction = execution.serve(emulation.model_package_arn, sample)
            emulation.monitoring = monitor_exchange(aws, url, emulation.model_package_arn, sample,
                                                    emulation.prediction, folder, say)  # fmt: skip
            emulation.transformed = transform_sample(aws, url, emulation.model_package_arn, sample, images,
                                                     folder, say)  # fmt: skip
    return emulation


def _member(archive: bytes, name: str) -> bytes:
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return tar.extractfile(name).read()


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
            arguments.get("TrainingJobDefinition", {}).get("AlgorithmSpecification", {}).get("TrainingImage"),
            *(c.get("Image") for c in arguments.get("InferenceSpecification", {}).get("Containers", [])),
        ):
            if isinstance(image, str):
                found.add(image)
    return found


class _Execution:
    def __init__(self, definition, values, emulation: Emulation, aws: Aws, url: str, images: dict[str, Path],
                 folder: Path, say: Callable[[str], None]):  # fmt: skip
        self.definition, self.values, self.emulation, self.aws, self.say = definition, values, emulation, aws, say
        self.steps = {step["Name"]: step for step in all_steps(definition)}
        self.needs = {name: _needs(step) for name, step in self.steps.items()}
        self.execution_id = emulation.execution_arn.rsplit("/", 1)[-1]
        self.properties: dict[str, dict[str, Any]] = {}  # a finished step's Describe answer
        self.url, self.images, self.folder = url, images, folder
        self.s3 = aws.client("s3")

    # -- order ----------------------------------------------------------------------------------------------
    def run(self) -> None:
        pending, done, skipped = [s["Name"] for s in self.definition["Steps"]], set(), set()
        while pending:
            ready = [name for name in pending if self.needs[name] <= done | skipped]
            if not ready:
                raise ExecutionFailed(f"steps wait on each other: {', '.join(pending)}")
            name = ready[0]
            pending.remove(name)
            if self.needs[name] & skipped:
                skipped.add(name)
                self.emulation.steps.append(StepRecord(name, self.steps[name]["Type"], "Skipped"))
                continue
            chosen, other = self._run_step(name)
            done.add(name)
            pending += chosen
            for branch in other:
                skipped.add(branch)
                self.emulation.steps.append(StepRecord(branch, self.steps[branch]["Type"], "Skipped",
                                                       detail="branch not taken"))  # fmt: skip

    # -- steps ----------------------------------------------------------------------------------------------
    def _run_step(self, name: str) -> tuple[list[str], list[str]]:
        step, started = self.steps[name], time.monotonic()
        kind = step["Type"]
        self.say(f"▸ {name} ({kind})")
        try:
            chosen, other, detail = [], [], ""
            if kind == "Condition":
                outcome = all(self._condition(c) for c in step["Arguments"]["Conditions"])
                branches = {True: step["Arguments"].get("IfSteps", []), False: step["Arguments"].get("ElseSteps", [])}
                chosen = [s["Name"] for s in branches[outcome]]
                other = [s["Name"] for s in branches[not outcome]]
                detail = f"{'true' if outcome else 'false'}: runs {', '.join(chosen) or 'nothing'}"
            elif kind == "Fail":
                message = as_text(self.resolve(step["Arguments"].get("ErrorMessage", "")))
                raise ExecutionFailed(f"step {name} (Fail): {message}")
            elif kind in ("Processing", "Training", "RegisterModel"):
                detail = self._job(name, kind, step)
            elif kind == "Tuning":
                detail = run_tuning(self, name, step)
            else:
                raise ExecutionFailed(f"step {name}: the emulator does not run {kind} steps")
        except JobFailed as exc:
            self._record(name, kind, "Failed", started, str(exc))
            raise ExecutionFailed(f"step {name} ({kind}) failed: {exc}") from None
        except ExecutionFailed as exc:
            self._record(name, kind, "Failed", started, str(exc))
            raise
        self._record(name, kind, "Succeeded", started, detail)
        return chosen, other

    def _record(self, name: str, kind: str, status: str, started: float, detail: str) -> None:
        record = StepRecord(name, kind, status, time.monotonic() - started, detail)
        self.emulation.steps.append(record)
        self.say(f"  {'✓' if status == 'Succeeded' else '✗'} {name} {status.lower()} in {record.seconds:.1f} s"
                 + (f": {detail.splitlines()[0]}" if detail else ""))  # fmt: skip

    def _job(self, name: str, kind: str, step: dict[str, Any]) -> str:
        operation, _ = STEP_OPERATIONS[kind]
        request = self.resolve(step["Arguments"])
        job = _job_name(self.execution_id, name)
        if kind == "Processing":
            request["ProcessingJobName"] = job
        elif kind == "Training":
            request["TrainingJobName"] = job
        problems = request_problems("sagemaker", operation, request)
        if problems:
            raise ExecutionFailed(f"step {name}: SageMaker would refuse its {operation}:\n  " + "\n  ".join(problems))
        if kind == "RegisterModel":
            return self._register(name, request)
        if kind == "Training":
            model, _ = self.train(request)
            self.properties[name] = {**request, "TrainingJobStatus": "Completed", "ModelArtifacts": {
                "S3ModelArtifacts": model}}  # fmt: skip
            return f"{job}; model {model}"
        self.aws.call("sagemaker", "create_processing_job", **request)
        root, runtime, log = self._job_folder(job, request["AppSpecification"]["ImageUri"])
        containers.run_processing(request, root, runtime, log)
        self.properties[name] = {**request, "ProcessingJobStatus": "Completed"}
        return f"{job}; log {log}"

    def train(self, request: dict[str, Any]) -> tuple[str, Path]:
        """A training job (a Training step's, or a tuning job's trial): created, run; its model's URI and log."""
        self.aws.call("sagemaker", "create_training_job", **request)
        root, runtime, log = self._job_folder(request["TrainingJobName"], request["AlgorithmSpecification"][
            "TrainingImage"])  # fmt: skip
        return containers.run_training(request, root, runtime, log), log

    def _job_folder(self, job: str, image: str) -> tuple[Path, Runtime, Path]:
        root = self.folder / "jobs" / job
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        log = self.folder / "logs" / f"{job}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        return root, Runtime(self.images[image], self.s3, self.url, self.aws.environment.region), log

    def _register(self, name: str, request: dict[str, Any]) -> str:
        """RegisterModel: the group is created when missing, as the step does, then the package."""
        group = request["ModelPackageGroupName"]
        if not self.aws.exists("sagemaker", "describe_model_package_group", ModelPackageGroupName=group):
            self.aws.call("sagemaker", "create_model_package_group", ModelPackageGroupName=group)
        arn = self.aws.call("sagemaker", "create_model_package", **request)["ModelPackageArn"]
        self.properties[name] = {**request, "ModelPackageArn": arn}
        self.emulation.model_package_arn = arn
        metadata = request.get("CustomerMetadataProperties", {})
        metrics = [f"{k.removeprefix('metric.')} {v}" for k, v in metadata.items() if k.startswith("metric.")]
        if "pravah.gate_metric" in metadata:  # the metric the pipeline's gate judged, named, for any task
            metrics.append(f"{metadata['pravah.gate_metric']} {metadata.get('pravah.gate_value')} (gate)")
        status = request.get("ModelApprovalStatus", "PendingManualApproval")
        return f"{arn} ({status}; {', '.join(metrics) or 'no metrics'})"

    # -- values ---------------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            [(function, argument)] = value.items()
            if function == "Get":
                return self._get(argument)
            if function == "Std:Join":
                return argument.get("On", "").join(as_text(self.resolve(v)) for v in argument.get("Values", []))
            if function == "Std:JsonGet":
                return self._json_get(argument)
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def _get(self, reference: str) -> Any:
        if reference.startswith("Parameters."):
            return self.values[reference.split(".", 1)[1]]
        if reference == "Execution.PipelineExecutionId":
            return self.execution_id
        if reference == "Execution.PipelineExecutionArn":
            return self.emulation.execution_arn
        found = STEP_REFERENCE.match(reference)
        if not found or found[1] not in self.properties:
            raise ExecutionFailed(f"cannot resolve {reference}: no such finished step")
        try:
            return _walk(self.properties[found[1]], found[2])
        except KeyError as exc:
            raise ExecutionFailed(f"cannot resolve {reference}: the step's properties have no {exc.args[0]}") from None

    def _json_get(self, argument: dict[str, Any]) -> Any:
        """A value from a step's property file: the file in its output's S3 folder, then a dotted path."""
        reference = argument["PropertyFile"]["Get"]  # Steps.NAME.PropertyFiles.FILE
        step_name, _, file_name = reference.removeprefix("Steps.").partition(".PropertyFiles.")
        declared = next((f for f in self.steps[step_name].get("PropertyFiles", [])
                         if f["PropertyFileName"] == file_name), None)  # fmt: skip
        if declared is None or step_name not in self.properties:
            raise ExecutionFailed(f"cannot resolve {reference}: no such property file of a finished step")
        outputs = self.properties[step_name]["ProcessingOutputConfig"]["Outputs"]
        folder = next(o["S3Output"]["S3Uri"] for o in outputs if o["OutputName"] == declared["OutputName"])
        bucket, prefix = s3_location(folder)
        key = f"{prefix.rstrip('/')}/{declared['FilePath']}"
        try:
            document = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            raise ExecutionFailed(f"{reference}: s3://{bucket}/{key} was not written by the step") from None
        try:
            return _walk(document, argument["Path"])
        except KeyError:
            raise ExecutionFailed(f"JsonGet {argument['Path']} of {reference}: no such value in the file") from None

    def _condition(self, condition: dict[str, Any]) -> bool:
        kind = condition["Type"]
        if kind == "Not":
            return not self._condition(condition["Expression"])
        if kind == "Or":
            return any(self._condition(c) for c in condition["Conditions"])
        if kind == "In":
            value = self.resolve(condition["QueryValue"])
            return value in [self.resolve(v) for v in condition["Values"]]
        left, right = self.resolve(condition["LeftValue"]), self.resolve(condition["RightValue"])
        if isinstance(left, str) != isinstance(right, str):
            raise ExecutionFailed(f"condition {kind}: cannot compare {left!r} with {right!r}")
        return COMPARISONS[kind](left, right)

    # -- serving --------------------------------------------------------------------------------------------
    def serve(self, package_arn: str, sample: dict[str, Any]) -> Any:
        """The package's container as an endpoint would run it (a CreateModel from the package first), asked
        for one prediction."""
        from inference.sagemaker_handlers import input_fn
        from pipelines.sagemaker.deploy import approved_package, model_of_package

        env = self.aws.environment
        package = self.aws.call("sagemaker", "describe_model_package", ModelPackageName=package_arn)
        model, version = package["ModelPackageGroupName"], package["ModelPackageVersion"]
        if package["ModelApprovalStatus"] != "Approved":  # as a reviewer would, with the command a user runs
            approve(env.region, model, version)
        model_of_package(self.aws, model, version, approved_package(self.aws, model, version))
        [container] = package["InferenceSpecification"]["Containers"]
        root = self.folder / "endpoint"
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        runtime = Runtime(self.images[container["Image"]], self.s3, self.url, env.region)
        log = self.folder / "logs" / "endpoint.log"
        self.say(f"▸ serving {package_arn} in its container ({container['Image'].rsplit('/', 1)[-1]})")
        server, address = containers.serve(container, root, runtime, log)
        try:
            with urllib.request.urlopen(f"{address}/ping", timeout=30) as answer:
                if answer.status != 200:
                    raise ExecutionFailed(f"/ping answered {answer.status}")
            request = urllib.request.Request(f"{address}/invocations", data=json.dumps(sample).encode(),
                                             headers={"Content-Type": "application/json",
                                                      "Accept": "application/json"})  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=120) as answer:
                    prediction = json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                raise ExecutionFailed(f"/invocations answered {exc.code}: {exc.read()[:2000].decode()}") from None
        finally:
            server.terminate()
            server.wait(timeout=30)
        asked = len(input_fn(json.dumps(sample), "application/json"))  # read as the container reads it
        answered = prediction.get("predictions") if isinstance(prediction, dict) else None
        if not isinstance(answered, list) or len(answered) != asked:
            raise ExecutionFailed(f"/invocations answered {prediction!r}: expected {asked} predictions")
        shown = ", ".join(str(p.get("prediction", p.get("value"))) if isinstance(p, dict) else "?" for p in answered)
        self.say(f"  ✓ /ping 200, /invocations 200: {shown}")
        return prediction


def approve(region: str, model: str, version: int) -> None:
    """`pravah models --target sagemaker approve`, run as a reviewer runs it: only an Approved package can be
    deployed or batch-transformed."""
    from cli import main

    command = ["models", "--target", "sagemaker", "--region", region, "approve", model, str(version),
               "--reason", "emulated review: approved to serve it"]  # fmt: skip
    if main(command) != 0:
        raise ExecutionFailed(f"pravah {' '.join(command[:-2])} failed")


def _needs(step: dict[str, Any]) -> set[str]:
    """The steps a step waits for: those it depends on and those whose properties its arguments read (a
    condition's branches are its own, not what it waits for)."""
    text = json.dumps({k: v for k, v in step.get("Arguments", {}).items() if k not in ("IfSteps", "ElseSteps")})
    referenced = set(re.findall(r'"Get": "Steps\.([A-Za-z0-9_-]+)\.', text))
    return (set(step.get("DependsOn", [])) | referenced) - {step["Name"]}


def _walk(value: Any, path: str) -> Any:
    """A value along a property path or a JSON path (`a.b[0]`, `Outputs['name']`: in a list, the element that
    names itself so); KeyError with the part that is not there."""
    for name, quoted, double, index in PATH_PART.findall(path):
        key = name or quoted or double
        if isinstance(value, list) and index:
            value = value[int(index)] if int(index) < len(value) else None
        elif isinstance(value, list) and not name:
            value = next((item for item in value if isinstance(item, dict) and key in item.values()), None)
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            value = None
        if value is None:
            raise KeyError(key)
    return value


def _job_name(execution_id: str, step: str) -> str:
    """As SageMaker names a step's job: pipelines-EXECUTION-STEP (63 characters at most, [a-zA-Z0-9-])."""
    name = re.sub(r"[^a-zA-Z0-9-]", "-", f"pipelines-{execution_id}-{step}")
    return name[:63].rstrip("-")
