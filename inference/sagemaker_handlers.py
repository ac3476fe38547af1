"""The inference contract of SageMaker's framework containers (model_fn, input_fn, predict_fn, output_fn),
so that an endpoint built from the scikit-learn or PyTorch image serves a Pravah artifact as it is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from artifact.predictor import Predictor
from foundation.errors import PravahError

MAX_BATCH = 1000


class BadRequest(PravahError):
    """The request body is not what the endpoint takes."""


def model_fn(model_dir: str) -> Predictor:
    return Predictor(Path(model_dir))


def input_fn(body: str | bytes, content_type: str) -> Any:
    """`application/json`: {"inputs": [texts]}, {"text": text} or a list of texts, or, for a table's model,
    {"instances": [{"column": value, ...}, ...]} (a frame); `text/plain`: one text per line."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    if content_type.startswith("text/plain"):
        return _texts([line for line in text.splitlines() if line.strip()])
    if not content_type.startswith("application/json"):
        raise BadRequest(f"content type {content_type} is not supported (application/json, text/plain)")
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if isinstance(payload, dict) and "instances" in payload:
        return _instances(payload["instances"])
    if isinstance(payload, dict) and "text" in payload:
        payload = [payload["text"]]
    elif isinstance(payload, dict):
        payload = payload.get("inputs")
    if not isinstance(payload, list) or not all(isinstance(t, str) for t in payload):
        raise BadRequest('expected {"inputs": ["text", ...]}, {"text": "..."}, ["text", ...] or '
                         '{"instances": [{"column": value, ...}, ...]}')  # fmt: skip
    return _texts(payload)


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
    """Texts or a frame: each row's `result`, as the local API answers it."""
    return predictor.results(inputs)


def output_fn(predictions: list[dict[str, Any]], accept: str = "application/json") -> tuple[str, str]:
    if accept not in {"application/json", "*/*"}:
        raise BadRequest(f"accept type {accept} is not supported (application/json)")
    return json.dumps({"predictions": predictions}, ensure_ascii=False), "application/json"
