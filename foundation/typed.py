"""Plain data (parsed YAML or JSON) read into dataclasses by their type hints, every problem with its place.

The pipeline spec and the run records are read on every `pravah run`. As pydantic models, their import and
schema building were most of a cached run's 0.36 s, so they are standard dataclasses, read by the few rules
below: exact scalar types (an int is not a bool, a float may be written as an int), `Literal`, lists, dicts,
unions (the option whose type or fields the data matches), `Tagged` unions chosen by one field, `Check`
limits, unknown fields refused (unless the class `ignores_unknown_fields`), a class's `_shorthand` to rewrite
YAML shorthand before reading, and its `__post_init__` for rules across fields (a ValueError there is a
problem at the object's place). Settings files keep pydantic (foundation/settings.py): the commands that
read them load heavier libraries anyway.

msgspec (in the lock) was measured in its place (2026-12-07): it reads a run record in 17 us against 0.54 ms
here, but imports in 21 ms against 6 ms, and it takes no union of dataclasses (the spec's steps), so the spec's
types would have to become msgspec Structs; a cached run reads one spec and a few records, so it would be
slower by about 15 ms. Kept, for now.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from foundation.errors import did_you_mean

Loc = tuple[str | int, ...]
Problems = list[tuple[Loc, str]]
_FAILED = object()  # what a read returns after adding its problems
_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", NoneType: "nothing"}


@dataclasses.dataclass(frozen=True)
class Check:
    """Limits on a field: `Annotated[int, Check(ge=1, le=10)]`; `says` replaces the pattern in its message."""

    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    pattern: str | None = None
    says: str | None = None

    def problem(self, value: Any) -> str | None:
        if self.ge is not None and value < self.ge:
            return f"must be at least {self.ge:g}, got {value!r}"
        if self.le is not None and value > self.le:
            return f"must be at most {self.le:g}, got {value!r}"
        if self.min_length is not None and len(value) < self.min_length:
            return "must not be empty" if self.min_length == 1 else f"needs at least {self.min_length} items"
        if self.pattern is not None and not re.search(self.pattern, value):
            return f"'{value}' {self.says or f'does not match {self.pattern}'}"
        return None


@dataclasses.dataclass(frozen=True)
class Tagged:
    """A union of dataclasses chosen by the value of one field, each option's `Literal` on it:
    `Annotated[A | B, Tagged("kind", "step")]`; or an open one, `Annotated[Any, Tagged(..., options=LIST)]`,
    whose options are the classes in LIST when it is read (a registry that modules add their classes to)."""

    field: str
    what: str
    options: list[type] | None = dataclasses.field(default=None, compare=False)


class Invalid(ValueError):
    """Every problem found, each with its place (a path of keys and list indexes)."""

    def __init__(self, problems: Problems):
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, loc)) or 'the document'}: {text}" for loc, text in problems))


def read(data: Any, kind: Any) -> Any:
    """`data` as `kind` (a dataclass, or any type the rules above know); raises Invalid listing every problem."""
    problems: Problems = []
    value = _read(data, kind, (), problems)
    if problems:
        raise Invalid(problems)
    return value


def _read(data: Any, kind: Any, loc: Loc, problems: Problems) -> Any:
    origin = get_origin(kind)
    if origin is Annotated:
        base, extras = kind.__origin__, kind.__metadata__
        tag = next((extra for extra in extras if isinstance(extra, Tagged)), None)
        if tag:
            options = tuple(tag.options) if tag.options is not None else get_args(base)
            value = _tagged(data, options, tag, loc, problems)
        else:
            value = _read(data, base, loc, problems)
        for check in extras:
            if isinstance(check, Check) and value is not _FAILED and (problem := check.problem(value)):
                return _fail(problems, loc, problem)
        return value
    if kind is Any:
        return data
    if dataclasses.is_dataclass(kind):
        return _dataclass(data, kind, loc, problems)
    if origin is Literal:
        options = get_args(kind)
        if any(data == option and type(data) is type(option) for option in options):
            return data
        hint = did_you_mean(data, [str(o) for o in options]) if isinstance(data, str) else ""
        return _fail(problems, loc, f"expected {_either([repr(o) for o in options])}, got {data!r}{hint}")
    if origin in (Union, UnionType):
        return _union(data, get_args(kind), loc, problems)
    if origin is list:
        if not isinstance(data, list):
            return _fail(problems, loc, f"expected a list, got {data!r}")
        items = [_read(item, get_args(kind)[0], (*loc, index), problems) for index, item in enumerate(data)]
        return _FAILED if _FAILED in items else items
    if origin is dict:
        if not isinstance(data, dict):
            return _fail(problems, loc, f"expected a mapping, got {data!r}")
        key_kind, value_kind = get_args(kind)
        read_items = {
            _read(key, key_kind, (*loc, key), problems): _read(value, value_kind, (*loc, key), problems)
            for key, value in data.items()
        }
        return _FAILED if _FAILED in read_items or _FAILED in read_items.values() else read_items
    if kind in _SCALARS:
        if type(data) is kind or (kind is float and type(data) is int):
            return kind(data) if kind is float else data
        return _fail(problems, loc, f"expected {_SCALARS[kind]}, got {data!r}")
    raise TypeError(f"foundation.typed cannot read {kind!r}")


def _dataclass(data: Any, kind: type, loc: Loc, problems: Problems) -> Any:
    shorthand = getattr(kind, "_shorthand", None)
    if shorthand is not None:
        try:
            data = shorthand(data)
        except ValueError as exc:
            return _fail(problems, loc, str(exc))
    if not isinstance(data, dict):
        return _fail(problems, loc, f"expected a mapping, got {data!r}")
    fields, found = _fields(kind), len(problems)
    for key in data:
        if key not in fields and not getattr(kind, "ignores_unknown_fields", False):
            problems.append(((*loc, key), f"unknown field '{key}'{did_you_mean(str(key), fields)}"))
    values = {}
    for name, (hint, required) in fields.items():
        if name in data:
            values[name] = _read(data[name], hint, (*loc, name), problems)
        elif required:
            problems.append(((*loc, name), f"required field '{name}' is missing"))
    if len(problems) > found:
        return _FAILED
    try:
        return kind(**values)
    except ValueError as exc:  # a rule across fields, from __post_init__
        return _fail(problems, loc, str(exc))


_FIELDS: dict[type, dict[str, tuple[Any, bool]]] = {}


def _fields(kind: type) -> dict[str, tuple[Any, bool]]:
    """Each field's type hint and whether it must be given, once per class."""
    if kind not in _FIELDS:
        hints = typing.get_type_hints(kind, include_extras=True)
        _FIELDS[kind] = {
            f.name: (hints[f.name], f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(kind)
            if f.init
        }
    return _FIELDS[kind]


def _union(data: Any, options: tuple[Any, ...], loc: Loc, problems: Problems) -> Any:
    """The option of data's own type first (true stays a bool, 1 an int), then the first that reads. When none
    does, the problems of the dataclass sharing most keys with the data, or of the one whose shorthand it is."""
    ordered = sorted(options, key=lambda option: type(data) is not option)
    attempts = []
    for option in ordered:
        attempt: Problems = []
        value = _read(data, option, loc, attempt)
        if not attempt:
            return value
        attempts.append((option, attempt))
    classes = [(option, attempt) for option, attempt in attempts if dataclasses.is_dataclass(option)]
    if isinstance(data, dict) and classes:
        option, attempt = max(classes, key=lambda pair: len(set(data) & set(_fields(pair[0]))))
        if set(data) & set(_fields(option)):
            problems.extend(attempt)
            return _FAILED
    if isinstance(data, str):
        for option, attempt in classes:
            if getattr(option, "_shorthand", None) is not None and not attempt[0][1].startswith("expected"):
                problems.extend(attempt)
                return _FAILED
    return _fail(problems, loc, f"expected {_either([_describe(option) for option in options])}, got {data!r}")


def _tagged(data: Any, options: tuple[type, ...], tag: Tagged, loc: Loc, problems: Problems) -> Any:
    by_tag = {get_args(_fields(option)[tag.field][0])[0]: option for option in options}
    if not isinstance(data, dict):
        return _fail(problems, loc, f"expected a mapping, got {data!r}")
    if tag.field not in data:
        return _fail(problems, loc, f"a {tag.what} needs '{tag.field}' ({', '.join(by_tag)})")
    found = data[tag.field]
    if found not in by_tag:
        hint = did_you_mean(str(found), by_tag)
        return _fail(
            problems, loc, f"unknown {tag.what} {tag.field} '{found}'{hint}; {tag.field}s: {', '.join(by_tag)}"
        )
    return _read(data, by_tag[found], loc, problems)


def _describe(option: Any) -> str:
    if dataclasses.is_dataclass(option):
        return "{" + ", ".join(name for name, (_, required) in _fields(option).items() if required) + "}"
    return _SCALARS.get(option, str(option))


def _either(choices: list[str]) -> str:
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


def _fail(problems: Problems, loc: Loc, text: str) -> Any:
    problems.append((loc, text))
    return _FAILED
