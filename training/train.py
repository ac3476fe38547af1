"""The training entry point, speaking SageMaker's training contract (as the runtime image's `train` and the
local runner give it).

Hyperparameters arrive as `--key value` arguments; data in SM_CHANNEL_TRAIN and SM_CHANNEL_VALIDATION; the
model goes to SM_MODEL_DIR and metrics to SM_OUTPUT_DATA_DIR. `--family` picks the model family.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from artifact.contract import column_types, library_versions, seal
from foundation.errors import PravahError
from foundation.fingerprint import hash_tree
from steps.io import channel_batches, channel_rows, read_channel, run_entry
from steps.parallel import spawned_map
from steps.progress import CHUNK_ROWS, Meter, heartbeat, in_chunks
from training.families import family


def print_metrics(report: dict[str, Any], prefix: str = "") -> None:
    """`metric NAME=VALUE` for every number of the training report: a SageMaker tuning job reads its objective
    from the log with metric_regex (pipelines/sagemaker/tuning.py)."""
    for key, value in report.items():
        if isinstance(value, dict):
            print_metrics(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            print(f"metric {prefix}{key}={value:.6g}")


def metric_regex(name: str) -> str:
    """The MetricDefinitions regex that reads `name` from the line print_metrics writes."""
    return rf"metric {re.escape(name)}=([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


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
    """`--key value` pairs, as the local runner and the runtime image's `train` pass them (and SageMaker's
    training toolkit, which gives a one-letter name a single dash: `-C 10.0`)."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    keys = tokens[::2]
    if len(tokens) % 2 or any(not re.fullmatch(r"--\w[\w.-]*|-\w", key) for key in keys):
        raise PravahError(f"hyperparameters must be --key value pairs, got: {' '.join(tokens)}")
    values = {key.lstrip("-"): value for key, value in zip(keys, tokens[1::2], strict=True)}
    return {"family": values.pop("family", "sklearn-text"), **{k: coerce(v) for k, v in values.items()}}


IGNORED_COLUMNS = {"id", "split", "source_file"}


def feature_frame(frame, columns: list[str] | None, target: str):
    """The columns a family reads: its own list, or every column but the target and bookkeeping ones."""
    if columns is None:
        columns = [c for c in frame.columns if c != target and c not in IGNORED_COLUMNS]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PravahError(f"the training data has no column {missing[0]!r} (columns: {', '.join(frame.columns)})")
    return frame[columns]


def validation_metrics(task: str, truth, predicted) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score

    if task == "regression":
        return {"rmse": float(mean_squared_error(truth, predicted) ** 0.5), "r2": float(r2_score(truth, predicted))}
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro")),
    }


def calibrate(probabilities, truth: list[str], labels: list[str]) -> dict[str, Any]:
    """A temperature fitted on the validation rows whose label the model knows, with the expected calibration
    error before and after (artifact/calibration.py; the Predictor applies it)."""
    import numpy as np

    from artifact.calibration import apply_temperature, fit_temperature, reliability

    known = [i for i, label in enumerate(truth) if label in labels]
    given, index = np.asarray(probabilities)[known], [labels.index(truth[i]) for i in known]
    temperature = fit_temperature(given, index) if known else 1.0
    before, after = reliability(given, index)[0], reliability(apply_temperature(given, temperature), index)[0]
    return {
        "method": "temperature",
        "temperature": temperature,
        "validation_rows": len(known),
        "validation_ece_before": round(before, 6),
        "validation_ece_after": round(after, 6),
    }


def streamed_batches(folder: Path, columns: list[str], target: str):
    """The training channel, batch by batch, anew for each of the streamed fit's passes."""

    def batches(rows: int):
        for frame in channel_batches(folder, [*columns, target], rows):
            yield frame[columns], frame[target].astype(str).tolist()

    return batches


def read_channel_head(folder: Path):
    """The channel's first rows: its columns and their types, without reading the rest."""
    return next(channel_batches(folder, None, 1000))


def channel_languages(folder: Path) -> list[str]:
    """The languages of a channel, reading only that column."""
    return sorted(read_channel(folder, ["language"])["language"].unique().tolist())


_SCORING: list = []  # a scoring process's family module and model


def _load_saved(family_module: str, model_dir: str) -> None:
    import importlib

    module = importlib.import_module(family_module)
    _SCORING[:] = [module, module.load(Path(model_dir))]


def _score_rows(features):
    module, model = _SCORING
    return module.predict_proba(model, features)


def score_saved(model_family, model_dir: Path, folder: Path, columns: list[str], target: str):
    """A streamed fit's validation split, too big to hold as texts: read a chunk at a time and scored by a
    process per core, each loading the saved model; its probabilities and labels."""
    import numpy as np
    import pandas as pd
    from pandas.api.types import union_categoricals

    truths = []

    def features(frame):
        truths.append(pd.Categorical(frame[target].astype(str)))
        return frame[columns]

    chunks = map(features, channel_batches(folder, [*columns, target], CHUNK_ROWS))
    meter, done = Meter("validation rows scored", channel_rows(folder)), []
    loaded = (model_family.__name__, str(model_dir))
    for answer in spawned_map(_score_rows, chunks, initializer=_load_saved, initargs=loaded):
        done.append(answer)
        meter.add(len(answer))
    meter.done()
    return np.concatenate(done), np.asarray(union_categoricals(truths)).tolist()


def main(argv: Sequence[str] | None = None) -> None:
    import numpy as np

    hyperparameters = parse_hyperparameters(argv)
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    output_dir = Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    train_dir = Path(os.environ.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    validation_dir = Path(os.environ.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    name = hyperparameters.pop("family")
    target = str(hyperparameters.pop("target", "label"))
    task = str(hyperparameters.get("task", "classification"))
    model_family = family(name)

    rows = channel_rows(train_dir)
    streaming = hasattr(model_family, "streams") and model_family.streams(rows, hyperparameters)
    # streaming: the first rows say what the manifest describes, and the rows stream past (fit_batches); the
    # validation rows are scored a chunk at a time once the model is saved (score_saved)
    train = read_channel_head(train_dir) if streaming else read_channel(train_dir)
    validation = read_channel_head(validation_dir) if streaming else read_channel(validation_dir)
    for split, frame in (("train", train), ("validation", validation)):
        if target not in frame.columns:
            raise PravahError(f"the {split} data has no target column {target!r} (columns: {', '.join(frame.columns)})")
    features = feature_frame(train, model_family.FEATURES, target)
    held_out = feature_frame(validation, list(features.columns), target)
    started = time.perf_counter()
    with heartbeat(f"fitting {name} on {rows:,} rows ({channel_rows(validation_dir):,} held out)"):
        if streaming:
            batches = streamed_batches(train_dir, list(features.columns), target)
            model = model_family.fit_batches(batches, hyperparameters)
        else:
            model = model_family.fit(
                features, train[target].tolist(), hyperparameters, validation=(held_out, validation[target].tolist())
            )
    seconds = time.perf_counter() - started
    model_family.save(model, model_dir)  # a write only; a streamed fit's validation rows are scored from it
    calibration = None
    if task == "regression":
        predicted = model_family.predict_values(model, held_out)
        truth = validation[target].tolist()
    else:
        labels = model_family.classes(model)
        if streaming:
            probabilities, truth = score_saved(model_family, model_dir, validation_dir, list(features.columns), target)
        else:
            probabilities = np.concatenate(
                in_chunks(
                    "validation rows scored",
                    len(held_out),
                    lambda part: model_family.predict_proba(model, held_out.iloc[part]),
                )
            )
            truth = validation[target].astype(str).tolist()
        predicted = [labels[i] for i in probabilities.argmax(axis=1)]
        calibration = calibrate(probabilities, truth, labels)
    metrics = validation_metrics(task, truth, predicted)
    manifest = {
        "family": name,
        "loader": model_family.__name__,  # what serving imports to load it (artifact.contract.loader_of)
        "task": task,
        "target": target,
        "features": list(features.columns),
        "input_schema": column_types(features),
        "hyperparameters": hyperparameters,
        "libraries": library_versions("scikit-learn", "skops", "numpy", "torch", "safetensors", "transformers"),
        "training_data_sha256": hash_tree(train_dir).digest,
        "training_rows": rows,
        "languages": channel_languages(train_dir) if "language" in train.columns else [],
        "validation_metrics": metrics,  # no time in the artifact: the same training gives the same bytes
        **({"calibration": calibration} if calibration else {}),
    }
    (model_dir / "input_example.json").write_text(held_out.head(2).to_json(orient="records", force_ascii=False))
    seal(model_dir, manifest, model_family.classes(model))
    finished = {"validation": metrics, "training_seconds": seconds, "trained_at": datetime.now(UTC).isoformat()}
    (output_dir / "metrics.json").write_text(json.dumps(finished, indent=2))
    print(f"trained {name} ({task}) on {rows} rows in {seconds:.1f}s; validation {metrics}")
    print_metrics({"validation": metrics, "training_seconds": seconds})


if __name__ == "__main__":
    run_entry(main)
