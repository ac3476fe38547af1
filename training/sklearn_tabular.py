"""`sklearn-tabular`: numeric and categorical columns through a ColumnTransformer (imputation, scaling,
one-hot) into gradient boosting or a linear model, for classification (`task: classification`) and
regression (`task: regression`). Saved with skops."""

from __future__ import annotations

from typing import Any

from training.sklearn_text import load, save  # the same safe skops persistence

FEATURES = None  # every column but the target
DEFAULTS: dict[str, Any] = {
    "task": "classification",
    "model": "gbm",
    "max_iter": 200,
    "learning_rate": 0.1,
    "C": 1.0,
    "alpha": 1.0,
    "seed": 42,
}
__all__ = ["FEATURES", "classes", "fit", "load", "predict_proba", "predict_values", "save"]


def fit(features, labels: list, hyperparameters: dict[str, Any], validation=None):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    hp = {**DEFAULTS, **hyperparameters}
    numeric = [c for c in features.columns if features[c].dtype.kind in "biuf"]
    categorical = [c for c in features.columns if c not in numeric]
    columns = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                categorical,
            ),
        ],
        sparse_threshold=0,
    )
    seed, regression = int(hp["seed"]), hp["task"] == "regression"
    if hp["model"] == "linear":
        estimator = (
            Ridge(alpha=float(hp["alpha"])) if regression else LogisticRegression(C=float(hp["C"]), max_iter=2000)
        )
    else:
        kind = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
        estimator = kind(max_iter=int(hp["max_iter"]), learning_rate=float(hp["learning_rate"]), random_state=seed)
    model = Pipeline([("columns", columns), ("estimator", estimator)])
    model.fit(features, labels)
    return model


def classes(model) -> list[str]:
    return [str(c) for c in getattr(model, "classes_", [])]


def predict_proba(model, features):
    return model.predict_proba(features)


def predict_values(model, features):
    return model.predict(features)
