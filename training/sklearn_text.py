"""`sklearn-text`: TF-IDF over character n-grams and words, into a logistic regression.

The n-grams are hashed (no vocabulary to store), so the saved model is a few arrays that skops writes
and reads in a second; a vocabulary of 100k n-grams took skops 80 s to write.

Logistic regression is fitted on log loss, so its probabilities are calibrated enough to serve as
confidences (the evaluation reports the calibration error). Saved with skops: no pickle is loaded.

Above `stream_above_rows` training rows the fit streams (`fit_batches`): the same hashed features and the same
TF-IDF weights (document frequencies counted in a first pass), and the same log loss and L2 penalty (alpha =
1 / (C x rows)) minimized by averaged SGD over `epochs` passes, batch by batch. Memory is then set by a batch,
not by the rows: L-BFGS holds every row's features at once (9 GB at a million rows).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from foundation.errors import PravahError

MODEL_FILE = "model.skops"
DEFAULTS: dict[str, Any] = {
    "char_ngram_max": 4,
    "word_ngram_max": 2,
    "hash_bits": 16,
    "C": 10.0,
    "max_iter": 2000,
    "seed": 42,
    "stream_above_rows": 300_000,
    "batch_rows": 50_000,  # rows hashed and fitted at once when the fit streams
    "epochs": 3,
}
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.")


FEATURES = ["text"]


def fit(features, labels: list[str], hyperparameters: dict[str, Any], validation=None):
    """`features` is a frame with a `text` column (validation is not needed: no early stopping)."""
    from sklearn.linear_model import LogisticRegression

    hp = {**DEFAULTS, **hyperparameters}
    if streams(len(features), hp):
        return fit_batches(lambda rows: _slices(features, labels, rows), hp)
    classifier = LogisticRegression(C=float(hp["C"]), max_iter=int(hp["max_iter"]), random_state=int(hp["seed"]))
    model = _pipeline(hp, classifier)
    model.fit(features["text"].tolist(), labels)
    return model


STREAMING = {"stream_above_rows": 0, "batch_rows": 1, "epochs": 1}  # the streamed fit's settings, and their least


def streams(rows: int, hyperparameters: dict[str, Any]) -> bool:
    """Whether a training of `rows` rows streams (fit_batches) rather than fitting every row at once; a streaming
    setting that is not a whole number at or above its least is refused, saying which."""
    hp = {**DEFAULTS, **hyperparameters}
    for name, least in STREAMING.items():
        if isinstance(hp[name], bool) or not isinstance(hp[name], int) or hp[name] < least:
            raise PravahError(f"sklearn-text: hyperparameter {name} must be a whole number >= {least}: {hp[name]!r}")
    return rows > hp["stream_above_rows"]


def _pipeline(hp: dict[str, Any], classifier):
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    def tfidf(**hashing: Any) -> Pipeline:
        counts = HashingVectorizer(n_features=2 ** int(hp["hash_bits"]), alternate_sign=False, norm=None, **hashing)
        return Pipeline([("counts", counts), ("tfidf", TfidfTransformer(sublinear_tf=True))])

    features = FeatureUnion(
        [
            ("chars", tfidf(analyzer="char_wb", ngram_range=(1, int(hp["char_ngram_max"])))),
            ("words", tfidf(analyzer="word", ngram_range=(1, int(hp["word_ngram_max"])), token_pattern=r"(?u)\b\w+\b")),
        ]
    )
    return Pipeline([("features", features), ("classifier", classifier)])


def _slices(features, labels: list[str], rows: int) -> Iterator[tuple[Any, list[str]]]:
    for start in range(0, len(features), rows):
        yield features.iloc[start : start + rows], labels[start : start + rows]


def fit_batches(batches: Callable[[int], Iterable[tuple[Any, list[str]]]], hyperparameters: dict[str, Any]):
    """The streamed fit: `batches(rows)` gives (features, labels) `rows` at a time, anew for each pass. A first pass
    counts each hashed feature's documents (TF-IDF's idf, as TfidfTransformer.fit computes it) and the labels;
    then each epoch fits averaged SGD on log loss to every batch, its rows in a seeded random order. Texts are
    hashed by a process per core while this one fits. Rows should come in no particular order (preprocess writes
    the splits it makes shuffled)."""
    import numpy as np
    from sklearn.linear_model import SGDClassifier

    from steps.parallel import spawned_map
    from steps.progress import Meter

    hp = {**DEFAULTS, **hyperparameters}
    streams(0, hp)  # its settings checked
    size, seed, epochs = int(hp["batch_rows"]), int(hp["seed"]), int(hp["epochs"])
    model = _pipeline(hp, classifier=None)
    blocks = [tfidf for _, (_, tfidf) in model.named_steps["features"].transformer_list]
    rows, labels, documents = 0, set(), [0 for _ in blocks]
    meter = Meter("rows counted (pass 1: document frequencies)")
    for count, found in spawned_map(_document_counts, _texts(batches(size), labels), _use_pipeline, (model,)):
        rows, documents = rows + count, [mine + theirs for mine, theirs in zip(documents, found, strict=True)]
        meter.add(count)
    meter.done()
    for tfidf, found in zip(blocks, documents, strict=True):  # smooth_idf, as TfidfTransformer.fit computes it
        tfidf.idf_ = np.log((rows + 1) / (found + 1.0)) + 1.0
    classes, order = np.array(sorted(labels)), np.random.default_rng(seed)
    classifier = SGDClassifier(loss="log_loss", alpha=1.0 / (float(hp["C"]) * rows), average=True, random_state=seed)
    for epoch in range(1, epochs + 1):
        meter, shuffled_labels = Meter(f"rows fitted (epoch {epoch} of {epochs})", rows), deque()
        texts = _shuffled(batches(size), order, shuffled_labels)
        for X in spawned_map(_text_features, texts, _use_pipeline, (model,)):
            classifier.partial_fit(X, shuffled_labels.popleft(), classes=classes)
            meter.add(X.shape[0])
        meter.done()
    model.steps[-1] = ("classifier", classifier)
    return model


def _texts(batches: Iterable[tuple[Any, list[str]]], labels: set[str]) -> Iterator[list[str]]:
    """The batches' texts, noting their labels on the way."""
    for features, batch_labels in batches:
        labels.update(batch_labels)
        yield features["text"].tolist()


def _shuffled(batches: Iterable[tuple[Any, list[str]]], order, labels: deque) -> Iterator[list[str]]:
    """Each batch's texts in a random order, its labels in the same order appended to `labels`."""
    import numpy as np

    for features, batch_labels in batches:
        permutation = order.permutation(len(features))
        labels.append(np.asarray(batch_labels)[permutation])
        yield features["text"].iloc[permutation].tolist()


_PIPELINE: Any = None  # in a worker process: the pipeline whose features it computes


def _use_pipeline(model) -> None:
    global _PIPELINE
    _PIPELINE = model


def _document_counts(texts: list[str]) -> tuple[int, list[Any]]:
    """In a worker: how many texts there were, and how many of them hold each hashed feature, per block."""
    import numpy as np

    union = _PIPELINE.named_steps["features"]
    found = [np.bincount(c.transform(texts).indices, minlength=c.n_features) for _, (c, _) in union.transformer_list]
    return len(texts), found


def _text_features(texts: list[str]):
    """In a worker: the texts' TF-IDF features."""
    return _features_of(_PIPELINE, texts)


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
    return model.named_steps["classifier"].predict_proba(_features(model, features))


def _features(model, features):
    """The TF-IDF features of a frame's texts, as the fitted pipeline computes them."""
    return _features_of(model, features["text"].tolist())


def _features_of(model, texts: list[str]):
    import scipy.sparse

    union = model.named_steps["features"]
    blocks = [_tfidf(tfidf, counts.transform(texts)) for _, (counts, tfidf) in union.transformer_list]
    return scipy.sparse.hstack(blocks, format="csr")


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
