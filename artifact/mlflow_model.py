"""The MLflow pyfunc flavour of a Pravah artifact, as "model from code" (MLflow loads this file; nothing
is unpickled), so that `mlflow models serve -m models:/NAME/VERSION --env-manager local` serves it."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
from mlflow.models import set_model

ARTIFACT = "model"  # the key of the Pravah artifact among the MLflow model's artifacts


class PravahModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from artifact.predictor import Predictor

        self.predictor = Predictor(Path(context.artifacts[ARTIFACT]))

    def predict(self, context, model_input, params=None):
        return self.predict_with(self.predictor, model_input)

    @staticmethod
    def predict_with(predictor, model_input):
        import pandas as pd

        if predictor.task == "regression":
            return pd.DataFrame({"prediction": predictor.predict_values(model_input)})
        predictions = predictor.predict(model_input)
        return pd.DataFrame(
            {"prediction": [p.label for p in predictions], "confidence": [p.confidence for p in predictions]}
        )


set_model(PravahModel())
