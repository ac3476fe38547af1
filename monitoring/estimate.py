"""Performance estimated without labels, as NannyML's confidence-based performance estimation (CBPE): when a
model's probabilities are calibrated (training fits a temperature, artifact/calibration.py), a prediction made
with probability p is right with probability p. So a window's expected accuracy is its mean confidence, and
its expected confusion matrix, class by class, gives an expected macro-F1: for a row predicted j with
probabilities p, p[j] is an expected true positive of j, 1 - p[j] an expected false positive of j, and p[k]
an expected false negative of every other class k.

A captured answer lists its top labels only (the prediction and its alternatives); the probability it does
not list is shared evenly among the classes it does not name. Sums are kept, not rows: estimates of parts of
a window (worker processes) add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Estimate:
    """Expected counts over some predictions: rows, expected correct, and per class (in `classes` order)
    expected true positives, false positives and false negatives."""

    classes: list[str]
    rows: int = 0
    correct: float = 0.0
    true_positive: np.ndarray = field(default=None)  # type: ignore[assignment]
    false_positive: np.ndarray = field(default=None)  # type: ignore[assignment]
    false_negative: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        for name in ("true_positive", "false_positive", "false_negative"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(len(self.classes)))

    def add(self, probabilities: np.ndarray, predicted: np.ndarray) -> None:
        """Rows of class probabilities (n x classes) and the column each row predicted (-1: a label outside
        the classes, left out)."""
        known = predicted >= 0
        probabilities, predicted = probabilities[known], predicted[known]
        if not len(predicted):
            return
        chosen = probabilities[np.arange(len(predicted)), predicted]
        size = len(self.classes)
        true_positive = np.bincount(predicted, weights=chosen, minlength=size)
        self.rows += len(predicted)
        self.correct += float(chosen.sum())
        self.true_positive += true_positive
        self.false_positive += np.bincount(predicted, weights=1.0 - chosen, minlength=size)
        self.false_negative += probabilities.sum(axis=0) - true_positive

    def merge(self, other: Estimate) -> Estimate:
        return Estimate(
            self.classes,
            self.rows + other.rows,
            self.correct + other.correct,
            self.true_positive + other.true_positive,
            self.false_positive + other.false_positive,
            self.false_negative + other.false_negative,
        )

    def to_json(self) -> dict[str, Any]:
        """The sums, exactly (a float's JSON text reads back as the same float)."""
        return {
            "classes": self.classes,
            "rows": self.rows,
            "correct": self.correct,
            **{name: getattr(self, name).tolist() for name in ("true_positive", "false_positive", "false_negative")},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Estimate:
        sums = {
            name: np.array(data[name], dtype=float) for name in ("true_positive", "false_positive", "false_negative")
        }
        return cls(list(data["classes"]), int(data["rows"]), float(data["correct"]), **sums)

    def scores(self) -> dict[str, float | int]:
        """Estimated accuracy and macro-F1 (over the classes this window predicts or may miss)."""
        if not self.rows:
            return {"rows": 0}
        denominator = 2 * self.true_positive + self.false_positive + self.false_negative
        present = denominator > 1e-9
        f1 = 2 * self.true_positive[present] / denominator[present]
        return {
            "rows": self.rows,
            "accuracy": round(self.correct / self.rows, 4),
            "macro_f1": round(float(f1.mean()), 4) if len(f1) else 0.0,
        }


def probability_rows(ranked: list[list[tuple[str, float]]], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(n x classes probabilities, the predicted column of each row) from each answer's ranked labels (its
    prediction first, then its alternatives). What an answer does not list is shared evenly among the classes
    it does not name; a label outside `classes` is left out (a predicted one makes the row's column -1)."""
    column = {label: index for index, label in enumerate(classes)}
    rows, columns, values, predicted = [], [], [], []
    for row, labels in enumerate(ranked):
        predicted.append(column.get(labels[0][0], -1))
        for label, probability in labels:
            if (index := column.get(label)) is not None:
                rows.append(row)
                columns.append(index)
                values.append(probability)
    probabilities = np.zeros((len(ranked), len(classes)))
    probabilities[rows, columns] = values
    listed = np.zeros_like(probabilities, dtype=bool)
    listed[rows, columns] = True
    unlisted = len(classes) - listed.sum(axis=1)
    rest = np.clip(1.0 - probabilities.sum(axis=1), 0.0, None) / np.maximum(unlisted, 1)
    probabilities += ~listed * rest[:, None]
    return probabilities, np.array(predicted, dtype=int)


def estimated_performance(
    estimates: dict[str, Estimate], expected: dict[str, float], min_records: int, max_drop: float
) -> tuple[dict, list[dict]]:
    """metrics.json's `estimated_performance` (the window's estimate and each language's), and a violation for
    the window and for each language of at least `min_records` predictions whose estimated accuracy is more
    than `max_drop` below the evaluation's (`expected`)."""
    languages = {
        name.partition(":")[2] if name.startswith("language:") else name: estimate
        for name, estimate in sorted(estimates.items())
        if name not in ("all", "labelled")
    }
    section = {
        "method": "CBPE: expected accuracy and macro-F1 from calibrated confidences, without labels",
        **estimates["all"].scores(),
        "baseline": expected,
        "max_drop": max_drop,
        "by_language": {name: estimate.scores() for name, estimate in languages.items()},
    }
    violations = []
    baseline = expected.get("accuracy")
    for name, estimate in [("", estimates["all"]), *languages.items()]:
        scores = estimate.scores()
        if baseline is None or scores["rows"] < min_records or baseline - scores["accuracy"] <= max_drop:
            continue
        where = f" in {name}" if name else ""
        description = (
            f"estimated accuracy{where} {scores['accuracy']:.4f} is {baseline - scores['accuracy']:.4f} "
            f"below the evaluation's {baseline:.4f} over {scores['rows']} predictions (from their "
            "calibrated confidences: no labels needed)"
        )
        violations.append(
            {
                "feature_name": f"estimated_accuracy[{name}]" if name else "estimated_accuracy",
                "constraint_check_type": "model_quality_check",
                "description": description,
            }
        )
    return section, violations
