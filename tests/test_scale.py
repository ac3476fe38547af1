"""Data at scale: the steps that stream their rows give the same answer chunk by chunk as in one piece, and say
what they hold at most."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.scale import build_table
from steps import preprocess
from steps.datasets import load_catalog, pull

OUTPUTS = ("train", "validation", "test", "profile")
PROFILE_FILES = ("baseline.json", "reference.json", "vocabulary.json")
PREDICTED = ("evaluation.json", "reference.json")  # what evaluate writes of the model's answers


def preprocessed(raw: Path, root: Path, *args: str) -> Path:
    """preprocess.main on a copy of `raw`, as the runner lays its folders out; its output folder."""
    shutil.copytree(raw, root / "input" / "raw")
    for name in OUTPUTS:
        (root / "output" / name).mkdir(parents=True)
    preprocess.main(["--processing-root", str(root), *args])
    assert sorted(p.name for p in root.iterdir()) == ["input", "output"], "its scratch files are gone"
    return root / "output"


@pytest.mark.parametrize("case", ["given splits", "split here"])
def test_preprocess_in_small_chunks_writes_what_one_chunk_writes(case, mirror, tmp_path):
    """The rows stream through in chunks (a first pass, buckets of each split's order, a second pass): with
    chunks of 300 rows the splits hold the same rows in the same order, and the profile, the monitoring reference
    and the vocabulary are the same bytes, as with every row in one chunk."""
    raw = tmp_path / "raw"
    if case == "given splits":  # SIB-200's own files: a split per file, a folder per language
        pull(load_catalog(), "sib-200", raw, ["hin_Deva", "eng_Latn"], mirror)
        args = ["--format", "tsv", "--columns", "id=index_id,label=category"]
    else:  # one CSV without splits: stratified by label and language here
        raw.mkdir()
        build_table(mirror, 3_000, raw / "texts.csv")
        args = ["--format", "csv", "--validation_fraction", "0.15"]
    whole = preprocessed(raw, tmp_path / "whole", *args, "--chunk_rows", "1000000")
    chunked = preprocessed(raw, tmp_path / "chunked", *args, "--chunk_rows", "300")
    for split in ("train", "validation", "test"):
        one, many = (pd.read_parquet(side / split / "data.parquet") for side in (whole, chunked))
        assert len(one) > 100 and one.equals(many), split
    for name in PROFILE_FILES:
        assert (whole / "profile" / name).read_bytes() == (chunked / "profile" / name).read_bytes(), name
    if case == "split here":
        train = pd.read_parquet(whole / "train" / "data.parquet")
        assert train["id"].astype(int).diff().lt(0).any(), "a split it makes is written in a random order"


def bad_texts(mirror: Path, folder: Path) -> Path:
    """3,000 texts with faults a validation must find in whichever chunk they fall: an empty text, a label
    outside the data's own, a text too short, a duplicate."""
    import csv

    folder.mkdir()
    build_table(mirror, 3_000, folder / "texts.csv")
    with (folder / "texts.csv").open(encoding="utf-8") as table:
        head, *rows = list(csv.reader(table))
    rows[5][0], rows[2_717][1], rows[1_940][0], rows[41] = "", "nonsense", "ab", rows[42][:]
    with (folder / "texts.csv").open("w", encoding="utf-8", newline="") as table:
        csv.writer(table).writerows([head, *rows])
    return folder


def validated(raw: Path, root: Path, suites: Path, *args: str) -> dict:
    from steps import validate
    from steps.io import DataError

    shutil.copytree(raw, root / "input" / "raw")
    shutil.copytree(suites, root / "input" / "suites")
    (root / "output" / "report").mkdir(parents=True)
    with pytest.raises(DataError, match="data validation failed"):
        validate.main(["--processing-root", str(root), "--format", "csv", "--labels", LABELS, *args])
    return json.loads((root / "output" / "report" / "validation.json").read_text())


LABELS = "entertainment,geography,health,politics,science/technology,sports,travel"


def test_validation_in_small_chunks_reports_what_one_chunk_reports(mirror, tmp_path):
    """Great Expectations checks each chunk; the merged report (counts, verdicts under `mostly`, the offending
    rows sampled, the row count, the share of unique texts over every chunk) is the one GX gives on every row."""
    raw = bad_texts(mirror, tmp_path / "raw")
    suites = Path(__file__).resolve().parents[1] / "configs" / "expectations"
    whole = validated(raw, tmp_path / "whole", suites)
    chunked = validated(raw, tmp_path / "chunked", suites, "--chunk_rows", "700")
    assert whole == chunked
    found = {(f["expectation"], f["column"]): f for f in whole["errors"]}
    assert found["expect_column_values_to_be_in_set", "label"]["sample"][0]["label"] == "nonsense"
    assert found["expect_column_value_lengths_to_be_between", "text"]["unexpected_count"] == 2
    assert whole["statistics"]["rows"] == 3_000


def test_an_expectation_with_no_merge_rule_is_refused_on_a_streamed_table(mirror, tmp_path):
    from steps import validate
    from steps.io import DataError

    raw = bad_texts(mirror, tmp_path / "raw")
    suites = tmp_path / "suites"
    shutil.copytree(Path(__file__).resolve().parents[1] / "configs" / "expectations", suites)
    rows = json.loads((suites / "text-classification.rows.json").read_text())
    rows["expectations"].append(
        {"type": "expect_column_most_common_value_to_be_in_set", "kwargs": {"column": "label", "value_set": ["travel"]}}
    )
    (suites / "text-classification.rows.json").write_text(json.dumps(rows))
    root = tmp_path / "root"
    shutil.copytree(raw, root / "input" / "raw")
    shutil.copytree(suites, root / "input" / "suites")
    (root / "output" / "report").mkdir(parents=True)
    refused = "expectation expect_column_most_common_value_to_be_in_set cannot be checked a chunk at a time"
    with pytest.raises(DataError, match=refused):
        validate.main(["--processing-root", str(root), "--format", "csv", "--chunk_rows", "700"])


def test_a_wrong_chunk_size_or_streaming_setting_is_refused_plainly(tmp_path, capsys):
    """A chunk size or a streamed fit's setting that is not a whole number at or above its least: one line
    saying which, before anything is read or written."""
    from foundation.errors import PravahError
    from steps import validate
    from training import sklearn_text

    for main in (preprocess.main, validate.main):
        with pytest.raises(SystemExit) as exited:
            main(["--processing-root", str(tmp_path), "--chunk_rows", "0"])
        assert exited.value.code == 2
        assert "argument --chunk_rows: must be a whole number of rows, at least 1: '0'" in capsys.readouterr().err
    for name, value in (("epochs", 0), ("batch_rows", 2.5), ("stream_above_rows", -1), ("epochs", True)):
        with pytest.raises(PravahError, match=f"hyperparameter {name} must be a whole number >= "):
            sklearn_text.streams(10, {name: value})
    assert not any(tmp_path.iterdir())


def test_evaluate_in_small_chunks_reports_what_one_piece_reports(mirror, tmp_path):
    """evaluate streams a test split of more than one chunk: read a chunk at a time, scored by a process per
    core, only each row's codes and probabilities kept. With chunks of 100 rows, and a champion scored in the
    same pass, the report and the monitoring reference are the same bytes as the test split's in one piece."""
    from steps import evaluate
    from tests.support import run_cli

    home = tmp_path / "home"
    assert run_cli(home, "run", "text-classifier", env={"PRAVAH_DATA_MIRROR": str(mirror)}).returncode == 0
    [model] = (home / "models" / "text-classifier").glob("train-*/model")
    [test] = (home / "processed" / "test" / "text-classifier").glob("preprocess-*/test")
    assert len(pd.read_parquet(test)) > 300
    written = {}
    for case, chunk_rows in (("whole", "1000000"), ("chunked", "100")):
        root = tmp_path / case
        for name, source in (("model", model), ("champion", model), ("test", test)):
            shutil.copytree(source, root / "input" / name)
        (root / "output" / "evaluation").mkdir(parents=True)
        evaluate.main(["--processing-root", str(root), "--chunk_rows", chunk_rows])
        written[case] = {name: (root / "output" / "evaluation" / name).read_bytes() for name in PREDICTED}
    assert written["whole"] == written["chunked"]
    report = json.loads(written["whole"]["evaluation.json"])
    assert report["comparison"]["champion"] == report["comparison"]["candidate"] > 0.5
    assert set(report["per_language"]) == {"hin_Deva", "eng_Latn"}, report["per_language"]


def test_an_instance_of_a_sharded_preprocess_splits_its_rows_alone(mirror, tmp_path):
    """On one of several instances (its resourceconfig.json), preprocess writes its part of each split and of
    the profile; a table without its own splits is refused unless each row is split by its text's hash, which
    puts a text in the same split wherever it is read and gives about the fractions asked."""
    from steps.baseline import TrainingProfile
    from steps.io import DataError

    raw = tmp_path / "raw"
    raw.mkdir()
    build_table(mirror, 3_000, raw / "texts.csv")
    args = ["--format", "csv", "--validation_fraction", "0.15"]
    (tmp_path / "algo-2" / "config").mkdir(parents=True)
    hosts = {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}
    (tmp_path / "algo-2" / "config" / "resourceconfig.json").write_text(json.dumps(hosts))
    with pytest.raises(DataError, match="split_by hash"):
        preprocessed(raw, tmp_path / "algo-2" / "processing", *args)
    shutil.rmtree(tmp_path / "algo-2" / "processing")
    out = preprocessed(raw, tmp_path / "algo-2" / "processing", *args, "--split_by", "hash")
    assert [p.name for p in (out / "train").iterdir()] == ["data-algo-2.parquet"]
    assert [p.name for p in (out / "profile").iterdir()] == ["algo-2.json"]
    part = TrainingProfile.merged(out / "profile")
    assert sum(part.rows.values()) == 3_000 and 0.1 < part.rows["validation"] / 3_000 < 0.2, part.rows
    alone = preprocessed(raw, tmp_path / "alone", *args, "--split_by", "hash")  # one instance: the same split
    for split in ("train", "validation", "test"):
        one = pd.read_parquet(alone / split / "data.parquet")
        assert one.equals(pd.read_parquet(out / split / "data-algo-2.parquet")), split
