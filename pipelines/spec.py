"""The pipeline spec: a YAML file under configs/pipelines/, parsed into typed objects.

A spec names parameters, steps and the edges between them, nothing else (no paths, no S3, no code).
Every mistake is reported as `file:line dotted.field: what is wrong`, with the nearest valid name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from foundation.errors import PravahError, did_you_mean
from foundation.typed import Check, Tagged
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


# Every spec class: read by foundation.typed, read-only by convention (frozen dataclasses cost a run 8 ms more).
spec_class = dataclass(kw_only=True)

STEP_KINDS: list[type] = []  # every step kind's spec class; a kind's module (pipelines/kinds/) may add its own


def step_kind(cls: type) -> type:
    """A spec class (with a `kind: Literal[...]` field) that a step of the spec may be."""
    STEP_KINDS.append(cls)
    return cls


@spec_class
class Parameter:
    type: ParamType
    default: Scalar
    description: str = ""

    def __post_init__(self) -> None:
        convert_value(self.default, self.type)  # raises ValueError with a readable message


@spec_class
class ParamRef:
    """A pipeline parameter's value."""

    param: str


@spec_class
class PathRef:
    """A file or folder of this project (shipped with the code on SageMaker)."""

    path: str


@spec_class
class ModelRef:
    """The registered model version that holds an alias (the champion), looked up when the step runs.

    Optional by nature: while no version holds the alias the step runs without this input.
    """

    model: ParamRef | str
    alias: Annotated[str, Check(pattern=r"^[a-z][a-z0-9_-]*$")] = "champion"


@spec_class
class StepOutput:
    """Another step's named output, written `step.output` in YAML."""

    step: str
    output: str

    def __str__(self) -> str:
        return f"{self.step}.{self.output}"

    @staticmethod
    def _shorthand(value: Any) -> Any:
        if isinstance(value, str):
            step, dot, output = value.partition(".")
            if not dot or not step or not output:
                raise ValueError(
                    f"'{value}' is not a reference: write '<step>.<output>', {{param: NAME}}, {{path: FILE}} "
                    "or {model: NAME, alias: champion}"
                )
            return {"step": step, "output": output}
        return value


@spec_class
class ReportRef:
    """A value read from a step's JSON report: SageMaker's JsonGet on a PropertyFile."""

    step: str
    report: str
    path: Annotated[str, Check(min_length=1)]


Input = StepOutput | ParamRef | PathRef | ModelRef
Value = ParamRef | Scalar
Operand = ReportRef | ParamRef | Scalar


@spec_class
class Output:
    """Where an output lands in the project folder (laid out like the S3 bucket)."""

    area: Annotated[str, Check(pattern=r"^[a-z][a-z0-9_/-]*$")] = "processed"

    @staticmethod
    def _shorthand(value: Any) -> Any:
        """`name: area` for `name: {area: area}`, and `name:` alone for the default area."""
        return {"area": value} if isinstance(value, str) else value or {}


@spec_class
class Report:
    """A JSON file in one of the step's outputs that conditions can read (a SageMaker PropertyFile)."""

    output: str
    file: str


@spec_class
class Retry:
    max_attempts: Annotated[int, Check(ge=1, le=10)] = 1
    backoff_seconds: Annotated[float, Check(ge=0, le=3600)] = 1.0
    backoff_rate: Annotated[float, Check(ge=1, le=10)] = 2.0


@spec_class
class _CodeStep:
    code: Annotated[str, Check(pattern=r"^[A-Za-z_][\w.]*$")]  # a module with a main(argv) entry point
    description: str = ""
    inputs: dict[str, Input] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    instance_type: str | None = None  # on SageMaker; default: the environment's
    instance_count: Annotated[int, Check(ge=1)] = 1
    volume_size_gb: Annotated[int, Check(ge=1)] = 30
    retry: Retry = field(default_factory=Retry)
    cache: bool = True
    depends_on: list[str] = field(default_factory=list)

    @staticmethod
    def _shorthand(value: Any) -> Any:
        """Outputs may be a plain list of names, each in the default area."""
        if isinstance(value, dict) and isinstance(value.get("outputs"), list):
            return {**value, "outputs": {name: {} for name in value["outputs"]}}
        return value


@spec_class
class Shards:
    """How a processing step's work splits over instances on SageMaker, when it runs on more than one (its
    `instance_count`, or the environment's `instance_counts`): the `input`'s files shared among the instances by
    S3 key, each instance writing its part of every output; then one instance runs the code again with `--merge
    true`, given the parts of the `merge` outputs and the whole of the `merge_reads` outputs as inputs of the
    same names, and writes the `merge` outputs. Locally, and on one instance, the step runs as it is."""

    input: str
    merge: list[str]
    merge_reads: list[str] = field(default_factory=list)


@step_kind
@spec_class
class ProcessingStep(_CodeStep):
    kind: Literal["processing"]
    arguments: dict[str, Value] = field(default_factory=dict)
    shards: Shards | None = None

    def __post_init__(self) -> None:
        if self.shards is None:
            return
        if self.shards.input not in self.inputs:
            raise ValueError(f"shards.input '{self.shards.input}' is not an input of the step")
        unknown = [name for name in [*self.shards.merge, *self.shards.merge_reads] if name not in self.outputs]
        if unknown:
            raise ValueError(f"shards: '{unknown[0]}' is not an output of the step")
        outside = [name for name, report in self.reports.items() if report.output not in self.shards.merge]
        if outside:
            raise ValueError(f"report '{outside[0]}' of a sharded step must be in one of its merge outputs")


TRAINING_OUTPUTS = {"model": "models", "output": "results/training"}


@spec_class
class SearchRange:
    """One hyperparameter's range (SageMaker's ParameterRanges): integer or continuous between min and max, on a
    linear or log scale, or categorical among values."""

    type: Literal["integer", "continuous", "categorical"]
    min: float | None = None
    max: float | None = None
    scale: Literal["linear", "log"] = "linear"
    values: list[Scalar] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.type == "categorical":
            if not self.values or self.min is not None or self.max is not None or self.scale != "linear":
                raise ValueError("a categorical range lists its values (and has no min, max or scale)")
            if len({str(v) for v in self.values}) != len(self.values):
                raise ValueError("a categorical range lists each value once")
            return
        if self.values or self.min is None or self.max is None:
            raise ValueError(f"an {self.type} range has a min and a max (and no values)")
        if self.min >= self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        if self.scale == "log" and self.min <= 0:
            raise ValueError("a log scale needs a min above 0")
        if self.type == "integer" and not (self.min.is_integer() and self.max.is_integer()):
            raise ValueError("an integer range has whole numbers for min and max")


@spec_class
class Objective:
    """What a search optimizes: `REPORT.PATH`, a number in one of the training step's reports."""

    metric: Annotated[str, Check(pattern=r"^[A-Za-z_][\w-]*\.[\w.-]+$", says="is not REPORT.PATH")]
    goal: Literal["maximize", "minimize"] = "maximize"


@spec_class
class Search:
    """A hyperparameter search over a training step: each trial is the step with sampled hyperparameters; the
    best trial's model is the step's. Locally Optuna samples (bayesian: TPE); on SageMaker a TuningStep."""

    parameters: Annotated[dict[str, SearchRange], Check(min_length=1)]
    objective: Objective
    strategy: Literal["bayesian", "random", "grid"] = "bayesian"
    trials: Annotated[int, Check(ge=1, le=500)] = 12
    parallel: Annotated[int, Check(ge=1, le=100)] = 2
    early_stopping: Literal["off", "auto"] = "off"
    seed: Annotated[int, Check(ge=0)] = 0

    @staticmethod
    def _shorthand(value: Any) -> Any:
        """YAML reads an unquoted `off` as false (and `on` as true)."""
        if isinstance(value, dict) and isinstance(value.get("early_stopping"), bool):
            return {**value, "early_stopping": "auto" if value["early_stopping"] else "off"}
        return value

    def __post_init__(self) -> None:
        if self.strategy == "grid" and any(r.type != "categorical" for r in self.parameters.values()):
            raise ValueError("a grid search takes categorical ranges only (as SageMaker's Grid strategy)")

    def grid_size(self) -> int:
        size = 1
        for values in (r.values for r in self.parameters.values()):
            size *= len(values)
        return size


@step_kind
@spec_class
class TrainingStep(_CodeStep):
    kind: Literal["training"]
    hyperparameters: dict[str, Value] = field(default_factory=dict)
    search: Search | None = None

    def __post_init__(self) -> None:
        unknown = set(self.outputs) - set(TRAINING_OUTPUTS)
        if unknown:
            name = sorted(unknown)[0]
            raise ValueError(
                f"a training step has the outputs {sorted(TRAINING_OUTPUTS)} (SM_MODEL_DIR and "
                f"SM_OUTPUT_DATA_DIR); '{name}' is not one{did_you_mean(name, TRAINING_OUTPUTS)}"
            )
        fixed = {name: self.outputs.get(name, Output(area=area)) for name, area in TRAINING_OUTPUTS.items()}
        self.outputs = fixed
        if self.search is not None:
            report = self.search.objective.metric.split(".")[0]
            if report not in self.reports:
                raise ValueError(
                    f"search.objective.metric '{self.search.objective.metric}' starts with '{report}', "
                    f"not one of the step's reports{did_you_mean(report, self.reports)} "
                    f"(reports: {', '.join(self.reports) or 'none'})"
                )


@spec_class
class Condition:
    left: Operand
    op: Literal["eq", "ne", "gt", "ge", "lt", "le"]
    right: Operand


@step_kind
@spec_class
class ConditionStep:
    kind: Literal["condition"]
    description: str = ""
    conditions: Annotated[list[Condition], Check(min_length=1)]
    if_steps: list[str] = field(default_factory=list)
    else_steps: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)

    # the fields that name the steps it leads to, and their edges' labels
    BRANCHES: ClassVar[dict[str, str]] = {"if_steps": "if", "else_steps": "else"}


@step_kind
@spec_class
class RegisterStep:
    kind: Literal["register"]
    description: str = ""
    model: StepOutput
    evaluation: ReportRef | None = None
    model_name: Value
    approval_status: Value = "PendingManualApproval"
    depends_on: list[str] = field(default_factory=list)


@step_kind
@spec_class
class FailStep:
    kind: Literal["fail"]
    description: str = ""
    message: Annotated[list[Operand], Check(min_length=1)]
    depends_on: list[str] = field(default_factory=list)

    @staticmethod
    def _shorthand(value: Any) -> Any:
        """A message may be one string."""
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return {**value, "message": [value["message"]]}
        return value


Step = Annotated[Any, Tagged("kind", "step", options=STEP_KINDS)]  # any registered kind (pipelines.kinds adds its own)
CodeStep = ProcessingStep | TrainingStep
Reference = StepOutput | ReportRef | ParamRef | PathRef


def references(value: Any, loc: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Reference]]:
    """Every reference in a step's spec, with its place (the fields under the step), whatever its kind: the
    graph's edges and the loader's checks are read from these, so a new kind declares none of its own."""
    if isinstance(value, StepOutput | ReportRef | ParamRef | PathRef):
        yield loc, value
    elif is_dataclass(value):
        for item in fields(value):
            yield from references(getattr(value, item.name), (*loc, item.name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from references(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from references(item, (*loc, index))


def branches(step: Any) -> Iterator[tuple[str, int, str, str]]:
    """(field, index, target step, label) of each step a step leads to (a condition's branches)."""
    for name, label in getattr(step, "BRANCHES", {}).items():
        for index, target in enumerate(getattr(step, name)):
            yield name, index, target, label


@spec_class
class PipelineSpec:
    name: Annotated[
        str, Check(pattern=NAME_PATTERN, says="is not a valid name (letters, digits, '-' and '_', at most 64)")
    ]
    description: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)
    steps: Annotated[dict[str, Step], Check(min_length=1)]


@dataclass(frozen=True)
class Pipeline:
    """A validated spec and where it came from."""

    spec: PipelineSpec
    path: Path
    project_root: Path
    source_hash: str  # of the spec's bytes and its --set overrides
    doc: YamlDoc
    overrides: dict[str, str] = field(default_factory=dict)  # `--set STEP.KEY=VALUE`, applied
    file_hash: str = ""  # of the spec's bytes alone

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
