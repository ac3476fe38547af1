"""Evaluation's numbers: the bootstrap's standard deviations, drawn as confusion matrices, agree with
resampling the rows and scoring each resample with scikit-learn (what they replaced: minutes at 200,000 rows)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from steps.evaluate import bootstrap_deviations


def test_bootstrap_deviations_match_resampled_rows_scored_by_scikit_learn():
    rng = np.random.default_rng(7)
    labels = np.array(["sports", "politics", "science", "health", "travel", "rare"])
    truth = rng.choice(labels, 3_000, p=[0.3, 0.25, 0.2, 0.15, 0.099, 0.001])
    truth[:40] = "unknown"  # a label the model never predicts
    predicted = np.where(rng.random(3_000) < 0.7, truth, rng.choice(labels[:5], 3_000))
    predicted[predicted == "unknown"] = "sports"
    scores = {
        "accuracy": accuracy_score,
        "macro_f1": lambda t, p: f1_score(t, p, average="macro", zero_division=0),
        "weighted_f1": lambda t, p: f1_score(t, p, average="weighted", zero_division=0),
    }
    resamples = [rng.integers(0, len(truth), len(truth)) for _ in range(1_000)]
    by_rows = {name: np.std([score(truth[s], predicted[s]) for s in resamples]) for name, score in scores.items()}
    drawn = bootstrap_deviations(truth, predicted, np.random.default_rng(1), samples=1_000)
    for name, expected in by_rows.items():  # two estimates of 1,000 draws each: within 15% of each other
        assert abs(drawn[name] - expected) < 0.15 * expected, (name, drawn[name], expected)
    assert bootstrap_deviations(truth, truth, np.random.default_rng(1))["accuracy"] == 0.0
