"""The inference contract of SageMaker's framework containers (model_fn, input_fn, predict_fn, output_fn),
so that an endpoint built from the scikit-learn or PyTorch image serves a Pravah artifact as it is, and a
Batch Transform job scores JSON lines with it (records several to a request, one answer line per record)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artifact.contract import input_columns, row_problem
from artifact.predictor import Predictor
from artifact.text import invalid_value
from foundation.errors import PravahError

MAX_BATCH = 1000


class BadRequest(PravahError):
    """The request body is not what the endpoint takes."""


@dataclass
class Records:
    """A Batch Transform request's JSON lines: what can be scored, and why each other line cannot (by its
    index): one bad line is answered with its error, never fails the job."""

    items: list[Any]
    refused: dict[int, str] = field(default_factory=dict)


def model_fn(model_dir: str) -> Predictor:
    return Predictor(Path(model_dir))


def input_fn(body: str | bytes, content_type: str) -> Any:
    """`application/json`: {"inputs": [texts]}, {"text": text} or a list of texts, or, for a table's model,
    {"instances": [{"column": value, ...}, ...]} (a frame); `text/plain`: one text per line;
    `application/jsonlines` (Batch Transform): one {"text": ...} or {"column": value, ...} per line."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8: byte 0x{body[exc.start]:02x} at {exc.start}") from None
    if content_type.startswith("text/plain"):
        return _texts([line for line in text.splitlines() if line.strip()])
    if content_type.startswith("application/jsonlines"):
        return _records(text.splitlines())
    if not content_type.startswith("application/json"):
        raise BadRequest(f"content type {content_type} is not supported (application/json, text/plain)")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if found := invalid_value(payload):
        raise BadRequest(f"{found[0]}: {found[1]}")
    if isinstance(payload, dict) and "instances" in payload:
        return _instances(payload["instances"])
    if isinstance(payload, dict) and "text" in payload:
        payload = [payload["text"]]
    elif isinstance(payload, dict):
        payload = payload.get("inputs")
    if not isinstance(payload, list) or not all(isinstance(t, str) for t in payload):
        raise BadRequest(
            'expected {"inputs": ["text", ...]}, {"text": "..."}, ["text", ...] or '
            '{"instances": [{"column": value, ...}, ...]}'
        )
    return _texts(payload)


def _records(lines: list[str]) -> Records:
    records = Records([])
    for index, line in enumerate(lines):
        try:
            record = json.loads(line)
        except ValueError:
            records.refused[index] = "not JSON"
            continue
        if found := invalid_value(record):
            records.refused[index] = f"{found[0]}: {found[1]}"
            continue
        if isinstance(record, dict) and "text" in record:
            record = record["text"]
            if not isinstance(record, str) or not record.strip():
                records.refused[index] = "the text is empty or not a string"
                continue
        elif not isinstance(record, dict) or not record:
            records.refused[index] = 'expected {"text": "..."} or {"column": value, ...}'
            continue
        records.items.append(record)
    return records  # a line of the wrong sort for the model is refused by predict_fn, which knows the model


def _texts(texts: list[str]) -> list[str]:
    if not texts or any(not t.strip() for t in texts):
        raise BadRequest("every input needs non-empty text")
    if len(texts) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} texts per request, got {len(texts)}")
    return texts


def _instances(rows: Any):
    import pandas as pd

    if not isinstance(rows, list) or not rows or not all(isinstance(row, dict) for row in rows):
        raise BadRequest('expected {"instances": [{"column": value, ...}, ...]}')
    if len(rows) > MAX_BATCH:
        raise BadRequest(f"at most {MAX_BATCH} instances per request, got {len(rows)}")
    return pd.DataFrame(rows)


def predict_fn(inputs: Any, predictor: Predictor) -> list[dict[str, Any]]:
    """Texts or a frame: each row's `result`, as the local API answers it; JSON lines: each line's, in order
    (an error in place of each line that cannot be scored)."""
    if not isinstance(inputs, Records):
        return predictor.results(inputs)
    total = len(inputs.items) + len(inputs.refused)
    lines = [i for i in range(total) if i not in inputs.refused]  # the line each item came from
    columns = input_columns(predictor.manifest)
    if columns is not None:  # a table's rows: each checked against the model's columns, as the API checks them
        problems = [row_problem(row, columns) if isinstance(row, dict) else "expected a row" for row in inputs.items]
        inputs.refused |= {line: problem for line, problem in zip(lines, problems, strict=True) if problem}
        inputs.items = [row for row, problem in zip(inputs.items, problems, strict=True) if not problem]
    elif inputs.items and not isinstance(inputs.items[0], str):
        inputs.refused |= dict.fromkeys(lines, 'this model reads text: expected {"text": "..."}')
        inputs.items = []
    if inputs.items and columns is not None:
        import pandas as pd

        scored = iter(predictor.results(pd.DataFrame(inputs.items)))
    else:
        scored = iter(predictor.results(inputs.items) if inputs.items else [])
    return [{"error": inputs.refused[i]} if i in inputs.refused else next(scored) for i in range(total)]


def output_fn(predictions: list[dict[str, Any]], accept: str = "application/json") -> tuple[str, str]:
    """{"predictions": [...]} as JSON, or, for Batch Transform's `application/jsonlines`, one line each."""
    if accept == "application/jsonlines":
        # no newline after the last: Batch Transform's AssembleWith Line adds one after each answer
        return "\n".join(json.dumps(p, ensure_ascii=False) for p in predictions), accept
    if accept not in {"application/json", "*/*"}:
        raise BadRequest(f"accept type {accept} is not supported (application/json, application/jsonlines)")
    return json.dumps({"predictions": predictions}, ensure_ascii=False), "application/json"
