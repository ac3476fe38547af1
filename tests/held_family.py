"""A model family whose calls, once the test says `hold`, wait until it says `release` (marker files), so that a
test can hold a variant's scoring still (a shadow that lags), and whose loading does the same after `hold-load`
(a shadow still loading). Everything else is the sklearn-text family."""

from __future__ import annotations

import os
import time
from pathlib import Path

from training.sklearn_text import FEATURES, classes, fit, save

__all__ = ["FEATURES", "classes", "fit", "load", "predict_proba", "save"]


def predict_proba(model, features):
    from training import sklearn_text

    markers = Path(os.environ["HELD_MARKERS"])
    if (markers / "hold").exists():
        (markers / "held").touch()
        wait_for_release(markers)
    return sklearn_text.predict_proba(model, features)


def load(model_dir: Path):
    """The model; once the test says `hold-load`, only after it says `release` (a shadow that is still loading)."""
    from training import sklearn_text

    markers = Path(os.environ["HELD_MARKERS"])
    if (markers / "hold-load").exists():
        (markers / "loading").touch()
        wait_for_release(markers)
    return sklearn_text.load(model_dir)


def wait_for_release(markers: Path) -> None:
    """Until the test says `release`: its word, not a time."""
    while not (markers / "release").exists():
        time.sleep(0.05)
