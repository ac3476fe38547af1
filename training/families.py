"""The model families a training step can name, each behind the same small interface on a frame of features:

fit(features, labels, hyperparameters, validation=(features, labels) or None) -> model
classes(model) -> the labels in probability order (empty for a regression)
predict_proba(model, features) -> probabilities, or predict_values(model, features) for a regression
save(model, folder); load(folder) -> model
FEATURES: the columns the family reads (None: every column but the target)
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pipelines.errors import PravahError, did_you_mean

FAMILIES = {
    "sklearn-text": "training.sklearn_text",
    "torch-text": "training.torch_text",
    "transformers": "training.transformers_text",
    "sklearn-tabular": "training.sklearn_tabular",
}


def family(name: str) -> ModuleType:
    if name not in FAMILIES:
        raise PravahError(
            f"unknown model family '{name}'{did_you_mean(name, FAMILIES)} (families: {', '.join(FAMILIES)})"
        )
    return importlib.import_module(FAMILIES[name])
