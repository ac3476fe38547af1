"""What a prediction request may hold, and the reading of one: the bodies of `predict` and `batch-predict`
(the OpenAPI document shows these models), read from the bytes as sent.

Free of the web framework, so that the batch scoring process reads a batch's body itself: a body of megabytes
is parsed and checked there, never on the server's event loop. Input that cannot be scored is refused before
scoring, naming the field: in a batch, item by item (the others are still scored).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from artifact.text import language_code

# What a body's bytes must hold for json to give a lone surrogate (\ud800) or a number that is not finite
# (NaN, Infinity, 1e999, a float of 309 digits); only such bodies are walked value by value.
_SUSPECT = re.compile(rb"\\u[dD][89a-fA-F]|NaN|Infinity|[eE][+]?\d{3}|\d{309}")


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    language: str | None = Field(None, description="ISO 639-1 (hi), ISO 639-3 (hin) or FLORES-200 (hin_Deva)")
    context: str | None = None


class PredictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="The text to classify, in any of the model's languages")
    metadata: Metadata | None = None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: PredictInput


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[PredictInput] = Field(description="Items that cannot be scored get an error in the results; "
                                       "the others are scored")  # fmt: skip
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
    texts: list[str | None]  # None where the item was refused
    refused: dict[int, tuple[str, str]]  # item index -> (field, message)
    callback_url: str | None


def read_predict(raw: bytes, limits: Limits) -> tuple[str, str]:
    """(the text to score, the body as text) of a predict request; InputRefused otherwise."""
    sent, value = _decoded(raw)
    if value is not None:
        check_values(value)
    body = _validated(PredictRequest, raw, value)
    return _checked_text(body.input, "input", limits), sent


def read_batch(raw: bytes, limits: Limits) -> BatchInputs:
    """A batch's items, each either its text or the reason it cannot be scored; InputRefused when the body
    itself is wrong (not JSON, no list of inputs, too many, none that can be scored)."""
    _, value = _decoded(raw)
    refused: dict[int, tuple[str, str]] = {}
    if isinstance(value, dict):  # values no model can take: refused item by item, or the body for its own fields
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
    texts: list[str | None] = []
    for index, item in enumerate(body.inputs):
        try:
            if index in refused:
                raise InputRefused([refused[index]])
            texts.append(_checked_text(PredictInput.model_validate(item), f"inputs.{index}", limits))
        except ValidationError as exc:
            refused[index] = _details(exc, f"inputs.{index}")[0]
            texts.append(None)
        except InputRefused as exc:
            refused[index] = exc.details[0]
            texts.append(None)
    if len(refused) == len(texts):
        raise InputRefused([refused[index] for index in sorted(refused)])
    return BatchInputs(texts, refused, body.callbackUrl)


def check_values(value: Any, where: str = "") -> None:
    """Refuse what JSON lets through but no model, log or capture file can hold: a string that is not valid
    Unicode (a lone surrogate such as \\ud800) and NaN or Infinity, naming the field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            message = f"not valid Unicode: a lone surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}"
            raise InputRefused([(where or "body", message)]) from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise InputRefused([(where or "body", f"{value} is not a number JSON allows")])
    elif isinstance(value, dict):
        for key, item in value.items():
            check_values(key, where or "body")
            check_values(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_values(item, f"{where}.{index}")


def _decoded(raw: bytes) -> tuple[str, Any]:
    """The body as text (UTF-8, RFC 8259), and its parsed value when its bytes could hold a value no model can
    take (then it is walked by check_values; otherwise pydantic reads the bytes at once)."""
    try:
        sent = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputRefused([("body", f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}")]) from None
    if not _SUSPECT.search(raw):
        return sent, None
    try:
        return sent, json.loads(sent)
    except json.JSONDecodeError:
        return sent, None  # pydantic says where it is not JSON


def _validated(model: type[_Body], raw: bytes, value: Any) -> _Body:
    try:
        return model.model_validate_json(raw) if value is None else model.model_validate(value)
    except ValidationError as exc:
        raise InputRefused(_details(exc)) from None


def _checked_text(item: PredictInput, where: str, limits: Limits) -> str:
    text = item.text
    if not text.strip():
        raise InputRefused([(f"{where}.text", "the text is empty")])
    if len(text) > limits.max_text_chars:
        raise InputRefused([(f"{where}.text", f"{len(text)} characters; at most {limits.max_text_chars}")])
    language = item.metadata.language if item.metadata else None
    if language is not None and language_code(language) is None:
        message = f"unknown language '{language}': use an ISO 639-1 code (hi), ISO 639-3 (hin) or FLORES-200 (hin_Deva)"
        raise InputRefused([(f"{where}.metadata.language", message)])
    return text


def _details(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    details = []
    for problem in error.errors(include_url=False):
        if problem["type"] == "json_invalid":
            details.append(("body", f"not valid JSON: {problem.get('ctx', {}).get('error', '')}"))
            continue
        field = ".".join(str(part) for part in problem["loc"])
        details.append((".".join(part for part in (prefix, field) if part) or "body", problem["msg"]))
    return details
