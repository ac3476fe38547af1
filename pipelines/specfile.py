"""Reading a pipeline spec: `configs/pipelines/NAME.yaml` (or a path) to a validated `Pipeline`, every problem
reported with its file and line (types and limits, read by foundation/typed.py; references between steps;
cycles in the step graph). Whether a step's code module exists and can run is pipelines/stepcode.py's to say."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from foundation import typed
from foundation.errors import PravahError, did_you_mean
from foundation.home import project_root
from foundation.yamlfile import Loc, display_path, load_yaml
from pipelines import kinds  # noqa: F401 (its kinds' spec classes join the spec's steps)
from pipelines.graph import StepGraph
from pipelines.spec import (
    NAME_PATTERN,
    ParamRef,
    Pipeline,
    PipelineSpec,
    ReportRef,
    SpecError,
    StepOutput,
    branches,
    convert_value,
    references,
)


def find_spec_file(name_or_path: str, root: Path | None = None) -> Path:
    """A pipeline argument is a YAML path or a name under the project's configs/pipelines/."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    folder = (root or project_root()) / "configs" / "pipelines"
    path = folder / f"{name_or_path}.yaml"
    if path.exists():
        return path
    known = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    hint = did_you_mean(name_or_path, known) or (f" (known: {', '.join(known)})" if known else "")
    raise PravahError(f"pipeline '{name_or_path}': no file {display_path(path)}{hint}")


def load_pipeline(name_or_path: str | Path, overrides: dict[str, str] | None = None) -> Pipeline:
    """Read, type-check and cross-check a spec, with `--set STEP.KEY=VALUE` overrides of its steps'
    hyperparameters and arguments applied. Raises SpecError listing every problem found."""
    path = find_spec_file(str(name_or_path))
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise SpecError([f"{display_path(path)}:1: a pipeline spec is a mapping with name, parameters and steps"])
    problems = _override(doc.data, overrides or {})
    if problems:
        raise SpecError(problems)
    try:
        spec = typed.read(doc.data, PipelineSpec)
    except typed.Invalid as exc:
        raise SpecError(list(dict.fromkeys(f"{doc.where(loc)}: {problem}" for loc, problem in exc.problems))) from None
    root = _project_root(path)
    if str(root) not in sys.path:  # the project's own step modules import as the runner will run them
        sys.path.insert(0, str(root))
    text = path.read_bytes()
    source = text + (json.dumps(overrides, sort_keys=True).encode() if overrides else b"")
    pipeline = Pipeline(
        spec,
        path,
        root,
        hashlib.sha256(source).hexdigest(),
        doc,
        dict(overrides or {}),
        hashlib.sha256(text).hexdigest(),
    )
    problems = _check_references(pipeline)
    if problems:
        raise SpecError(problems)
    StepGraph.build(pipeline)  # the graph checks cycles and reports them with lines
    return pipeline


def _override(data: dict[str, Any], overrides: dict[str, str]) -> list[str]:
    """Set each `STEP.KEY` (a step's hyperparameter or argument) to its value, typed as the spec's own value;
    what cannot be set, each with its reason."""
    problems, steps = [], data.get("steps") if isinstance(data.get("steps"), dict) else {}
    for target, raw in overrides.items():
        name, _, key = target.partition(".")
        where = f"--set {target}={raw}"
        step = steps.get(name)
        if not isinstance(step, dict) or not key:
            problems.append(f"{where}: no step '{name}'{did_you_mean(name, steps)} (give STEP.KEY=VALUE)")
            continue
        if key.startswith("search."):
            problems += _override_search(step, key.removeprefix("search."), raw, where)
            continue
        sections = [
            step[section] for section in ("hyperparameters", "arguments") if isinstance(step.get(section), dict)
        ]
        section = next((values for values in sections if key in values), None)
        if section is None:
            known = [k for values in sections for k in values]
            problems.append(
                f"{where}: step '{name}' has no hyperparameter or argument '{key}'"
                f"{did_you_mean(key, known)} (it has: {', '.join(known) or 'none'})"
            )
            continue
        current = section[key]
        if isinstance(current, dict) and "param" in current:
            problems.append(
                f"{where}: {target} is the pipeline parameter '{current['param']}': use -p {current['param']}={raw}"
            )
            continue
        kind = _kind(current)
        try:
            if kind is None:
                raise ValueError(f"{target} is not a single value in the spec (edit the spec)")
            section[key] = convert_value(raw, kind)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return problems


SEARCH_SETTINGS = {"trials": int, "parallel": int, "seed": int, "strategy": str, "early_stopping": str}


def _override_search(step: dict[str, Any], key: str, raw: str, where: str) -> list[str]:
    """`--set STEP.search.KEY=VALUE`: a setting of the step's search (trials, parallel, seed, strategy,
    early_stopping, objective=REPORT.PATH, goal), or a hyperparameter's range, typed by its value in the spec:
    `LOW..HIGH` (`:log` for a log scale) for a number, `A,B,...` for anything."""
    search = step.setdefault("search", {}) if isinstance(step.get("search", {}), dict) else {}
    if key in SEARCH_SETTINGS:
        try:
            search[key] = SEARCH_SETTINGS[key](raw)
        except ValueError:
            return [f"{where}: {key} is a whole number"]
    elif key in ("objective", "goal"):
        search.setdefault("objective", {})["metric" if key == "objective" else "goal"] = raw
    else:
        current = step.get("hyperparameters", {}).get(key) if isinstance(step.get("hyperparameters"), dict) else None
        span = re.fullmatch(r"([-+0-9.eE]+)\.\.([-+0-9.eE]+)(:log)?", raw)
        if span and isinstance(current, int | float) and not isinstance(current, bool):
            kind = "integer" if isinstance(current, int) else "continuous"
            given = {
                "type": kind,
                "min": float(span[1]),
                "max": float(span[2]),
                "scale": "log" if span[3] else "linear",
            }
        elif "," in raw or span is None:
            values = [v.strip() for v in raw.split(",") if v.strip()]
            try:
                kind = _kind(current)
                given = {"type": "categorical", "values": [convert_value(v, kind) if kind else v for v in values]}
            except ValueError as exc:
                return [f"{where}: {exc} (the spec's value of {key} is {current!r})"]
        else:
            return [f"{where}: a range LOW..HIGH is for a hyperparameter whose value in the spec is a number"]
        search.setdefault("parameters", {})[key] = given
    return []


def _kind(value: Any) -> str | None:
    """A spec value's parameter type (what `convert_value` converts to), None for anything but a scalar."""
    return next(
        (
            k
            for t, k in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"))
            if isinstance(value, t)
        ),
        None,
    )


def _project_root(spec_path: Path) -> Path:
    """The folder that holds `configs/`: `{path: ...}` inputs are relative to it."""
    for parent in spec_path.resolve().parents:
        if (parent / "configs").is_dir():
            return parent
    return spec_path.resolve().parent


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
        outputs = getattr(steps[ref.step], "outputs", {})
        if not outputs:
            problem(loc, f"step '{ref.step}' is a {steps[ref.step].kind} step and has no outputs")
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

    for name, step in steps.items():
        base: Loc = ("steps", name)
        if not re.match(NAME_PATTERN, name):
            problem(base, f"'{name}' is not a valid step name (letters, digits, '-' and '_', at most 64)")
        for index, dep in enumerate(step.depends_on):
            check_step(dep, (*base, "depends_on", index))
        for field, index, target, _ in branches(step):
            check_step(target, (*base, field, index))
        for loc, ref in references(step):  # whatever the kind: its fields' references
            if isinstance(ref, StepOutput):
                check_output(ref, (*base, *loc))
            elif isinstance(ref, ReportRef):
                check_report(ref, (*base, *loc))
            elif isinstance(ref, ParamRef):
                check_param(ref, (*base, *loc))
            elif not (pipeline.project_root / ref.path).exists():
                problem((*base, *loc), f"no file or folder '{ref.path}' in {display_path(pipeline.project_root)}")
        outputs = getattr(step, "outputs", {})
        for report_name, report in getattr(step, "reports", {}).items():
            if report.output not in outputs:
                problem(
                    (*base, "reports", report_name, "output"),
                    f"step '{name}' has no output '{report.output}'{did_you_mean(report.output, outputs)}",
                )
    return problems
