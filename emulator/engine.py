"""The emulator's engine: a pipeline execution run from its definition JSON as SageMaker runs it.

Each step's Arguments with Parameters, `Get` (step properties, execution variables), `Std:Join` and
`Std:JsonGet` (PropertyFiles) resolved as SageMaker resolves them; the resulting request (CreateProcessingJob,
CreateTrainingJob, CreateModelPackage, CreateModel, CreateTransformJob) checked against botocore's service
model and sent to the moto server; the job's container contract run (emulator.containers) on the image's
stand-in or on an image of the project's own, as its Dockerfile builds it (emulator.images): a transform job
around the model's serving container. Conditions choose their branch; a Fail step
fails the execution with its message. A registered package, once approved, is served as its container would
serve it. The training pipeline (emulator.execution) and an endpoint's monitoring pipeline
(emulator.scheduled_monitoring) both run here.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws.definition import all_steps, needs
from aws.expressions import as_text, resolve
from aws.requests import Aws, s3_location
from aws.service_model import STEP_OPERATIONS, request_problems
from emulator import containers
from emulator.containers import BuiltImage, JobFailed, Runtime
from emulator.tuning import run_tuning
from foundation.errors import PravahError

STEP_REFERENCE = re.compile(r"^Steps\.([A-Za-z0-9_-]+)\.(.+)$")
PATH_PART = re.compile(r"\.?([A-Za-z0-9_]+)|\[(?:'([^']*)'|\"([^\"]*)\"|(\d+))\]")
COMPARISONS = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


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


class Execution:
    def __init__(
        self,
        definition,
        values,
        emulation: Emulation,
        aws: Aws,
        url: str,
        images: dict[str, BuiltImage],
        folder: Path,
        say: Callable[[str], None],
    ):
        self.definition, self.values, self.emulation, self.aws, self.say = definition, values, emulation, aws, say
        self.steps = {step["Name"]: step for step in all_steps(definition)}
        self.needs = {name: needs(step) for name, step in self.steps.items()}
        self.execution_id = emulation.execution_arn.rsplit("/", 1)[-1]
        self.properties: dict[str, dict[str, Any]] = {}  # a finished step's Describe answer
        self.url, self.images, self.folder = url, images, folder
        self.started = datetime.now(UTC)
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
                self.emulation.steps.append(
                    StepRecord(branch, self.steps[branch]["Type"], "Skipped", detail="branch not taken")
                )

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
            elif kind in ("Processing", "Training", "RegisterModel", "Model", "Transform"):
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
        self.say(
            f"  {'✓' if status == 'Succeeded' else '✗'} {name} {status.lower()} in {record.seconds:.1f} s"
            + (f": {detail.splitlines()[0]}" if detail else "")
        )

    def _job(self, name: str, kind: str, step: dict[str, Any]) -> str:
        operation, filled = STEP_OPERATIONS[kind]
        request = self.resolve(step["Arguments"])
        job = _job_name(self.execution_id, name)
        request |= dict.fromkeys(filled, job)  # the names SageMaker gives a step's job or model
        problems = request_problems("sagemaker", operation, request)
        if problems:
            raise ExecutionFailed(f"step {name}: SageMaker would refuse its {operation}:\n  " + "\n  ".join(problems))
        if kind == "RegisterModel":
            return self._register(name, request)
        if kind == "Model":
            self.aws.call("sagemaker", "create_model", **request)
            self.properties[name] = request
            return f"model {job} of {request['PrimaryContainer']['ModelDataUrl']}"
        if kind == "Transform":
            return self._transform(name, request)
        if kind == "Training":
            model, _ = self.train(request)
            self.properties[name] = {
                **request,
                "TrainingJobStatus": "Completed",
                "ModelArtifacts": {"S3ModelArtifacts": model},
            }
            return f"{job}; model {model}"
        self.aws.call("sagemaker", "create_processing_job", **request)
        root, runtime, log = self._job_folder(job, request["AppSpecification"]["ImageUri"])
        containers.run_processing(request, root, runtime, log)
        self.properties[name] = {**request, "ProcessingJobStatus": "Completed"}
        return f"{job}; log {log}"

    def _transform(self, name: str, request: dict[str, Any]) -> str:
        """A transform job around its model's container; the answers are also kept beside the job's log."""
        self.aws.call("sagemaker", "create_transform_job", **request)
        model = self.aws.call("sagemaker", "describe_model", ModelName=request["ModelName"])
        container = model["PrimaryContainer"]
        job = request["TransformJobName"]
        root, runtime, log = self._job_folder(job, container["Image"])
        written = containers.run_transform(request, container, root, runtime, log)
        kept = root / "output"
        kept.mkdir()
        lines = 0
        for uri in written:
            bucket, key = s3_location(uri)
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            (kept / key.rsplit("/", 1)[-1]).write_bytes(body)
            lines += len(body.splitlines())
        self.properties[name] = {**request, "TransformJobStatus": "Completed"}
        return f"{job}; {lines} answer lines in {len(written)} object(s) in {kept}"

    def train(self, request: dict[str, Any]) -> tuple[str, Path]:
        """A training job (a Training step's, or a tuning job's trial): created, run; its model's URI and log."""
        self.aws.call("sagemaker", "create_training_job", **request)
        root, runtime, log = self._job_folder(
            request["TrainingJobName"], request["AlgorithmSpecification"]["TrainingImage"]
        )
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
        """`value` with its expressions replaced by this execution's values (aws/expressions.py)."""
        return resolve(value, lambda reference, *_: self._get(reference), lambda argument, *_: self._json_get(argument))

    def _get(self, reference: str) -> Any:
        if reference.startswith("Parameters."):
            return self.values[reference.split(".", 1)[1]]
        if reference == "Execution.PipelineExecutionId":
            return self.execution_id
        if reference == "Execution.PipelineExecutionArn":
            return self.emulation.execution_arn
        if reference == "Execution.StartDateTime":
            return self.started.isoformat().replace("+00:00", "Z")
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
        declared = next(
            (f for f in self.steps[step_name].get("PropertyFiles", []) if f["PropertyFileName"] == file_name), None
        )
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
