"""The Predictor: a verified model artifact behind `predict(texts)`, used by evaluation and serving."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifact.calibration import apply_temperature
from artifact.contract import ArtifactError, loader_of, open_artifact, unpack_model_archive
from artifact.text import normalize_text


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float
    alternatives: list[tuple[str, float]]

    def as_result(self) -> dict[str, Any]:
        """The design doc's `result`: {prediction, confidence, alternatives: [{value, confidence}]}; also the
        body SageMaker's container answers with and the scoring process sends."""
        return _result(self.label, self.confidence, self.alternatives)


def _result(label: str, confidence: float, alternatives: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "prediction": label,
        "confidence": confidence,
        "alternatives": [{"value": value, "confidence": score} for value, score in alternatives],
    }


class Predictor:
    def __init__(self, model_dir: Path, lazy: bool = False):
        """The verified artifact, its model loaded now, or (`lazy`) when first asked: a process that only reads
        the manifest (evaluate, whose scoring processes load their own) does not pay for the load."""
        self.model_dir = model_dir = _unpacked(Path(model_dir))  # the artifact's folder (a model.tar.gz unpacked)
        self.manifest = open_artifact(model_dir)
        self.labels: list[str] = self.manifest["labels"]
        self.temperature = float(self.manifest.get("calibration", {}).get("temperature", 1.0))  # 1.0: as trained
        self._family = loader_of(self.manifest)
        self._loaded = None if lazy else self._family.load(model_dir)

    @property
    def _model(self):
        if self._loaded is None:
            self._loaded = self._family.load(self.model_dir)
        return self._loaded

    @property
    def task(self) -> str:
        return self.manifest.get("task", "classification")

    def features(self, inputs):
        """The model's input frame from texts, rows (values by column) or a table (extra columns ignored)."""
        import pandas as pd

        columns = self.manifest.get("features") or ["text"]
        if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
            inputs = pd.DataFrame.from_records(inputs, columns=columns)
        elif isinstance(inputs, list) and columns == ["text"]:  # texts for a text model (serving): no copies
            return pd.DataFrame({"text": [normalize_text(str(text)) for text in inputs]})
        elif isinstance(inputs, list):
            inputs = pd.DataFrame({"text": inputs})
        missing = [c for c in columns if c not in inputs.columns]
        if missing:
            raise ArtifactError(f"the input has no column {missing[0]!r}; the model reads {', '.join(columns)}")
        frame = inputs[columns].copy()
        if "text" in frame.columns:
            frame["text"] = frame["text"].astype(str).map(normalize_text)
        return frame

    def predict_proba(self, inputs, calibrated: bool = True):
        """Class probabilities, columns in `self.labels` order, for texts or a table; calibrated by the
        temperature training fitted (artifact/calibration.py) unless `calibrated` is False."""
        probabilities = self._family.predict_proba(self._model, self.features(inputs))
        return apply_temperature(probabilities, self.temperature) if calibrated else probabilities

    def predict_values(self, inputs):
        """A regression's predictions."""
        return self._family.predict_values(self._model, self.features(inputs))

    def results(self, inputs, top_k: int = 3) -> list[dict[str, Any]]:
        """The design doc's `result` for each input, whatever the task: a classification's label, confidence and
        alternatives; a regression's value (no confidence, no alternatives). What serving answers, batch
        results hold and SageMaker's container sends."""
        if self.task == "regression":
            return [
                {"prediction": float(value), "confidence": None, "alternatives": []}
                for value in self.predict_values(inputs)
            ]
        return [_result(*ranked[0], ranked[1:]) for ranked in self._ranked(inputs, top_k)]

    def predict(self, inputs, top_k: int = 3) -> list[Prediction]:
        """Label, confidence and the next `top_k - 1` labels for texts or table rows (a classification)."""
        return [Prediction(*ranked[0], ranked[1:]) for ranked in self._ranked(inputs, top_k)]

    def _ranked(self, inputs, top_k: int) -> list[list[tuple[str, float]]]:
        """Each input's `top_k` most probable labels with their probabilities, most probable first: one sort
        for all rows and their numbers made Python floats at once (row by row in Python, it cost a batch's
        scoring about 3%)."""
        import numpy as np

        probabilities = self.predict_proba(inputs)
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, : max(top_k, 1)]
        scores = np.take_along_axis(probabilities, order, axis=1).tolist()
        labels = self.labels
        return [
            [(labels[i], score) for i, score in zip(row_order, row_scores, strict=True)]
            for row_order, row_scores in zip(order.tolist(), scores, strict=True)
        ]


def _unpacked(path: Path) -> Path:
    """SageMaker hands a model over as model.tar.gz: unpack it (safely) beside a temp folder."""
    archive = path if path.is_file() else path / "model.tar.gz"
    if not archive.is_file() or (path.is_dir() and (path / "SHA256SUMS").exists()):
        return path
    return unpack_model_archive(archive, Path(tempfile.mkdtemp(prefix="pravah-model-")))
