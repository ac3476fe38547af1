"""A table instead of text: the tabular example pipeline on scikit-learn's bundled datasets, written to CSV as
a user's own file would be, for a classification and a regression."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from foundation.home import Home
from pipelines.records import RunStore
from tests.support import run_cli

pytestmark = pytest.mark.slow


def serve_and_score(home: Path, rows, tmp_path: Path) -> tuple[dict, list[dict]]:
    """The README's commands after a run: approve and deploy version 1, one prediction over HTTP (the first row),
    and `pravah predict` on a file of the rows; the served result and the scored file's rows."""
    import csv

    from inference.keys import KeyStore
    from tests.support import serve

    for args in (
        ["models", "approve", "tabular-example", "1", "--reason", "test"],
        ["deploy", "own", "--model", "tabular-example", "--version", "1"],
    ):
        result = run_cli(home, *args)
        assert result.returncode == 0, result.stderr
    server = serve(home, "own", KeyStore(Home(home)).create("app"))
    try:
        with server.client() as client:
            features = json.loads(rows.iloc[:1].to_json(orient="records"))[0]
            answer = client.post("/api/v1/ml/predict", json={"input": {"features": features}})
            assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    source, scored = tmp_path / "to-score.csv", tmp_path / "scored.csv"
    rows.to_csv(source, index=False)
    result = run_cli(
        home, "predict", "--model", "tabular-example", "--version", "1", "--input", str(source), "--output", str(scored)
    )
    assert result.returncode == 0, result.stderr
    return answer.json()["result"], list(csv.DictReader(scored.open(encoding="utf-8")))


def test_a_csv_classification_runs_end_to_end(tmp_path):
    from sklearn.datasets import load_wine

    data = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"}).to_csv(data, index=False)
    result = run_cli(tmp_path / "home", "run", "tabular-example", "-p", f"data={data}", "-p", "target=cultivar")
    assert result.returncode == 0, result.stderr
    record = RunStore(Home(tmp_path / "home")).all()[0]
    assert record.steps["evaluate"].metrics["multiclass_classification_metrics.macro_f1"] > 0.8
    model = Path(record.steps["train"].outputs["model"].path)
    manifest = json.loads((model / "model.json").read_text())
    assert (
        manifest["family"] == "sklearn-tabular"
        and manifest["target"] == "cultivar"
        and "proline" in manifest["features"]
    )
    assert record.steps["register"].details["registered"]["name"] == "tabular-example"
    # the same training again, in another process: the same bytes, so no second registry version
    again = run_cli(
        tmp_path / "home",
        "run",
        "tabular-example",
        "-p",
        f"data={data}",
        "-p",
        "target=cultivar",
        "--no-cache",
        "--no-tracking",
    )
    assert again.returncode == 0, again.stderr
    rerun = RunStore(Home(tmp_path / "home")).all()[0]
    assert rerun.steps["train"].status == "succeeded", "trained again"
    assert rerun.steps["train"].outputs["model"].digest == record.steps["train"].outputs["model"].digest
    assert rerun.steps["register"].details["registered"]["version"] == 1


def test_a_tables_model_is_served_with_its_columns_checked_and_an_endpoint_serves_one_kind(tmp_path):
    """The README's commands from a CSV to a served prediction: the body names the row's values by column,
    checked against the model's recorded columns and types (each wrong field named; per item in a batch); the
    OpenAPI document and model-info show the columns; a text model cannot join the endpoint."""
    from sklearn.datasets import load_wine

    from inference.keys import KeyStore
    from tests.support import make_artifact, register_copy, serve, wait_for

    home, data = tmp_path / "home", tmp_path / "wine.csv"
    wine = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    wine.to_csv(data, index=False)
    for args in (
        ["run", "tabular-example", "-p", f"data={data}", "-p", "target=cultivar", "--no-tracking"],
        ["models", "approve", "tabular-example", "1", "--reason", "test"],
        ["deploy", "wine", "--model", "tabular-example", "--version", "1"],
    ):
        result = run_cli(home, *args)
        assert result.returncode == 0, result.stderr
    server = serve(home, "wine", KeyStore(Home(home)).create("app"))
    row = {name: float(value) for name, value in wine.drop(columns="cultivar").iloc[0].items()}
    try:
        with server.client() as client:
            answer = client.post("/api/v1/ml/predict", json={"input": {"features": row}})
            assert answer.status_code == 200 and answer.json()["result"]["prediction"] == "0", answer.text
            unknown = client.post("/api/v1/ml/predict", json={"input": {"features": {**row, "alcohol": None}}})
            assert unknown.status_code == 200, unknown.text  # null: a value the model's imputation fills
            info = client.get("/api/v1/ml/model-info").json()
            assert (
                info["metricsSplit"] == "test"
                and info["gateMetric"] == "macro_f1"
                and info["metrics"]["macro_f1"] > 0.8
            )
            assert (
                info["input"]["kind"] == "table" and {"name": "proline", "type": "number"} in info["input"]["columns"]
            )
            features = client.get("/openapi.json").json()["components"]["schemas"]["Features"]
            assert "proline" in features["required"] and features["additionalProperties"] is False

            def refused(body) -> list[tuple[str, str]]:
                answer = client.post("/api/v1/ml/predict", json=body)
                assert answer.status_code == 400, answer.text
                return [(d["field"], d["message"]) for d in answer.json()["error"]["details"]]

            assert refused({"input": {"text": "a wine"}})[0][0] == "input.features"
            typo = {**{k: v for k, v in row.items() if k != "proline"}, "prolin": 1000.0, "hue": "red"}
            assert refused({"input": {"features": typo}}) == [
                ("input.features.prolin", "not a column the model reads (did you mean 'proline'?)"),
                ("input.features.hue", 'must be a number, not "red"'),
                ("input.features.proline", "required (number; null if unknown)"),
            ]
            batch = client.post("/api/v1/ml/batch-predict", json={"inputs": [{"features": row}, {"features": typo}]})
            assert batch.status_code == 202 and batch.json()["refused"] == 1, batch.text
            status = wait_for(
                lambda: (s := client.get(batch.json()["statusUrl"]).json())["status"] != "processing" and s, "the batch"
            )
            results = client.get(status["resultsUrl"]).json()["results"]
            assert results[0]["prediction"] == "0", results
            assert results[1]["error"]["field"] == "inputs.1.features.prolin", results
    finally:
        server.stop()
    scored = run_cli(
        home,
        "predict",
        "--model",
        "tabular-example",
        "--version",
        "1",
        "--input",
        str(data),
        "--output",
        str(tmp_path / "scored.csv"),
    )  # the same model on a file, without the server
    assert scored.returncode == 0 and f"{len(wine)} of {len(wine)} rows scored" in scored.stdout, scored.stderr
    text_model = register_copy(home, make_artifact(tmp_path / "text", "wine"), tmp_path / "copy", "a text model")
    refused = run_cli(home, "deploy", "wine", "--model", "text-classifier", "--version", str(text_model))
    assert refused.returncode != 0 and "reads table rows" in refused.stderr and "reads text" in refused.stderr


def test_a_binary_target_is_evaluated_with_the_positive_classs_roc_auc(tmp_path):
    from sklearn.datasets import load_breast_cancer

    data = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.rename(columns={"target": "benign"}).to_csv(data, index=False)
    result = run_cli(
        tmp_path / "home", "run", "tabular-example", "-p", f"data={data}", "-p", "target=benign", "--no-tracking"
    )
    assert result.returncode == 0, result.stderr  # it crashed at evaluate: roc_auc_score given two columns
    record = RunStore(Home(tmp_path / "home")).all()[0]
    report = json.loads((Path(record.steps["evaluate"].outputs["evaluation"].path) / "evaluation.json").read_text())
    metrics = report["multiclass_classification_metrics"]
    assert metrics["positive_class"] == "1" and 0.9 < metrics["roc_auc"]["value"] <= 1.0
    assert "roc_auc_ovr" not in metrics
    # the registered version carries the test metrics by name, and the gate's metric (was: candidate = 0.97)
    from registry.mlflow_backend import MlflowRegistry

    version = MlflowRegistry(Home(tmp_path / "home")).get("tabular-example", 1)
    assert {"accuracy", "macro_f1", "roc_auc", "log_loss"} <= set(
        version.metrics
    ) and "candidate" not in version.metrics
    assert version.lineage["gate_metric"] == "macro_f1"
    listed = run_cli(tmp_path / "home", "models", "list").stdout.splitlines()[1].split()
    assert listed[4:6] == ["macro_f1", f"{version.metrics['macro_f1']:.4f}"], listed
    rows = load_breast_cancer(as_frame=True).frame.drop(columns="target").iloc[:5]
    served, scored = serve_and_score(tmp_path / "home", rows, tmp_path)
    assert served["prediction"] in ("0", "1") and scored[0]["prediction"] == served["prediction"]
    assert len(scored) == 5 and all(r["prediction"] in ("0", "1") and not r["error"] for r in scored)


def test_a_csv_regression_reports_regression_metrics(tmp_path):
    from sklearn.datasets import load_diabetes

    data = tmp_path / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(data, index=False)
    result = run_cli(
        tmp_path / "home",
        "run",
        "tabular-example",
        "-p",
        f"data={data}",
        "-p",
        "task=regression",
        "-p",
        "gate_metric=r2",
        "-p",
        "min_score=0.2",
        "--no-tracking",
    )
    assert result.returncode == 0, result.stderr
    record = RunStore(Home(tmp_path / "home")).all()[0]
    report = json.loads((Path(record.steps["evaluate"].outputs["evaluation"].path) / "evaluation.json").read_text())
    assert set(report["regression_metrics"]) == {"mae", "mse", "rmse", "r2"}
    assert (
        report["regression_metrics"]["r2"]["value"] > 0.2
        and report["regression_metrics"]["r2"]["standard_deviation"] > 0
    )
    served, scored = serve_and_score(
        tmp_path / "home", load_diabetes(as_frame=True).frame.drop(columns="target").iloc[:4], tmp_path
    )
    assert isinstance(served["prediction"], float) and served["confidence"] is None
    assert abs(float(scored[0]["prediction"]) - served["prediction"]) < 1e-6 and len(scored) == 4


def test_a_missing_target_column_is_a_clear_error(tmp_path):
    data = tmp_path / "table.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    result = run_cli(tmp_path / "home", "run", "tabular-example", "-p", f"data={data}", "--no-tracking")
    assert result.returncode == 1
    assert "table.csv: no target column 'target' (columns: a, b)" in result.stderr
    assert "Traceback" not in result.stderr


def test_given_splits_are_used_as_given_and_rows_in_two_splits_are_refused(tmp_path):
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"}).sample(frac=1, random_state=1)
    splits = tmp_path / "splits"
    splits.mkdir()
    wine.iloc[:110].to_csv(splits / "train.csv", index=False)
    wine.iloc[110:140].to_csv(splits / "validation.csv", index=False)
    wine.iloc[140:].to_csv(splits / "test.csv", index=False)
    result = run_cli(
        tmp_path / "home", "run", "tabular-example", "-p", f"data={splits}", "-p", "target=cultivar", "--no-tracking"
    )
    assert result.returncode == 0, result.stderr
    record = RunStore(Home(tmp_path / "home")).all()[0]
    report = json.loads((Path(record.steps["evaluate"].outputs["evaluation"].path) / "evaluation.json").read_text())
    assert report["test_rows"] == len(wine) - 140, "the test split is the user's test.csv, not a new split"
    manifest = json.loads((Path(record.steps["train"].outputs["model"].path) / "model.json").read_text())
    assert manifest["training_rows"] == 110
    served, scored = serve_and_score(tmp_path / "home", wine.drop(columns="cultivar").iloc[140:], tmp_path)
    assert served["prediction"] in ("0", "1", "2") and len(scored) == len(wine) - 140
    truth = wine["cultivar"].iloc[140:].astype(str).tolist()
    assert sum(r["prediction"] == t for r, t in zip(scored, truth, strict=True)) > 0.8 * len(truth)

    wine.iloc[100:120].to_csv(splits / "validation.csv", index=False)  # ten rows also in train.csv
    result = run_cli(
        tmp_path / "home", "run", "tabular-example", "-p", f"data={splits}", "-p", "target=cultivar", "--no-tracking"
    )
    assert result.returncode == 1 and "10 rows of train.csv are also in validation.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_with_train_and_test_only_validation_is_taken_from_train(tmp_path):
    """The step itself on the processing contract: test.csv kept whole, validation carved out of train.csv only."""
    import pandas as pd
    from sklearn.datasets import load_wine

    from steps import prepare_table

    wine = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"}).sample(frac=1, random_state=2)
    raw = tmp_path / "input" / "raw"
    raw.mkdir(parents=True)
    wine.iloc[:140].to_csv(raw / "train.csv", index=False)
    wine.iloc[140:].to_csv(raw / "test.csv", index=False)
    for split in ("train", "validation", "test", "profile"):
        (tmp_path / "output" / split).mkdir(parents=True)
    prepare_table.main(["--processing-root", str(tmp_path), "--target", "cultivar"])
    parts = {s: pd.read_parquet(tmp_path / "output" / s / "data.parquet") for s in ("train", "validation", "test")}
    given_train, given_test = (pd.read_csv(raw / f"{s}.csv") for s in ("train", "test"))

    def rows(frame) -> set:
        return set(frame.astype(float).itertuples(index=False))

    assert rows(parts["test"]) == rows(given_test), "the test split is test.csv, whole"
    assert len(parts["validation"]) > 0 and rows(parts["train"]) | rows(parts["validation"]) == rows(given_train)
    assert not rows(parts["train"]) & rows(parts["validation"]), "validation is held out of train"
