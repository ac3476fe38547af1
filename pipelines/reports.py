"""Reading values out of steps' JSON reports, as SageMaker's JsonGet reads a PropertyFile."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from foundation.errors import StepFailed
from pipelines.spec import ConditionStep, ParamRef, ReportRef

COMPARE = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
SYMBOL = {"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def json_get(document: Any, path: str) -> Any:
    """Follow a path like `a.b[0].c` (the JsonGet syntax); KeyError names the first missing part."""
    value = document
    walked = ""
    for match in _TOKEN.finditer(path):
        key, index = match.group(1), match.group(2)
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                raise KeyError(f"{walked}[{index}]")
            value = value[int(index)]
            walked += f"[{index}]"
        else:
            if not isinstance(value, dict) or key not in value:
                raise KeyError(f"{walked}.{key}".lstrip("."))
            value = value[key]
            walked += f".{key}"
    return value


def read_report_value(report_file: Path, path: str) -> Any:
    try:
        document = json.loads(report_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StepFailed(f"cannot read report {report_file}: {exc}") from None
    try:
        return json_get(document, path)
    except KeyError as exc:
        raise StepFailed(f"report {report_file} has no value at '{path}' (missing: {exc.args[0]})") from None


def flatten_metrics(document: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves as MLflow metrics: nested keys joined by '.', a trailing '.value' dropped."""
    metrics: dict[str, float] = {}
    if isinstance(document, dict):
        for key, value in document.items():
            metrics.update(flatten_metrics(value, f"{prefix}{key}."))
    elif isinstance(document, int | float) and not isinstance(document, bool):
        name = prefix.rstrip(".").removesuffix(".value")
        metrics[re.sub(r"[^\w./ -]", "_", name)] = float(document)
    return metrics


def report_metrics(step: Any, outputs: dict[str, Any]) -> dict[str, float]:
    """Every number in a code step's reports (its outputs' records given), as MLflow metrics."""
    metrics: dict[str, float] = {}
    for report in step.reports.values():
        path = Path(outputs[report.output].path) / report.file
        try:
            metrics.update(flatten_metrics(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue  # a missing report is the condition step's error to report, not the tracker's
    return metrics


def describe_operand(operand: Any) -> str:
    """An operand as a condition's record shows it: STEP.REPORT:PATH, a parameter's name, or the value."""
    if isinstance(operand, ReportRef):
        return f"{operand.step}.{operand.report}:{operand.path}"
    if isinstance(operand, ParamRef):
        return operand.param
    return repr(operand)


def _note(value: Any, operand: Callable[[Any], Any]) -> str:
    """' (NOTE)' when a report value's object carries a `note` string saying what the value means (a gate's
    margin when there is no champion to compare with), else ''."""
    if not isinstance(value, ReportRef) or "." not in value.path:
        return ""
    try:
        note = operand(ReportRef(step=value.step, report=value.report, path=f"{value.path.rpartition('.')[0]}.note"))
    except StepFailed:
        return ""
    return f" ({note})" if isinstance(note, str) and note else ""


def judge(step: ConditionStep, operand: Callable[[Any], Any]) -> tuple[bool, list[dict[str, Any]], str]:
    """A condition step's outcome (all its conditions hold), each check with its values, and a line saying so:
    `A = 0.65 >= 0.6 is true: true, runs register`."""
    checks, outcome = [], True
    for condition in step.conditions:
        left, right = operand(condition.left), operand(condition.right)
        try:
            result = bool(COMPARE[condition.op](left, right))
        except TypeError:
            raise StepFailed(f"cannot compare {left!r} {SYMBOL[condition.op]} {right!r}") from None
        checks.append(
            {
                "left": describe_operand(condition.left),
                "op": SYMBOL[condition.op],
                "right": describe_operand(condition.right),
                "left_value": left,
                "right_value": right,
                "result": result,
            }
        )
        outcome = outcome and result
    said = {True: "true", False: "false"}
    notes = [_note(condition.left, operand) for condition in step.conditions]
    text = " and ".join(
        f"{c['left']} = {c['left_value']} {c['op']} {c['right_value']} is {said[c['result']]}{note}"
        for c, note in zip(checks, notes, strict=True)
    )
    then = ", ".join(step.if_steps if outcome else step.else_steps) or "nothing"
    return outcome, checks, f"{text}: {said[outcome]}, runs {then}"
