"""A model family that marks when it scores a batch (many rows at once) and holds that batch until the test
releases it, so a test can ask an online question, or stop the server, while a batch is being scored.
Everything else is the sklearn-text family."""

from __future__ import annotations

import os
from pathlib import Path

from tests.held_family import wait_for_release
from training.sklearn_text import FEATURES, classes, fit, load, save

__all__ = ["FEATURES", "classes", "fit", "load", "predict_proba", "save"]
BATCH_ROWS = 100  # a call with more rows than this is a batch's


def predict_proba(model, features):
    from training import sklearn_text

    markers = Path(os.environ["BATCH_MARKERS"])
    if len(features) > BATCH_ROWS:
        (markers / "batch-started").touch()
        wait_for_release(markers)
        (markers / "batch-ended").touch()
    return sklearn_text.predict_proba(model, features)
