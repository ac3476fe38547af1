"""A model family that answers right but slowly (a quarter of a second a call): the deployment tests' version
whose p99 latency alarm fires. Everything else is the sklearn-text family."""

from __future__ import annotations

import time

from training.sklearn_text import FEATURES, classes, fit, load, save

__all__ = ["FEATURES", "classes", "fit", "load", "predict_proba", "save"]
DELAY_SECONDS = 0.25


def predict_proba(model, features):
    from training import sklearn_text

    time.sleep(DELAY_SECONDS)
    return sklearn_text.predict_proba(model, features)
