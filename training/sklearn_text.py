"""`sklearn-text`: TF-IDF over character n-grams and words, into a logistic regression.

The n-grams are hashed (no vocabulary to store), so the saved model is a few arrays that skops writes
and reads in a second; a vocabulary of 100k n-grams took skops 80 s to write.

Logistic regression is fitted on log loss, so its probabilities are calibrated enough to serve as
confidences (the evaluation reports the calibration error). Saved with skops: no pickle is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODEL_FILE = "model.skops"
DEFAULTS: dict[str, Any] = {"char_ngram_max": 4, "word_ngram_max": 2, "hash_bits": 16, "C": 10.0,
                            "max_iter": 2000, "seed": 42}  # fmt: skip
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.")


FEATURES = ["text"]


def fit(features, labels: list[str], hyperparameters: dict[str, Any], validation=None):
    """`features` is a frame with a `text` column (validation is not needed: no early stopping)."""
    texts = features["text"].tolist()
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    hp = {**DEFAULTS, **hyperparameters}

    def tfidf(**hashing: Any) -> Pipeline:
        counts = HashingVectorizer(n_features=2 ** int(hp["hash_bits"]), alternate_sign=False, norm=None, **hashing)
        return Pipeline([("counts", counts), ("tfidf", TfidfTransformer(sublinear_tf=True))])

    features = FeatureUnion([
        ("chars", tfidf(analyzer="char_wb", ngram_range=(1, int(hp["char_ngram_max"])))),
        ("words", tfidf(analyzer="word", ngram_range=(1, int(hp["word_ngram_max"])), token_pattern=r"(?u)\b\w+\b")),
    ])  # fmt: skip
    classifier = LogisticRegression(C=float(hp["C"]), max_iter=int(hp["max_iter"]), random_state=int(hp["seed"]))
    model = Pipeline([("features", features), ("classifier", classifier)])
    model.fit(texts, labels)
    return model


def save(model, model_dir: Path) -> None:
    import skops.io

    skops.io.dump(model, model_dir / MODEL_FILE)


def load(model_dir: Path):
    import skops.io

    path = model_dir / MODEL_FILE
    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        from artifact.contract import ArtifactError

        raise ArtifactError(f"{path}: refusing types outside scikit-learn/numpy/scipy: {', '.join(refused)}")
    return skops.io.load(path, trusted=untrusted)


def predict_proba(model, features):
    return model.predict_proba(features["text"].tolist())


def classes(model) -> list[str]:
    return [str(label) for label in model.classes_]
