"""A model family that fails on some inputs (texts with a digit): the broken version of the deployment tests.
Everything else is the sklearn-text family."""

from __future__ import annotations

from training.sklearn_text import FEATURES, classes, fit, load, save

__all__ = ["FEATURES", "classes", "fit", "load", "predict_proba", "save"]


def predict_proba(model, features):
    from training import sklearn_text

    if features["text"].str.contains(r"\d").any():
        raise RuntimeError("faulty model: cannot score texts with digits")
    return sklearn_text.predict_proba(model, features)
