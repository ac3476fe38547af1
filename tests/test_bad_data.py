"""Bad data files stop the pipeline at validation with a message that says what is wrong and where;
nothing downstream runs and nothing is left half-written."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from foundation.errors import StepFailed
from foundation.home import Home
from pipelines.records import RunStore
from pipelines.runner import LocalRunner
from pipelines.specfile import load_pipeline

REPO = Path(__file__).resolve().parents[1]
SPEC = """
name: table-check
parameters:
  data: {type: string, default: ""}
  languages: {type: string, default: "en,hi"}
steps:
  validate:
    kind: processing
    code: steps.validate
    inputs: {raw: {param: data}, suites: {path: configs/expectations}}
    arguments: {format: csv, languages: {param: languages}, labels: "sports,politics"}
    outputs: {report: results/validation}
  preprocess:
    kind: processing
    code: steps.preprocess
    inputs: {raw: {param: data}}
    depends_on: [validate]
    arguments: {format: csv}
    outputs:
      train: processed/train
      validation: processed/validation
      test: processed/test
      profile: processed/baseline
"""
WORDS = {"sports": "match goal team cup", "politics": "vote party law minister"}
HINDI = {"sports": "मैच गोल टीम कप", "politics": "चुनाव दल कानून मंत्री"}


def rows() -> list[dict[str, str]]:
    table = []
    for label in ("sports", "politics"):
        for language, words in (("en", WORDS), ("hi", HINDI)):
            for i in range(25):
                table.append(
                    {
                        "id": f"{label}-{language}-{i}",
                        "language": language,
                        "label": label,
                        "text": f"{words[label]} number {i} of {label} in {language}",
                    }
                )
    return table


def write_csv(path: Path, table: list[dict[str, str]], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return path


@pytest.fixture
def check(project, home):
    project("configs/pipelines/table-check.yaml", SPEC)
    shutil.copytree(REPO / "configs" / "expectations", project.root / "configs" / "expectations")
    pipeline = load_pipeline(project.root / "configs" / "pipelines" / "table-check.yaml")

    def run(data: Path):
        runner = LocalRunner(pipeline, Home(home))
        runner.run(pipeline.resolve_parameters({"data": str(data)}))

    return run


def failure(home: Path) -> str:
    record = RunStore(Home(home)).all()[0]
    assert record.steps["validate"].status == "failed"
    assert record.steps["preprocess"].status == "not-run", "nothing downstream runs"
    assert not (home / "processed").exists() and not (home / "results").exists(), "no output was left in place"
    error = record.steps["validate"].error
    assert "Traceback" not in error
    return error


def test_good_data_passes_and_is_split(check, home, tmp_path):
    import pandas as pd

    table = rows()
    check(write_csv(tmp_path / "data" / "table.csv", table))
    record = RunStore(Home(home)).all()[0]
    assert record.status == "succeeded"
    splits = {
        name: pd.read_parquet(Path(record.steps["preprocess"].outputs[name].path) / "data.parquet")
        for name in ("train", "validation", "test")
    }
    ids = [set(split["id"]) for split in splits.values()]
    assert sum(map(len, ids)) == len(table) and set.union(*ids) == {row["id"] for row in table}, "each row once"
    assert [len(split) for split in splits.values()] == [70, 10, 20], "the default 70/10/20"
    for split in splits.values():  # stratified: every label and language in every split, in equal shares
        counts = split.groupby(["label", "language"]).size()
        assert len(counts) == 4 and counts.max() - counts.min() <= 1, counts


def test_a_corrupted_csv(check, home, tmp_path):
    path = write_csv(tmp_path / "data" / "table.csv", rows())
    lines = path.read_text().splitlines()
    lines[5] += ',"extra","fields"'
    path.write_text("\n".join(lines))
    with pytest.raises(StepFailed):
        check(path.parent)
    expected = "table.csv: malformed CSV: Error tokenizing data. C error: Expected 4 fields in line 6, saw 6"
    assert expected in failure(home)


def test_a_wrong_encoding(check, home, tmp_path):
    with pytest.raises(StepFailed):
        check(write_csv(tmp_path / "data" / "table.csv", rows(), encoding="utf-16"))
    assert "table.csv: not UTF-8 text (invalid byte 0xff at offset 0)" in failure(home)


def test_a_missing_column(check, home, tmp_path):
    table = [{k: v for k, v in row.items() if k != "label"} for row in rows()]
    with pytest.raises(StepFailed):
        check(write_csv(tmp_path / "data" / "table.csv", table))
    assert "table.csv: missing column 'label' (the label); columns are: id, language, text" in failure(home)


def test_an_empty_file(check, home, tmp_path):
    path = tmp_path / "data" / "table.csv"
    path.parent.mkdir()
    path.write_text("")
    with pytest.raises(StepFailed):
        check(path)
    assert "table.csv: the file is empty" in failure(home)


def test_labels_outside_the_allowed_set(check, home, tmp_path):
    table = rows()
    table[3]["label"] = "cooking"
    with pytest.raises(StepFailed):
        check(write_csv(tmp_path / "data" / "table.csv", table))
    error = failure(home)
    assert "error: expect_column_values_to_be_in_set on rows column 'label'" in error
    assert "1 rows" in error and "'label': 'cooking'" in error and "sports-en-3" in error


def test_a_language_the_spec_does_not_allow(check, home, tmp_path):
    table = rows()
    for row in table[:2]:
        row["language"] = "fr"
    with pytest.raises(StepFailed):
        check(write_csv(tmp_path / "data" / "table.csv", table))
    error = failure(home)
    assert "error: expect_column_values_to_be_in_set on rows column 'language'" in error
    assert "2 rows" in error and "'language': 'fr'" in error


def test_a_warning_is_reported_and_does_not_stop(check, home, tmp_path):
    table = rows()
    table[0]["text"] = "short"  # under the warning bound of 10 characters, over the error bound of 3
    check(write_csv(tmp_path / "data" / "table.csv", table))
    record = RunStore(Home(home)).all()[0]
    assert record.status == "succeeded"
    report = Path(record.steps["validate"].outputs["report"].path)
    assert '"severity": "warning"' in (report / "validation.json").read_text()
    assert (report / "data_docs" / "index.html").exists()
