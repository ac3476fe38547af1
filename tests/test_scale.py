"""Data at scale: the steps that stream their rows give the same answer chunk by chunk as in one piece, and say
what they hold at most."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.scale import build_table
from steps import preprocess
from steps.datasets import load_catalog, pull

OUTPUTS = ("train", "validation", "test", "profile")
PROFILE_FILES = ("baseline.json", "reference.json", "vocabulary.json")


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
