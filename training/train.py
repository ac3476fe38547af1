"""The training entry point, speaking the SageMaker training toolkit contract.

Hyperparameters arrive as `--key value` arguments; data in SM_CHANNEL_TRAIN and SM_CHANNEL_VALIDATION; the
model goes to SM_MODEL_DIR and metrics to SM_OUTPUT_DATA_DIR. `--family` picks the model family.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.errors import PravahError
from pipelines.fingerprint import hash_tree
from steps.io import run_entry
from training.artifact import library_versions, seal
from training.families import family


def coerce(value: str) -> Any:
    """Hyperparameters come as strings: give numbers and booleans their type back."""
    lowered = value.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def parse_hyperparameters(argv: Sequence[str] | None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--family", default="sklearn-text")
    known, rest = parser.parse_known_args(argv)
    if len(rest) % 2 or any(not key.startswith("--") for key in rest[::2]):
        raise PravahError(f"hyperparameters must be --key value pairs, got: {' '.join(rest)}")
    return {
        "family": known.family,
        **{key[2:]: coerce(value) for key, value in zip(rest[::2], rest[1::2], strict=True)},
    }


def read_channel(folder: Path):
    import pandas as pd

    files = sorted(folder.rglob("*.parquet"))
    if not files:
        raise PravahError(f"no parquet files in channel {folder}")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def main(argv: Sequence[str] | None = None) -> None:
    hyperparameters = parse_hyperparameters(argv)
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    output_dir = Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    train_dir = Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    validation_dir = Path(os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    name = hyperparameters.pop("family")
    model_family = family(name)

    from sklearn.metrics import accuracy_score, f1_score

    train, validation = read_channel(train_dir), read_channel(validation_dir)
    started = time.perf_counter()
    model = model_family.fit(train["text"].tolist(), train["label"].tolist(), hyperparameters,
                             validation=(validation["text"].tolist(), validation["label"].tolist()))  # fmt: skip
    seconds = time.perf_counter() - started
    predicted = [
        model_family.classes(model)[i]
        for i in model_family.predict_proba(model, validation["text"].tolist()).argmax(axis=1)
    ]
    metrics = {
        "accuracy": float(accuracy_score(validation["label"], predicted)),
        "macro_f1": float(f1_score(validation["label"], predicted, average="macro")),
    }
    model_family.save(model, model_dir)
    manifest = {
        "family": name,
        "hyperparameters": hyperparameters,
        "libraries": library_versions("scikit-learn", "skops", "numpy", "torch", "safetensors", "transformers"),
        "training_data_sha256": hash_tree(train_dir).digest,
        "training_rows": len(train),
        "languages": sorted(train["language"].unique().tolist()),
        "validation_metrics": metrics,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_seconds": round(seconds, 3),
    }
    seal(model_dir, manifest, model_family.classes(model))
    (output_dir / "metrics.json").write_text(json.dumps({"validation": metrics, "training_seconds": seconds}, indent=2))
    print(f"trained {name} on {len(train)} rows in {seconds:.1f}s; validation {metrics}")


if __name__ == "__main__":
    run_entry(main)
