"""The model families a training step can name (`family` hyperparameter), each a module behind the same small
interface on a frame of features:

fit(features, labels, hyperparameters, validation=(features, labels) or None) -> model
classes(model) -> the labels in probability order (empty for a regression)
predict_proba(model, features) -> probabilities, or predict_values(model, features) for a regression
save(model, folder); load(folder) -> model
FEATURES: the columns the family reads (None: every column but the target)

and, for a family that can fit a training set bigger than memory (sklearn-text does):
streams(rows, hyperparameters) -> whether a training of so many rows streams
fit_batches(batches, hyperparameters) -> model, `batches(n)` giving (features, labels) n rows at a time, anew
for each pass (training/train.py reads the channel so, never whole)

The artifact's manifest names the module that loads it (`loader`), so serving finds a family without this map.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from foundation.errors import PravahError, did_you_mean

FAMILIES = {
    "sklearn-text": "training.sklearn_text",
    "torch-text": "training.torch_text",
    "transformers": "training.transformers_text",
    "sklearn-tabular": "training.sklearn_tabular",
}


def family(name: str) -> ModuleType:
    """A built-in family by name, or a team's own by its importable module path (`my_team.families.svm`)."""
    if name in FAMILIES:
        return importlib.import_module(FAMILIES[name])
    if "." in name:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            raise PravahError(f"model family module '{name}' cannot be imported: {exc}") from None
    raise PravahError(f"unknown model family '{name}'{did_you_mean(name, FAMILIES)} (families: {', '.join(FAMILIES)})")
