"""The dataset catalog: verified pulls from a mirror; a bad checksum or a missing file caches nothing."""

from __future__ import annotations

import shutil

import pytest

from foundation.errors import PravahError
from steps.datasets import load_catalog, pull


def test_pull_from_the_mirror_verifies_and_caches(mirror, tmp_path):
    target = tmp_path / "cache"
    folder = pull(load_catalog(), "sib-200", target, ["hin_Deva"], mirror)
    assert sorted(p.name for p in (folder / "hin_Deva").iterdir()) == ["dev.tsv", "labels.txt", "test.tsv", "train.tsv"]
    assert "पनडुब्बियों" in (folder / "hin_Deva" / "train.tsv").read_text(encoding="utf-8")


def test_a_checksum_mismatch_caches_nothing(mirror, tmp_path):
    fake = tmp_path / "mirror"
    shutil.copytree(mirror / "data" / "annotated" / "hin_Deva", fake / "data" / "annotated" / "hin_Deva")
    with (fake / "data" / "annotated" / "hin_Deva" / "test.tsv").open("a", encoding="utf-8") as handle:
        handle.write("999\tsports\ttampered\n")
    target = tmp_path / "cache"
    with pytest.raises(PravahError, match=r"test.tsv: checksum mismatch .*nothing was cached"):
        pull(load_catalog(), "sib-200", target, ["hin_Deva"], fake)
    assert not [p for p in target.rglob("*") if p.is_file()]


def test_a_missing_file_and_an_unknown_language_are_clear_errors(tmp_path):
    with pytest.raises(PravahError, match=r"no file data/annotated/hin_Deva/train.tsv; nothing was cached"):
        pull(load_catalog(), "sib-200", tmp_path / "cache", ["hin_Deva"], tmp_path)
    with pytest.raises(PravahError, match=r"no language 'hin_Dev'; did you mean 'hin_Deva'\?"):
        pull(load_catalog(), "sib-200", tmp_path / "cache", ["hin_Dev"], tmp_path)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.tsv"))
