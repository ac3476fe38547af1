"""The pipeline definition's expressions (`Get`, `Std:Join`, `Std:JsonGet`) interpreted in one place, for both of
their readers: the offline check of every step's request (aws/service_model.py, where a value only a run knows
is a placeholder of its field's type) and the emulator's run of an execution (emulator/engine.py, with the run's
own values). A reader says what a `Get` and a `Std:JsonGet` are worth; joining, walking the arguments along the
operation's shapes and the Join's type rule are the same for both."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FUNCTIONS = ("Get", "Std:Join", "Std:JsonGet")


class RunTime(str):
    """A value SageMaker knows only when the step runs (a placeholder): its pattern and length checks are skipped."""


def as_text(value: Any) -> str:
    """A value as SageMaker writes it into a string (a Std:Join's part, an argument)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(
    value: Any,
    get: Callable[[str, Any, str], Any],
    json_get: Callable[[dict[str, Any], Any, str], Any],
    shape: Any = None,
    where: str = "",
    problems: list[str] | None = None,
) -> Any:
    """`value` with every expression replaced by its value: `get(reference, shape, where)` for a `Get`,
    `json_get(argument, shape, where)` for a `Std:JsonGet`, a Std:Join joined (a placeholder if a part is one).
    `shape` is botocore's shape of the field, where known (None: untyped); a Join in a field that is not a
    string is one of `problems`, as CreatePipeline refuses it."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in FUNCTIONS:
        [(function, argument)] = value.items()
        if function == "Get":
            return get(str(argument), shape, where)
        if function == "Std:JsonGet":
            return json_get(argument, shape, where)
        parts = [resolve(part, get, json_get, None, where, problems) for part in argument.get("Values", [])]
        joined = argument.get("On", "").join(as_text(part) for part in parts)
        kind = shape.type_name if shape is not None else "string"
        if kind != "string" and problems is not None:
            problems.append(f"{where}: a Std:Join (a string) in a field of type {kind}")
        return RunTime(joined) if any(isinstance(part, RunTime) for part in parts) else joined
    kind = shape.type_name if shape is not None else None
    if isinstance(value, dict):

        def member(key: str) -> Any:  # a structure's member or a map's values; None where unknown
            return shape.members.get(key) if kind == "structure" else shape.value if kind == "map" else None

        return {
            key: resolve(item, get, json_get, member(key), f"{where}.{key}", problems) for key, item in value.items()
        }
    if isinstance(value, list):
        item_shape = shape.member if kind == "list" else None
        return [resolve(item, get, json_get, item_shape, f"{where}[{i}]", problems) for i, item in enumerate(value)]
    return value
