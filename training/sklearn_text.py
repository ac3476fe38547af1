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
DEFAULTS: dict[str, Any] = {
    "char_ngram_max": 4,
    "word_ngram_max": 2,
    "hash_bits": 16,
    "C": 10.0,
    "max_iter": 2000,
    "seed": 42,
}
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

    features = FeatureUnion(
        [
            ("chars", tfidf(analyzer="char_wb", ngram_range=(1, int(hp["char_ngram_max"])))),
            ("words", tfidf(analyzer="word", ngram_range=(1, int(hp["word_ngram_max"])), token_pattern=r"(?u)\b\w+\b")),
        ]
    )
    classifier = LogisticRegression(C=float(hp["C"]), max_iter=int(hp["max_iter"]), random_state=int(hp["seed"]))
    model = Pipeline([("features", features), ("classifier", classifier)])
    model.fit(texts, labels)
    return model


# Memos scikit-learn keeps on fitted estimators that hold a memory address (id()): true only in the process that
# set them, they made the same training's bytes differ from process to process (the vectorizers' stop words).
PROCESS_MEMOS = ("_stop_words_id",)


def save(model, model_dir: Path) -> None:
    import skops.io

    _forget_process_memos(model, set())
    skops.io.dump(model, model_dir / MODEL_FILE)
    _reproducible(model_dir / MODEL_FILE)


def _forget_process_memos(node: Any, seen: set[int]) -> None:
    """Drop PROCESS_MEMOS from every estimator in the model (scikit-learn sets them again when it needs them)."""
    from sklearn.base import BaseEstimator

    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, BaseEstimator):
        for memo in PROCESS_MEMOS:
            vars(node).pop(memo, None)
        children = list(vars(node).values())
    elif isinstance(node, list | tuple):
        children = list(node)
    elif isinstance(node, dict):
        children = list(node.values())
    else:
        return
    for child in children:
        _forget_process_memos(child, seen)


def _reproducible(path: Path) -> None:
    """The same model, the same bytes: skops names objects and their arrays' files by memory address and stamps
    the zip's entries with the time; here both are numbered in the order the schema meets them, and every entry
    gets one fixed time. (Same bytes, same digest: a retrain on the same data is the same registry version.)"""
    import json
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
        compression = archive.infolist()[0].compress_type
    schema, ids, files = json.loads(members.pop("schema.json")), {}, {}

    def renumber(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                renumber(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key == "__id__" and isinstance(value, int):
                    node[key] = ids.setdefault(value, len(ids))
                elif key == "file" and value in members:
                    node[key] = files.setdefault(value, f"{len(files):06d}{Path(value).suffix}")
                else:
                    renumber(value)

    renumber(schema)
    unnamed = sorted(set(members) - set(files))  # not met in the schema (none known): kept under their names
    entries = [
        ("schema.json", json.dumps(schema).encode()),
        *((files[old], members[old]) for old in files),
        *((name, members[name]) for name in unnamed),
    ]
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = compression, 0o644 << 16
            archive.writestr(info, data)


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
    """The pipeline's own predict_proba, its parts called in turn: the same numbers without the dispatch of
    Pipeline and FeatureUnion (validation, joblib, output wrapping), a sixth of a small batch's time when
    serving."""
    import scipy.sparse

    texts = features["text"].tolist()
    union, classifier = model.named_steps["features"], model.named_steps["classifier"]
    blocks = [_tfidf(tfidf, counts.transform(texts)) for _, (counts, tfidf) in union.transformer_list]
    return classifier.predict_proba(scipy.sparse.hstack(blocks, format="csr"))


def _tfidf(tfidf, counts):
    """TfidfTransformer.transform's three steps, in place on the fresh count matrix (the same numbers; its input
    validation and copy were a quarter of a small batch's time). Other norms than l2: its own transform."""
    import numpy as np
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

    if tfidf.norm not in ("l2", None) or counts.format != "csr" or counts.dtype != np.float64:
        return tfidf.transform(counts)
    if tfidf.sublinear_tf:
        np.log(counts.data, counts.data)
        counts.data += 1.0
    if hasattr(tfidf, "idf_"):
        counts.data *= tfidf.idf_[counts.indices]
    if tfidf.norm == "l2":
        inplace_csr_row_normalize_l2(counts)
    return counts


def classes(model) -> list[str]:
    return [str(label) for label in model.classes_]
