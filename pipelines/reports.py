"""Reading values out of steps' JSON reports, as SageMaker's JsonGet reads a PropertyFile."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from foundation.errors import StepFailed
from pipelines.spec import ParamRef, ReportRef

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


def describe_operand(operand: Any) -> str:
    """An operand as a condition's record shows it: STEP.REPORT:PATH, a parameter's name, or the value."""
    if isinstance(operand, ReportRef):
        return f"{operand.step}.{operand.report}:{operand.path}"
    if isinstance(operand, ParamRef):
        return operand.param
    return repr(operand)
