"""The model families a training step can name, each behind the same small interface:
fit(texts, labels, hyperparameters, validation=(texts, labels)) -> model, classes(model) -> labels in probability order,
save(model, dir), load(dir) -> model, predict_proba(model, texts) -> array."""

from __future__ import annotations

import importlib
from types import ModuleType

from pipelines.errors import PravahError, did_you_mean

FAMILIES = {
    "sklearn-text": "training.sklearn_text",
    "torch-text": "training.torch_text",
    "transformers": "training.transformers_text",
}


def family(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise PravahError(
            f"unknown model family '{name}'{did_you_mean(name, FAMILIES)} (families: {', '.join(FAMILIES)})"
        )
    return importlib.import_module(FAMILIES[name])
