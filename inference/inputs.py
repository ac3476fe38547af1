"""What a prediction request may hold, and the reading of one: the bodies of `predict` and `batch-predict`
(the OpenAPI document shows these models), read from the bytes as sent.

Free of the web framework, so that the batch scoring process reads a batch's body itself: a body of megabytes
is parsed and checked there, never on the server's event loop. Input that cannot be scored is refused before
scoring, naming the field: in a batch, item by item (the others are still scored).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from artifact.contract import value_problem
from artifact.text import invalid_value, language_code

# What a body's bytes must hold for json to give a lone surrogate (\ud800) or a number that is not finite
# (NaN, Infinity, 1e999, a float of 309 digits); only such bodies are walked value by value.
_SUSPECT = re.compile(rb"\\u[dD][89a-fA-F]|NaN|Infinity|[eE][+]?\d{3}|\d{309}")


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    language: str | None = Field(None, description="ISO 639-1 (hi), ISO 639-3 (hin) or FLORES-200 (hin_Deva)")
    context: str | None = None


class PredictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, description="For a text model: the text, in any of the model's languages")
    features: dict[str, Any] | None = Field(
        None,
        description="For a table's model: the row's values by column (model-info lists the columns and their types)",
    )
    metadata: Metadata | None = None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: PredictInput


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[PredictInput] = Field(
        description="Items that cannot be scored get an error in the results; the others are scored"
    )
    callbackUrl: str | None = Field(None, description="https URL POSTed the status once, when the batch is done")


class _Batch(BaseModel):
    """A batch body's shape, its items read one by one after."""

    model_config = ConfigDict(extra="forbid")
    inputs: list[Any]
    callbackUrl: str | None = None


_Body = TypeVar("_Body", bound=BaseModel)


@dataclass(frozen=True)
class Limits:
    max_text_chars: int
    max_batch_items: int


class InputRefused(Exception):
    """Input that cannot be scored: (field, message) pairs, the fields as dotted paths into the body."""

    def __init__(self, details: list[tuple[str, str]]):
        super().__init__("; ".join(f"{field}: {message}" for field, message in details))
        self.details = details


@dataclass
class BatchInputs:
    texts: list[str | dict[str, Any] | None]  # a text or a row's values; None where the item was refused
    refused: dict[int, tuple[str, str]]  # item index -> (field, message)
    callback_url: str | None
    sent: list[Any] = field(default_factory=list)  # the items as the client sent them (what capture records)


Columns = list[dict[str, str]] | None  # what the model reads: None for text, else its columns (input_columns)


def read_predict(raw: bytes, limits: Limits, columns: Columns = None) -> tuple[str | dict[str, Any], str]:
    """(the item to score: a text, or a row's values by column; the body as text) of a predict request;
    InputRefused otherwise."""
    sent, value, suspect = _decoded(raw)
    if suspect:
        check_values(value)
    body = _validated(PredictRequest, raw, value)
    return _checked_item(body.input, "input", limits, columns), sent


def read_batch(raw: bytes, limits: Limits, columns: Columns = None) -> BatchInputs:
    """A batch's items, each either its text or the reason it cannot be scored; InputRefused when the body
    itself is wrong (not JSON, no list of inputs, too many, none that can be scored)."""
    _, value, suspect = _decoded(raw)
    refused: dict[int, tuple[str, str]] = {}
    if suspect and isinstance(value, dict):  # values no model can take: refused item by item, or the body
        for key, field in value.items():
            for index, item in enumerate(field if key == "inputs" and isinstance(field, list) else []):
                try:
                    check_values(item, f"inputs.{index}")
                except InputRefused as exc:
                    refused[index] = exc.details[0]
            if key != "inputs":
                check_values({key: field})
    body = _validated(_Batch, raw, value)
    if not body.inputs:
        raise InputRefused([("inputs", "inputs is empty")])
    if len(body.inputs) > limits.max_batch_items:
        raise InputRefused([("inputs", f"{len(body.inputs)} inputs; at most {limits.max_batch_items} per batch")])
    texts: list[str | dict[str, Any] | None] = []
    for index, item in enumerate(body.inputs):
        try:
            if index in refused:
                raise InputRefused([refused[index]])
            texts.append(_checked_item(PredictInput.model_validate(item), f"inputs.{index}", limits, columns))
        except ValidationError as exc:
            refused[index] = _details(exc, f"inputs.{index}")[0]
            texts.append(None)
        except InputRefused as exc:
            refused[index] = exc.details[0]
            texts.append(None)
    if len(refused) == len(texts):
        raise InputRefused([refused[index] for index in sorted(refused)])
    return BatchInputs(texts, refused, body.callbackUrl, body.inputs)


def check_values(value: Any, where: str = "") -> None:
    """Refuse what JSON lets through but no model, log or capture file can hold (artifact.text.invalid_value),
    naming the field."""
    found = invalid_value(value, where)
    if found:
        raise InputRefused([found])


def _decoded(raw: bytes) -> tuple[str, Any, bool]:
    """The body as text (UTF-8, RFC 8259), its parsed value (None when it is not JSON: pydantic then says where),
    and whether that value may hold what no model can take and must be walked by check_values. Most bodies are
    read at once by orjson, which refuses lone surrogates, NaN, Infinity and numbers beyond a double; only the
    bodies it refuses are read again by json, which lets those through so that check_values names the field."""
    try:
        sent = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRefused([("body", f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}")]) from None
    try:
        return sent, orjson.loads(raw), False
    except orjson.JSONDecodeError:
        pass
    if not _SUSPECT.search(raw):
        return sent, None, False
    try:
        return sent, json.loads(sent), True
    except json.JSONDecodeError:
        return sent, None, False


def _validated(model: type[_Body], raw: bytes, value: Any) -> _Body:
    try:
        return model.model_validate_json(raw) if value is None else model.model_validate(value)
    except ValidationError as exc:
        raise InputRefused(_details(exc)) from None


def _checked_item(item: PredictInput, where: str, limits: Limits, columns: Columns) -> str | dict[str, Any]:
    """A text for a text model, a row's values for a table's model, each checked; InputRefused naming the
    field otherwise."""
    if columns is None:
        if item.features is not None and item.text is not None:
            raise InputRefused([(f"{where}.features", "this endpoint's model reads text: send input.text alone")])
        if item.text is None:
            reads = "; this endpoint's model reads text" if item.features is not None else ""
            raise InputRefused([(f"{where}.text", f"required{reads}: send input.text")])
        return _checked_text(item, where, limits)
    if item.features is None:
        message = "required: this endpoint's model reads a table row, sent as input.features {column: value, ...}"
        raise InputRefused([(f"{where}.features", message)])
    problems = []
    known = {column["name"]: column["type"] for column in columns}
    for name in item.features:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (the model reads {', '.join(known)})"
            problems.append((f"{where}.features.{name}", f"not a column the model reads{hint}"))
    for name, kind in known.items():
        if name not in item.features:
            problems.append((f"{where}.features.{name}", f"required ({kind}; null if unknown)"))
            continue
        value = item.features[name]
        if problem := value_problem(value, kind):
            problems.append((f"{where}.features.{name}", problem))
        elif isinstance(value, str) and len(value) > limits.max_text_chars:
            problems.append((f"{where}.features.{name}", f"{len(value)} characters; at most {limits.max_text_chars}"))
    if item.text is not None:
        problems.append((f"{where}.text", "this endpoint's model reads a table row: send input.features, not text"))
    if problems:
        raise InputRefused(problems)
    return item.features


def _checked_text(item: PredictInput, where: str, limits: Limits) -> str:
    text = item.text or ""
    if not text.strip():
        raise InputRefused([(f"{where}.text", "the text is empty")])
    if len(text) > limits.max_text_chars:
        raise InputRefused([(f"{where}.text", f"{len(text)} characters; at most {limits.max_text_chars}")])
    language = item.metadata.language if item.metadata else None
    if language is not None and language_code(language) is None:
        message = f"unknown language '{language}': use an ISO 639-1 code (hi), ISO 639-3 (hin) or FLORES-200 (hin_Deva)"
        raise InputRefused([(f"{where}.metadata.language", message)])
    return text


# pydantic's words for a type, as a JSON client knows it (it reads parsed values, and would name Python's)
_JSON_WORDS = {
    "model_type": "Input should be an object",
    "dict_type": "Input should be an object",
    "list_type": "Input should be a valid array",
}


def _details(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    details = []
    for problem in error.errors(include_url=False):
        if problem["type"] == "json_invalid":
            details.append(("body", f"not valid JSON: {problem.get('ctx', {}).get('error', '')}"))
            continue
        field = ".".join(str(part) for part in problem["loc"])
        message = _JSON_WORDS.get(problem["type"], problem["msg"])
        details.append((".".join(part for part in (prefix, field) if part) or "body", message))
    return details
