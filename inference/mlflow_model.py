"""The MLflow pyfunc flavour of a Pravah artifact, as "model from code" (MLflow loads this file; nothing
is unpickled), so that `mlflow models serve -m models:/NAME/VERSION --env-manager local` serves it."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
from mlflow.models import set_model

ARTIFACT = "model"  # the key of the Pravah artifact among the MLflow model's artifacts


class PravahTextModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from inference.predictor import Predictor

        self.predictor = Predictor(Path(context.artifacts[ARTIFACT]))

    def predict(self, context, model_input, params=None):
        import pandas as pd

        texts = model_input["text"].astype(str).tolist()
        predictions = self.predictor.predict(texts)
        return pd.DataFrame(
            {"prediction": [p.label for p in predictions], "confidence": [p.confidence for p in predictions]}
        )


set_model(PravahTextModel())
