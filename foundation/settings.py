"""Settings files (configs/environments, serving, monitoring) as pydantic models: every problem named by file,
line and field. Kept apart from foundation/yamlfile.py so that reading a pipeline spec never imports pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from foundation.errors import PravahError, did_you_mean
from foundation.home import project_root
from foundation.yamlfile import Loc, load_yaml


def load_validated(path: Path, model: type[BaseModel]) -> Any:
    """A YAML config file as `model` (a pydantic model); every problem named by file, line and field."""
    doc = load_yaml(path)
    try:
        return model.model_validate({} if doc.data is None else doc.data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            if error["type"] == "extra_forbidden":
                message = f"unknown field '{loc[-1]}'{did_you_mean(str(loc[-1]), _fields_at(model, loc[:-1]))}"
            else:
                message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{doc.where(loc)}: {message}")
        raise PravahError("\n".join(problems)) from None


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The field names of the (nested) model at `loc`, for 'did you mean'."""
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        nested = [t for t in (annotation, *get_args(annotation)) if isinstance(t, type) and issubclass(t, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


class ConfigSection(BaseModel):
    """A part of a settings file: unknown fields are mistakes, values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def load_settings(path: Path | None, model: type[BaseModel], default_path: Path) -> Any:
    """The given file, else `default_path` when it exists (relative to the project folder), else the defaults."""
    if path is None:
        default_path = project_root() / default_path
        path = default_path if default_path.is_file() else None
    return load_validated(path, model) if path else model()
