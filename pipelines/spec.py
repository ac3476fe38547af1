"""The pipeline spec: a YAML file under configs/pipelines/, parsed into typed objects.

A spec names parameters, steps and the edges between them, nothing else (no paths, no S3, no code).
Every mistake is reported as `file:line dotted.field: what is wrong`, with the nearest valid name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from foundation.errors import PravahError, did_you_mean
from foundation.yamlfile import YamlDoc

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


class SearchRange(_Model):
    """One hyperparameter's range (SageMaker's ParameterRanges): integer or continuous between min and max, on a
    linear or log scale, or categorical among values."""

    type: Literal["integer", "continuous", "categorical"]
    min: float | None = None
    max: float | None = None
    scale: Literal["linear", "log"] = "linear"
    values: list[Scalar] = []

    @model_validator(mode="after")
    def _shape(self) -> SearchRange:
        if self.type == "categorical":
            if not self.values or self.min is not None or self.max is not None or self.scale != "linear":
                raise ValueError("a categorical range lists its values (and has no min, max or scale)")
            if len({str(v) for v in self.values}) != len(self.values):
                raise ValueError("a categorical range lists each value once")
            return self
        if self.values or self.min is None or self.max is None:
            raise ValueError(f"an {self.type} range has a min and a max (and no values)")
        if self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        if self.scale == "log" and self.min <= 0:
            raise ValueError("a log scale needs a min above 0")
        if self.type == "integer" and not (self.min.is_integer() and self.max.is_integer()):
            raise ValueError("an integer range has whole numbers for min and max")
        return self


class Objective(_Model):
    """What a search optimizes: `REPORT.PATH`, a number in one of the training step's reports."""

    metric: str = Field(pattern=r"^[A-Za-z_][\w-]*\.[\w.-]+$")
    goal: Literal["maximize", "minimize"] = "maximize"


class Search(_Model):
    """A hyperparameter search over a training step: each trial is the step with sampled hyperparameters; the
    best trial's model is the step's. Locally Optuna samples (bayesian: TPE); on SageMaker a TuningStep."""

    parameters: dict[str, SearchRange] = Field(min_length=1)
    objective: Objective
    strategy: Literal["bayesian", "random", "grid"] = "bayesian"
    trials: int = Field(default=12, ge=1, le=500)
    parallel: int = Field(default=2, ge=1, le=100)
    early_stopping: Literal["off", "auto"] = "off"
    seed: int = Field(default=0, ge=0)

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """YAML reads an unquoted `off` as false (and `on` as true)."""
        return {False: "off", True: "auto"}.get(value, value) if isinstance(value, bool) else value

    @model_validator(mode="after")
    def _grid(self) -> Search:
        if self.strategy == "grid" and any(r.type != "categorical" for r in self.parameters.values()):
            raise ValueError("a grid search takes categorical ranges only (as SageMaker's Grid strategy)")
        return self

    def grid_size(self) -> int:
        size = 1
        for values in (r.values for r in self.parameters.values()):
            size *= len(values)
        return size


class TrainingStep(_CodeStep):
    kind: Literal["training"]
    hyperparameters: dict[str, Value] = {}
    outputs: dict[str, Output] = Field(default={}, validate_default=True)
    search: Search | None = None

    @model_validator(mode="after")
    def _objective_is_reported(self) -> TrainingStep:
        if self.search is not None:
            report = self.search.objective.metric.split(".")[0]
            if report not in self.reports:
                raise ValueError(f"search.objective.metric '{self.search.objective.metric}' starts with '{report}', "
                                 f"not one of the step's reports{did_you_mean(report, self.reports)} "
                                 f"(reports: {', '.join(self.reports) or 'none'})")  # fmt: skip
        return self

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
    source_hash: str  # of the spec's bytes and its --set overrides
    doc: YamlDoc
    overrides: dict[str, str] = field(default_factory=dict)  # `--set STEP.KEY=VALUE`, applied

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
    raise ValueError(f"expected {'an' if type_name[0] in 'aeiou' else 'a'} {type_name}, got {raw!r}")
