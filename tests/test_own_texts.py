"""Your own texts: a CSV of `text,label[,language]` (here SIB-200's Hindi and English sentences, written as a
user's file would be, with their own column names) through the text steps with parameters only, to a
registered version, a served prediction over HTTP and a scored output file, by the README's commands."""

from __future__ import annotations

import csv

import pytest

from foundation.home import Home
from inference.keys import KeyStore
from pipelines.records import RunStore
from tests.support import run_cli, serve

pytestmark = pytest.mark.slow


def write_own_texts(mirror, path) -> None:
    """One file, no splits, columns named as the user likes: sentence, topic, lang."""
    import pandas as pd

    frames = []
    for language in ("hin_Deva", "eng_Latn"):
        for split in ("train", "dev", "test"):
            frame = pd.read_csv(mirror / "data" / "annotated" / language / f"{split}.tsv", sep="\t", quoting=3)
            frames.append(pd.DataFrame({"sentence": frame["text"], "topic": frame["category"], "lang": language[:3]}))
    pd.concat(frames).to_csv(path, index=False)


def test_a_text_csv_of_ones_own_goes_to_a_served_and_a_file_scored_version(tmp_path, mirror):
    home, data = tmp_path / "home", tmp_path / "my_texts.csv"
    write_own_texts(mirror, data)
    for args in (
        [
            "run",
            "text-example",
            "-p",
            f"data={data}",
            "-p",
            "columns=text=sentence,label=topic,language=lang",
            "--no-tracking",
        ],
        ["models", "approve", "text-example", "1", "--reason", "test"],
        ["deploy", "mine", "--model", "text-example", "--version", "1"],
    ):
        result = run_cli(home, *args)
        assert result.returncode == 0, result.stdout + result.stderr
    record = RunStore(Home(home)).all()[0]
    assert record.steps["evaluate"].metrics["multiclass_classification_metrics.macro_f1"] > 0.5

    server = serve(home, "mine", KeyStore(Home(home)).create("app"))
    try:
        with server.client() as client:
            answer = client.post("/api/v1/ml/predict", json={"input": {"text": "भारत ने क्रिकेट मैच जीता"}})
            assert answer.status_code == 200 and answer.json()["result"]["prediction"] == "sports", answer.text
            assert client.get("/api/v1/ml/model-info").json()["metricsSplit"] == "test"
    finally:
        server.stop()

    source, scored = tmp_path / "new.csv", tmp_path / "scored.csv"
    source.write_text("text\nThe team won the cricket match in the final over\n", encoding="utf-8")
    result = run_cli(
        home, "predict", "--model", "text-example", "--version", "1", "--input", str(source), "--output", str(scored)
    )
    assert result.returncode == 0, result.stderr
    assert [row["prediction"] for row in csv.DictReader(scored.open(encoding="utf-8"))] == ["sports"]


def test_own_texts_with_a_label_outside_the_given_list_are_refused_by_validation(tmp_path, mirror):
    home, data = tmp_path / "home", tmp_path / "my_texts.csv"
    write_own_texts(mirror, data)
    result = run_cli(
        home,
        "run",
        "text-example",
        "-p",
        f"data={data}",
        "-p",
        "labels=sports,politics",
        "-p",
        "columns=text=sentence,label=topic,language=lang",
        "--no-tracking",
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "data validation failed" in result.stderr + result.stdout and "label" in result.stderr + result.stdout
