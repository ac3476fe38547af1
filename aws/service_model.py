"""Requests checked against the AWS service model the way AWS checks them, not only as botocore does.

botocore validates a request's types, required members and minimum lengths before sending; AWS also refuses
what the model says beyond that: enum values, patterns, maximum lengths and sizes, ranges. `request_problems`
checks all of them. `definition_problems` does the same for each step of a compiled SageMaker Pipeline, whose
Arguments are the request SageMaker will send when the step runs (CreateProcessingJob, CreateTrainingJob,
CreateModelPackage, ...), with the pipeline's expressions resolved as SageMaker resolves them: parameters by
their defaults (or the values given), `Std:Join` joined (aws/expressions.py, the emulator's interpreter too);
values known only at run time (a step's properties, the execution id) stand in with placeholders whose own
checks are skipped. A property reference of another
type than its field is refused, as CreatePipeline refuses it ("Cannot assign property reference ...").
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from aws.definition import all_steps
from aws.expressions import RunTime, resolve

# What a step of each type asks SageMaker to do, and the members SageMaker fills in itself.
STEP_OPERATIONS = {
    "Processing": ("CreateProcessingJob", {"ProcessingJobName"}),
    "Training": ("CreateTrainingJob", {"TrainingJobName"}),
    "RegisterModel": ("CreateModelPackage", set()),
    "Model": ("CreateModel", {"ModelName"}),
    "Transform": ("CreateTransformJob", {"TransformJobName"}),
    "Tuning": ("CreateHyperParameterTuningJob", {"HyperParameterTuningJobName"}),
}
SHAPE_TYPES = {
    "string": "String",
    "integer": "Integer",
    "long": "Integer",
    "float": "Float",
    "double": "Float",
    "boolean": "Boolean",
}


@cache
def _service(name: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(name)


def request_problems(service: str, operation: str, params: dict[str, Any], where: str = "") -> list[str]:
    """Everything AWS would refuse in a request, as `where.Member: message` lines (empty when it is valid)."""
    from botocore.validate import ParamValidator

    shape = _service(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    problems = (
        [f"{where or operation}: {line}" for line in report.generate_report().splitlines()[1:]]
        if (report.has_errors())
        else []
    )
    _walk(params, shape, where or operation, problems)
    return problems


def _walk(value: Any, shape, where: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                _walk(member, shape.members[name], f"{where}.{name}", problems)
    elif kind == "list" and isinstance(value, list):
        _bounds(len(value), shape.metadata, where, problems, "items")
        for index, item in enumerate(value):
            _walk(item, shape.member, f"{where}[{index}]", problems)
    elif kind == "map" and isinstance(value, dict):
        _bounds(len(value), shape.metadata, where, problems, "entries")
        for key, item in value.items():
            _walk(key, shape.key, f"{where} key {key!r}", problems)
            _walk(item, shape.value, f"{where}.{key}", problems)
    elif kind == "string" and isinstance(value, str) and not isinstance(value, RunTime):
        if shape.enum and value not in shape.enum:
            problems.append(f"{where}: {value!r} is not one of the API's values ({_some(shape.enum)})")
        _bounds(len(value), shape.metadata, where, problems, "characters")
        pattern = shape.metadata.get("pattern")
        if pattern and not _matches(pattern, value):
            problems.append(f"{where}: {value!r} does not match the API's pattern {pattern}")
    elif kind in ("integer", "long", "float", "double") and isinstance(value, int | float):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            problems.append(f"{where}: {value} is outside the API's range [{low}, {high}]")


def _bounds(size: int, metadata: dict, where: str, problems: list[str], unit: str) -> None:
    low, high = metadata.get("min"), metadata.get("max")
    if high is not None and size > high:
        problems.append(f"{where}: {size} {unit}, more than the API's {high}")
    if low is not None and size < low:
        problems.append(f"{where}: {size} {unit}, fewer than the API's {low}")


def _some(values: list[str]) -> str:
    return ", ".join(values[:6]) + (f", ... {len(values)} in all" if len(values) > 6 else "")


def _matches(pattern: str, value: str) -> bool:
    """AWS patterns are Java regular expressions that the whole value must match; the rare Java-only form that
    Python cannot read (`\\p{...}`) is left to AWS's own check: nothing is claimed for it here."""
    try:
        return re.fullmatch(pattern, value, re.DOTALL) is not None
    except re.error:
        return True


# -- pipeline definitions ------------------------------------------------------------------------------------


def definition_problems(definition: dict[str, Any], values: dict[str, Any] | None = None) -> list[str]:
    """Every step's request checked as AWS checks it, with `values` (else the defaults) for the parameters."""
    parameters = {p["Name"]: p for p in definition.get("Parameters", [])}
    given = {name: (values or {}).get(name, p.get("DefaultValue")) for name, p in parameters.items()}
    problems: list[str] = []

    def get(reference: str, shape, where: str) -> Any:
        """A parameter's value (of the type its field takes), else a placeholder of what the run will know."""
        if not reference.startswith("Parameters."):
            return _placeholder(shape, reference)
        name = reference.split(".", 1)[1]
        if name not in parameters:
            problems.append(f"{where}: {reference} is not a parameter of the pipeline")
            return _placeholder(shape)
        declared, expected = parameters[name]["Type"], SHAPE_TYPES.get(shape.type_name) if shape is not None else None
        if expected and declared != expected:
            problems.append(
                f"{where}: Cannot assign property reference [{reference}] (a {declared}) to argument "
                f"of type [{expected}]"
            )
        return typed_value(given[name], declared)

    def placeholder_of_file(argument: dict[str, Any], shape, where: str) -> Any:
        return _placeholder(shape)  # a property file's value: known when its step has run

    for step in all_steps(definition):
        operation = STEP_OPERATIONS.get(step["Type"])
        if operation is None:
            continue
        name, filled = operation
        shape = _service("sagemaker").operation_model(name).input_shape
        where = f"step {step['Name']} ({name})"
        resolved = resolve(step["Arguments"], get, placeholder_of_file, shape, where, problems)
        resolved |= {member: _placeholder(shape.members[member]) for member in filled}
        problems += request_problems("sagemaker", name, resolved, where)
    return problems


def typed_value(value: Any, declared: str) -> Any:
    if declared == "Integer":
        return int(value)
    if declared == "Float":
        return float(value)
    if declared == "Boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return str(value)


def _placeholder(shape, reference: str = "") -> Any:
    """A stand-in for what SageMaker knows only at run time, of the field's type."""
    kind = shape.type_name if shape is not None else "string"
    if kind in ("integer", "long"):
        return max(1, shape.metadata.get("min", 1))
    if kind in ("float", "double"):
        return float(shape.metadata.get("min", 1))
    if kind == "boolean":
        return True
    looks_s3 = any(word in reference for word in ("S3", "Uri", "Artifacts", "OutputPath"))
    return RunTime("s3://run-time/value" if looks_s3 else "run-time-value")
