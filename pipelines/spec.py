"""The pipeline spec: a YAML file under configs/pipelines/, parsed into typed objects.

A spec names parameters, steps and the edges between them, nothing else (no paths, no S3, no code).
Every mistake is reported as `file:line dotted.field: what is wrong`, with the nearest valid name.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipelines.errors import PravahError, did_you_mean
from pipelines.yamlfile import Loc, YamlDoc, display_path, load_yaml

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"  # what SageMaker accepts for step and parameter names
Scalar = bool | int | float | str
ParamType = Literal["string", "integer", "float", "boolean"]
PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool}


class SpecError(PravahError):
    """One or more mistakes in a spec file, each with its place."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Parameter(_Model):
    type: ParamType
    default: Scalar
    description: str = ""

    @model_validator(mode="after")
    def _default_has_type(self) -> Parameter:
        convert_value(self.default, self.type)  # raises ValueError with a readable message
        return self


class ParamRef(_Model):
    """A pipeline parameter's value."""

    param: str


class PathRef(_Model):
    """A file or folder of this project (shipped with the code on SageMaker)."""

    path: str


class ModelRef(_Model):
    """The registered model version that holds an alias (the champion), looked up when the step runs.

    Optional by nature: while no version holds the alias the step runs without this input.
    """

    model: Annotated[ParamRef | str, Field(union_mode="smart")]
    alias: str = Field(default="champion", pattern=r"^[a-z][a-z0-9_-]*$")


class StepOutput(_Model):
    """Another step's named output, written `step.output` in YAML."""

    step: str
    output: str

    def __str__(self) -> str:
        return f"{self.step}.{self.output}"


class ReportRef(_Model):
    """A value read from a step's JSON report: SageMaker's JsonGet on a PropertyFile."""

    step: str
    report: str
    path: str = Field(min_length=1)


def _parse_step_output(value: Any) -> Any:
    if isinstance(value, str):
        step, dot, output = value.partition(".")
        if not dot or not step or not output:
            raise ValueError(
                f"'{value}' is not a reference: write '<step>.<output>', {{param: NAME}}, {{path: FILE}} "
                "or {model: NAME, alias: champion}"
            )
        return StepOutput(step=step, output=output)
    return value


Input = Annotated[StepOutput | ParamRef | PathRef | ModelRef, Field(union_mode="smart")]
Value = Annotated[ParamRef | Scalar, Field(union_mode="smart")]
Operand = Annotated[ReportRef | ParamRef | Scalar, Field(union_mode="smart")]


class Output(_Model):
    """Where an output lands in the project folder (laid out like the S3 bucket)."""

    area: str = Field(default="processed", pattern=r"^[a-z][a-z0-9_/-]*$")


class Report(_Model):
    """A JSON file in one of the step's outputs that conditions can read (a SageMaker PropertyFile)."""

    output: str
    file: str


class Retry(_Model):
    max_attempts: int = Field(default=1, ge=1, le=10)
    backoff_seconds: float = Field(default=1.0, ge=0, le=3600)
    backoff_rate: float = Field(default=2.0, ge=1, le=10)


class Image(_Model):
    """The SageMaker framework image a step runs in (processing and training; the registered model is served
    from the same framework's inference image). Its Python must be the code's: `pravah compile` refuses another.
    The default, PyTorch 2.5.1 on Python 3.11, runs every model family; Hugging Face's images add transformers
    (`base_framework_version` names the PyTorch under them, for example pytorch2.5.1)."""

    framework: Literal["pytorch", "huggingface"] = "pytorch"
    version: str = "2.5.1"
    py_version: str = Field(default="py311", pattern=r"^py\d{2,3}$")
    base_framework_version: str | None = None


class _CodeStep(_Model):
    code: str = Field(pattern=r"^[A-Za-z_][\w.]*$", description="module with a main(argv) entry point")
    description: str = ""
    inputs: dict[str, Input] = {}
    outputs: dict[str, Output] = {}
    reports: dict[str, Report] = {}
    instance_type: str | None = Field(default=None, description="on SageMaker; default: the environment's")
    instance_count: int = Field(default=1, ge=1)
    volume_size_gb: int = Field(default=30, ge=1)
    image: Image = Image()
    retry: Retry = Retry()
    cache: bool = True
    depends_on: list[str] = []

    @field_validator("inputs", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: _parse_step_output(ref) for name, ref in value.items()}
        return value

    @field_validator("outputs", mode="before")
    @classmethod
    def _outputs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {name: {"area": area} if isinstance(area, str) else area or {} for name, area in value.items()}
        if isinstance(value, list):  # a plain list of names takes the default area
            return {name: {} for name in value}
        return value


class ProcessingStep(_CodeStep):
    kind: Literal["processing"]
    arguments: dict[str, Value] = {}


TRAINING_OUTPUTS = {"model": "models", "output": "results/training"}


class TrainingStep(_CodeStep):
    kind: Literal["training"]
    hyperparameters: dict[str, Value] = {}
    outputs: dict[str, Output] = Field(default={}, validate_default=True)

    @field_validator("outputs", mode="after")
    @classmethod
    def _fixed_outputs(cls, value: dict[str, Output]) -> dict[str, Output]:
        unknown = set(value) - set(TRAINING_OUTPUTS)
        if unknown:
            name = sorted(unknown)[0]
            raise ValueError(
                f"a training step has the outputs {sorted(TRAINING_OUTPUTS)} (SM_MODEL_DIR and "
                f"SM_OUTPUT_DATA_DIR); '{name}' is not one{did_you_mean(name, TRAINING_OUTPUTS)}"
            )
        return {name: value.get(name, Output(area=area)) for name, area in TRAINING_OUTPUTS.items()}


class Condition(_Model):
    left: Operand
    op: Literal["eq", "ne", "gt", "ge", "lt", "le"]
    right: Operand


class ConditionStep(_Model):
    kind: Literal["condition"]
    description: str = ""
    conditions: list[Condition] = Field(min_length=1)
    if_steps: list[str] = []
    else_steps: list[str] = []
    depends_on: list[str] = []


class RegisterStep(_Model):
    kind: Literal["register"]
    description: str = ""
    model: StepOutput
    evaluation: ReportRef | None = None
    model_name: Value
    approval_status: Value = "PendingManualApproval"
    depends_on: list[str] = []

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any) -> Any:
        return _parse_step_output(value)


class FailStep(_Model):
    kind: Literal["fail"]
    description: str = ""
    message: list[Operand] = Field(min_length=1)
    depends_on: list[str] = []

    @field_validator("message", mode="before")
    @classmethod
    def _message(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


Step = Annotated[ProcessingStep | TrainingStep | ConditionStep | RegisterStep | FailStep, Field(discriminator="kind")]
CodeStep = ProcessingStep | TrainingStep


class PipelineSpec(_Model):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    parameters: dict[str, Parameter] = {}
    steps: dict[str, Step] = Field(min_length=1)


@dataclass(frozen=True)
class Pipeline:
    """A validated spec and where it came from."""

    spec: PipelineSpec
    path: Path
    project_root: Path
    source_hash: str
    doc: YamlDoc

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def steps(self) -> dict[str, Step]:
        return self.spec.steps

    def resolve_parameters(self, overrides: dict[str, str] | None = None) -> dict[str, Scalar]:
        """Defaults overlaid with `-p key=value` strings, converted to each parameter's type."""
        values = {name: p.default for name, p in self.spec.parameters.items()}
        for name, raw in (overrides or {}).items():
            if name not in self.spec.parameters:
                known = ", ".join(sorted(self.spec.parameters)) or "none"
                raise PravahError(
                    f"-p {name}: unknown parameter of pipeline '{self.name}'"
                    f"{did_you_mean(name, self.spec.parameters)} (parameters: {known})"
                )
            param = self.spec.parameters[name]
            try:
                values[name] = convert_value(raw, param.type)
            except ValueError as exc:
                raise PravahError(f"-p {name}={raw}: {exc}") from None
        return values


def convert_value(raw: Scalar, type_name: str) -> Scalar:
    """Convert a YAML value or a command-line string to a parameter type, or raise ValueError."""
    if type_name == "boolean":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in {"true", "false", "yes", "no", "1", "0"}:
            return raw.lower() in {"true", "yes", "1"}
    elif type_name == "integer":
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and re.fullmatch(r"[+-]?\d+", raw.strip()):
            return int(raw)
    elif type_name == "float":
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
    elif type_name == "string":
        if isinstance(raw, str):
            return raw
        if not isinstance(raw, bool):
            return str(raw)
    raise ValueError(f"expected a {type_name}, got {raw!r}")


def find_spec_file(name_or_path: str, cwd: Path | None = None) -> Path:
    """A pipeline argument is a YAML path or a name under configs/pipelines/."""
    cwd = cwd or Path.cwd()
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    folder = cwd / "configs" / "pipelines"
    path = folder / f"{name_or_path}.yaml"
    if path.exists():
        return path
    known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    hint = did_you_mean(name_or_path, known) or (f" (known: {', '.join(known)})" if known else "")
    raise PravahError(f"pipeline '{name_or_path}': no file {display_path(path)}{hint}")


def load_pipeline(name_or_path: str | Path) -> Pipeline:
    """Read, type-check and cross-check a spec. Raises SpecError listing every problem found."""
    path = find_spec_file(str(name_or_path))
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise SpecError([f"{display_path(path)}:1: a pipeline spec is a mapping with name, parameters and steps"])
    try:
        spec = PipelineSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(_describe_validation_errors(exc, doc)) from None
    root = _project_root(path)
    if str(root) not in sys.path:  # the project's own step modules import as the runner will run them
        sys.path.insert(0, str(root))
    pipeline = Pipeline(spec, path, root, hashlib.sha256(path.read_bytes()).hexdigest(), doc)
    problems = _check_references(pipeline)
    if problems:
        raise SpecError(problems)
    from pipelines.graph import StepGraph  # the graph checks cycles and reports them with lines

    StepGraph.build(pipeline)
    return pipeline


def _project_root(spec_path: Path) -> Path:
    """The folder that holds `configs/`: `{path: ...}` inputs are relative to it."""
    for parent in spec_path.resolve().parents:
        if (parent / "configs").is_dir():
            return parent
    return spec_path.resolve().parent


STEP_KINDS = ("processing", "training", "condition", "register", "fail")


def _describe_validation_errors(exc: ValidationError, doc: YamlDoc) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = _clean_loc(error["loc"], doc)
        message = _friendly(error, loc, doc)
        problems.append(f"{doc.where(loc)}: {message}")
    return list(dict.fromkeys(problems))


def _clean_loc(loc: tuple, doc: YamlDoc) -> Loc:
    """Drop pydantic's union and discriminator tags from an error location."""
    cleaned: list[str | int] = []
    for part in loc:
        candidate = (*cleaned, part)
        if (
            isinstance(part, str)
            and (
                part in STEP_KINDS
                or part in {"str", "int", "float", "bool", "ParamRef", "PathRef", "StepOutput", "ReportRef"}
                or part.startswith(("function-", "list[", "dict["))
            )
            and candidate not in doc.lines
        ):
            continue
        cleaned.append(part)
    return tuple(cleaned)


def _friendly(error: dict, loc: Loc, doc: YamlDoc) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        field = str(loc[-1])
        siblings = _model_fields_for(loc, doc)
        return f"unknown field '{field}'{did_you_mean(field, siblings)}"
    if kind == "missing":
        return f"required field '{loc[-1]}' is missing"
    if kind == "union_tag_invalid":
        found = error.get("input", {}).get("kind") if isinstance(error.get("input"), dict) else None
        return f"unknown step kind '{found}'{did_you_mean(str(found), STEP_KINDS)}; kinds: {', '.join(STEP_KINDS)}"
    if kind == "union_tag_not_found":
        return f"a step needs 'kind' ({', '.join(STEP_KINDS)})"
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "name":
        return f"'{error['input']}' is not a valid name (letters, digits, '-' and '_', at most 64)"
    message = error["msg"].removeprefix("Value error, ")
    if kind in {"model_type", "dict_type", "model_attributes_type"}:
        return f"expected a mapping, got {error.get('input')!r}"
    return message


def _model_fields_for(loc: Loc, doc: YamlDoc) -> list[str]:
    """Field names valid at the parent of `loc`, for 'did you mean' on an unknown field."""
    node: Any = doc.data
    for part in loc[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    models: dict[str, type[BaseModel]] = {
        "processing": ProcessingStep,
        "training": TrainingStep,
        "condition": ConditionStep,
        "register": RegisterStep,
        "fail": FailStep,
    }
    if len(loc) == 1:
        return list(PipelineSpec.model_fields)
    if len(loc) == 3 and loc[0] == "steps" and isinstance(node, dict):
        model = models.get(str(node.get("kind")))
        return list(model.model_fields) if model else []
    if len(loc) == 3 and loc[0] == "parameters":
        return list(Parameter.model_fields)
    field_models = {"retry": Retry, "image": Image}
    parent = loc[-2] if len(loc) >= 2 else None
    if parent in field_models:
        return list(field_models[str(parent)].model_fields)
    return []


def _check_references(pipeline: Pipeline) -> list[str]:
    """Cross-field checks: every name a step refers to must exist."""
    spec, doc = pipeline.spec, pipeline.doc
    problems: list[str] = []
    steps = spec.steps

    def problem(loc: Loc, message: str) -> None:
        problems.append(f"{doc.where(loc)}: {message}")

    def check_param(ref: ParamRef, loc: Loc) -> None:
        if ref.param not in spec.parameters:
            problem(loc, f"unknown parameter '{ref.param}'{did_you_mean(ref.param, spec.parameters)}")

    def check_step(name: str, loc: Loc) -> bool:
        if name not in steps:
            problem(loc, f"unknown step '{name}'{did_you_mean(name, steps)}")
            return False
        return True

    def check_output(ref: StepOutput, loc: Loc) -> None:
        if not check_step(ref.step, loc):
            return
        target = steps[ref.step]
        outputs = getattr(target, "outputs", {})
        if not isinstance(target, ProcessingStep | TrainingStep):
            problem(loc, f"step '{ref.step}' is a {target.kind} step and has no outputs")
        elif ref.output not in outputs:
            problem(loc, f"step '{ref.step}' has no output '{ref.output}'{did_you_mean(ref.output, outputs)}")

    def check_report(ref: ReportRef, loc: Loc) -> None:
        if not check_step(ref.step, (*loc, "step")):
            return
        reports = getattr(steps[ref.step], "reports", {})
        if ref.report not in reports:
            problem(
                (*loc, "report"),
                f"step '{ref.step}' has no report '{ref.report}'{did_you_mean(ref.report, reports)}",
            )

    def check_operand(value: Any, loc: Loc) -> None:
        if isinstance(value, ParamRef):
            check_param(value, loc)
        elif isinstance(value, ReportRef):
            check_report(value, loc)

    for name, step in steps.items():
        base: Loc = ("steps", name)
        if not re.match(NAME_PATTERN, name):
            problem(base, f"'{name}' is not a valid step name (letters, digits, '-' and '_', at most 64)")
        for index, dep in enumerate(step.depends_on):
            check_step(dep, (*base, "depends_on", index))
        if isinstance(step, ProcessingStep | TrainingStep):
            if not _module_exists(step.code):
                problem((*base, "code"), f"no Python module '{step.code}' in this project")
            for input_name, ref in step.inputs.items():
                loc = (*base, "inputs", input_name)
                if isinstance(ref, StepOutput):
                    check_output(ref, loc)
                elif isinstance(ref, ParamRef):
                    check_param(ref, loc)
                elif isinstance(ref, ModelRef):
                    check_operand(ref.model, (*loc, "model"))
                elif not (pipeline.project_root / ref.path).exists():
                    problem(loc, f"no file or folder '{ref.path}' in {display_path(pipeline.project_root)}")
            for report_name, report in step.reports.items():
                if report.output not in step.outputs:
                    problem(
                        (*base, "reports", report_name, "output"),
                        f"step '{name}' has no output '{report.output}'{did_you_mean(report.output, step.outputs)}",
                    )
            values = step.arguments if isinstance(step, ProcessingStep) else step.hyperparameters
            field = "arguments" if isinstance(step, ProcessingStep) else "hyperparameters"
            for key, value in values.items():
                check_operand(value, (*base, field, key))
        elif isinstance(step, ConditionStep):
            for index, condition in enumerate(step.conditions):
                check_operand(condition.left, (*base, "conditions", index, "left"))
                check_operand(condition.right, (*base, "conditions", index, "right"))
            for branch in ("if_steps", "else_steps"):
                for index, target in enumerate(getattr(step, branch)):
                    check_step(target, (*base, branch, index))
        elif isinstance(step, RegisterStep):
            check_output(step.model, (*base, "model"))
            if step.evaluation:
                check_report(step.evaluation, (*base, "evaluation"))
            check_operand(step.model_name, (*base, "model_name"))
            check_operand(step.approval_status, (*base, "approval_status"))
        elif isinstance(step, FailStep):
            for index, part in enumerate(step.message):
                check_operand(part, (*base, "message", index))
    return problems


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
