"""Training behind one contract: the SageMaker training entry point, each family, reproducibility, safe and
verified loading, and the SageMaker inference handlers."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from artifact.contract import ArtifactError
from artifact.predictor import Predictor
from foundation.fingerprint import hash_tree
from inference.sagemaker_handlers import BadRequest, input_fn, model_fn, output_fn, predict_fn
from steps import preprocess
from steps.datasets import load_catalog, pull
from steps.io import read_channel
from tests.support import make_artifact
from training import train

LANGUAGES = ["hin_Deva", "eng_Latn"]


@pytest.fixture(scope="module")
def splits(mirror, tmp_path_factory) -> Path:
    """SIB-200 Hindi + English, preprocessed by the pipeline's own step."""
    root = tmp_path_factory.mktemp("processing")
    pull(load_catalog(), "sib-200", root / "input" / "raw", LANGUAGES, mirror)
    for name in ("train", "validation", "test", "profile"):
        (root / "output" / name).mkdir(parents=True)
    preprocess.main(["--processing-root", str(root), "--format", "tsv", "--columns", "id=index_id,label=category"])
    return root / "output"


def train_model(splits: Path, folder: Path, monkeypatch, *args: str) -> Path:
    model, output = folder / "model", folder / "output"
    model.mkdir(parents=True)
    output.mkdir()
    for key, value in {
        "SM_MODEL_DIR": model,
        "SM_OUTPUT_DATA_DIR": output,
        "SM_CHANNEL_TRAIN": splits / "train",
        "SM_CHANNEL_VALIDATION": splits / "validation",
        "SM_NUM_CPUS": 2,
    }.items():
        monkeypatch.setenv(key, str(value))
    train.main(list(args))
    return model


def train_in_a_fresh_process(splits: Path, folder: Path, *args: str) -> Path:
    """The training container's entry in a process of its own, as SageMaker and the runner start it: what a
    model holds of its process (a memory address, a thread count) shows as other bytes than another process's."""
    import os
    import subprocess
    import sys

    model, output = folder / "model", folder / "output"
    model.mkdir(parents=True)
    output.mkdir()
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(model),
        "SM_OUTPUT_DATA_DIR": str(output),
        "SM_NUM_CPUS": "2",
        "SM_CHANNEL_TRAIN": str(splits / "train"),
        "SM_CHANNEL_VALIDATION": str(splits / "validation"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "training.train", *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return model


def a_few_per_label(splits: Path, folder: Path, per_label: int) -> Path:
    """Splits of `per_label` rows of each label: enough to train on, for a test about bytes, not quality."""
    for split in ("train", "validation"):
        (folder / split).mkdir(parents=True)
        rows = read_channel(splits / split).groupby("label").head(per_label)
        rows.to_parquet(folder / split / "part-0.parquet", index=False)
    return folder


@pytest.mark.parametrize(("family", "extra"), [("sklearn-text", []), ("torch-text", ["--epochs", "4"])])
@pytest.mark.slow
def test_each_family_trains_to_the_same_artifact_and_reproducibly(splits, tmp_path, family, extra):
    first = train_in_a_fresh_process(splits, tmp_path / "a", "--family", family, *extra)
    second = train_in_a_fresh_process(splits, tmp_path / "b", "--family", family, *extra)
    manifest = json.loads((first / "model.json").read_text())
    assert manifest["family"] == family and manifest["training_rows"] == 1402
    assert manifest["loader"] == f"training.{family.replace('-', '_')}", "serving imports what the manifest names"
    assert set(manifest["libraries"]) >= {"python", "scikit-learn"}
    assert len(manifest["training_data_sha256"]) == 64
    assert manifest["validation_metrics"] == json.loads((second / "model.json").read_text())["validation_metrics"]
    # the same training, the same bytes: the same registry version, not a new one
    assert hash_tree(first).files == hash_tree(second).files
    if family == "sklearn-text":  # the family calls the pipeline's parts itself: the pipeline's own numbers
        import numpy as np
        import pandas as pd

        from training import sklearn_text

        model, test = sklearn_text.load(first), read_channel(splits / "test")
        ours = sklearn_text.predict_proba(model, pd.DataFrame({"text": test["text"]}))
        assert np.allclose(ours, model.predict_proba(test["text"].tolist()), rtol=0, atol=1e-12)
    assert manifest["validation_metrics"]["macro_f1"] > 0.4
    predictor = Predictor(first)
    assert predictor.labels == json.loads((first / "labels.json").read_text())
    [hindi, english] = predictor.predict(["भारत ने क्रिकेट मैच जीता", "India won the cricket match"], top_k=3)
    assert 0 < hindi.confidence <= 1 and len(hindi.alternatives) == 2

    # invariance: extra spaces and Unicode composition do not change the answer, nor its confidence
    def same(one, other) -> bool:  # a batch of one and of two may differ in the last float digits
        return (
            one.label == other.label
            and one.alternatives[0][0] == other.alternatives[0][0]
            and (one.confidence == pytest.approx(other.confidence, abs=1e-6))
        )

    assert same(predictor.predict(["  India   won the cricket   match "], top_k=3)[0], english)
    composed = "भारत ने क्रिकेट मैच जीता, café"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert same(predictor.predict([decomposed], top_k=3)[0], predictor.predict([composed], top_k=3)[0])


def test_a_training_above_its_row_threshold_streams_batch_by_batch(splits, tmp_path, monkeypatch):
    """sklearn-text above `stream_above_rows`: the channel is read `batch_rows` at a time, the TF-IDF weights are
    the ones TfidfTransformer.fit computes on every row, and the model serves as the exact fit's does; the same
    streamed training gives the same bytes."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfTransformer

    from steps.progress import CHUNK_ROWS
    from training import sklearn_text

    stream = ["--family", "sklearn-text", "--stream_above_rows", "1000", "--batch_rows", "300", "--epochs", "2"]
    seen: list[int] = []
    original = sklearn_text.fit_batches

    def counting(batches, hyperparameters):
        def counted(rows):
            for features, labels in batches(rows):
                seen.append(len(features))
                yield features, labels

        return original(counted, hyperparameters)

    monkeypatch.setattr(sklearn_text, "fit_batches", counting)  # a spy: the real fit runs on what it is given
    monkeypatch.setattr(train, "CHUNK_ROWS", 100)  # validation scored 100 rows at a time, by spawned processes
    first = train_model(splits, tmp_path / "a", monkeypatch, *stream)
    monkeypatch.setattr(sklearn_text, "fit_batches", original)
    monkeypatch.setattr(train, "CHUNK_ROWS", CHUNK_ROWS)
    assert max(seen) == 300 and sum(seen) == 1402 * 3, "one counting pass and two epochs, 300 rows at a time"
    manifest = json.loads((first / "model.json").read_text())
    assert manifest["training_rows"] == 1402 and manifest["languages"] == sorted(LANGUAGES)
    assert manifest["validation_metrics"]["macro_f1"] > 0.4

    model, texts = sklearn_text.load(first), read_channel(splits / "train")["text"].tolist()
    for _, (counts, tfidf) in model.named_steps["features"].transformer_list:
        exact = TfidfTransformer(sublinear_tf=True).fit(counts.transform(texts))
        assert np.allclose(tfidf.idf_, exact.idf_, rtol=0, atol=1e-12)
    [english] = Predictor(first).predict(["India won the cricket match"], top_k=3)
    assert english.label in Predictor(first).labels and 0 < english.confidence <= 1

    # validation scored in one piece: the same calibration and metrics, so the same bytes
    second = train_model(splits, tmp_path / "b", monkeypatch, *stream)
    assert hash_tree(first).files == hash_tree(second).files


@pytest.mark.slow
def test_a_fine_tuned_transformer_retrains_to_the_same_bytes(splits, tmp_path):
    """Seeded, deterministic algorithms, safetensors: the same fine-tuning, in another process, gives the same
    files, so the same registry version."""
    short = ["--family", "transformers", "--epochs", "1", "--max_length", "32"]
    few = a_few_per_label(splits, tmp_path / "few", 30)
    first = train_in_a_fresh_process(few, tmp_path / "a", *short)
    second = train_in_a_fresh_process(few, tmp_path / "b", *short)
    assert hash_tree(first).files == hash_tree(second).files


def test_a_tampered_or_padded_artifact_is_refused(tmp_path):
    model = make_artifact(tmp_path / "m", "tampered")
    Predictor(model)  # as sealed: it loads
    weights = model / "model.skops"
    original = weights.read_bytes()
    weights.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
    with pytest.raises(ArtifactError, match=r"model\.skops does not match its checksum: refusing to load it"):
        Predictor(model)
    weights.write_bytes(original)
    (model / "extra.pkl").write_bytes(b"not listed")  # a file the checksums do not cover: never loaded either
    with pytest.raises(ArtifactError, match=r"files not covered by SHA256SUMS: extra\.pkl"):
        Predictor(model)


def test_the_artifact_names_the_module_that_loads_it(tmp_path):
    """Serving imports the loader module the manifest names (a lower room keeps no map of family names); an
    artifact that names none, nor a family module path, is refused with what to do."""
    from artifact.contract import open_artifact, seal

    model = make_artifact(tmp_path / "m", "loader")
    assert Predictor(model).manifest["loader"] == "training.sklearn_text"
    manifest = open_artifact(model)
    labels = manifest.pop("labels")
    for name, refused in (
        ("training.no_such_family", r"loader module 'training\.no_such_family' cannot be imported"),
        (None, r"family 'sklearn-text' names no loader module .*: train it again"),
    ):
        seal(
            model,
            {**{k: v for k, v in manifest.items() if k != "loader"}, **({"loader": name} if name else {})},
            labels,
        )
        with pytest.raises(ArtifactError, match=refused):
            Predictor(model)


def test_an_unknown_family_is_a_clear_error(tmp_path, monkeypatch):
    from foundation.errors import PravahError

    for channel in ("train", "validation"):
        (tmp_path / "splits" / channel).mkdir(parents=True)
    with pytest.raises(PravahError, match="unknown model family 'torch-txt'; did you mean 'torch-text'"):
        train_model(tmp_path / "splits", tmp_path / "x", monkeypatch, "--family", "torch-txt")


def test_sagemaker_inference_handlers(tmp_path):
    model = make_artifact(tmp_path / "m", "handlers")
    predictor = model_fn(str(model))
    texts = input_fn(
        json.dumps({"inputs": ["The election results were announced", "वह फुटबॉल खेलता है"]}), "application/json"
    )
    body, content_type = output_fn(predict_fn(texts, predictor), "application/json")
    predictions = json.loads(body)["predictions"]
    assert content_type == "application/json" and len(predictions) == 2
    assert all(p["prediction"] in predictor.labels and p["alternatives"] for p in predictions)
    assert input_fn("one\n\ntwo\n", "text/plain") == ["one", "two"]
    for body, kind, message in [
        ("{oops", "application/json", "not JSON"),
        ('{"inputs": [1]}', "application/json", "expected"),
        ("x", "text/csv", "not supported"),
        ('{"text": " "}', "application/json", "non-empty"),
    ]:
        with pytest.raises(BadRequest, match=message):
            input_fn(body, kind)
    # a hostile client's bodies are the client's error (400 from the runtime image's serve), never the model's
    hostile = [
        (b'{"inputs": ["\xff\xfe"]}', "the body is not UTF-8: byte 0xff at 13"),
        (b'{"inputs": ["ok", "\\ud800"]}', r"inputs\.1: not valid Unicode: a lone surrogate \(U\+D800\)"),
        (b'{"instances": [{"tenure": NaN}]}', r"instances\.0\.tenure: nan is not a number JSON allows"),
    ]
    for body, message in hostile:
        with pytest.raises(BadRequest, match=message):
            input_fn(body, "application/json")
    records = input_fn(b'{"text": "\\udfff"}\n{"text": "ok"}', "application/jsonlines")
    assert records.items == ["ok"] and "not valid Unicode" in records.refused[0], "refused in place, the rest scored"
