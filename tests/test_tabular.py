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


def test_a_binary_target_is_evaluated_with_the_positive_classs_roc_auc(tmp_path):
    from sklearn.datasets import load_breast_cancer

    data = tmp_path / "cancer.csv"
    load_breast_cancer(as_frame=True).frame.rename(columns={"target": "benign"}).to_csv(data, index=False)
    result = run_cli(tmp_path / "home", "run", "tabular-example", "-p", f"data={data}", "-p", "target=benign",
                     "--no-tracking")  # fmt: skip
    assert result.returncode == 0, result.stderr  # it crashed at evaluate: roc_auc_score given two columns
    record = RunStore(Home(tmp_path / "home")).all()[0]
    report = json.loads((Path(record.steps["evaluate"].outputs["evaluation"].path) / "evaluation.json").read_text())
    metrics = report["multiclass_classification_metrics"]
    assert metrics["positive_class"] == "1" and 0.9 < metrics["roc_auc"]["value"] <= 1.0
    assert "roc_auc_ovr" not in metrics


def test_a_csv_regression_reports_regression_metrics(tmp_path):
    from sklearn.datasets import load_diabetes

    data = tmp_path / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(data, index=False)
    result = run_cli(tmp_path / "home", "run", "tabular-example", "-p", f"data={data}", "-p", "task=regression",
                    "-p", "gate_metric=r2", "-p", "min_score=0.2", "--no-tracking")  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = RunStore(Home(tmp_path / "home")).all()[0]
    report = json.loads((Path(record.steps["evaluate"].outputs["evaluation"].path) / "evaluation.json").read_text())
    assert set(report["regression_metrics"]) == {"mae", "mse", "rmse", "r2"}
    assert (
        report["regression_metrics"]["r2"]["value"] > 0.2
        and report["regression_metrics"]["r2"]["standard_deviation"] > 0
    )


def test_a_missing_target_column_is_a_clear_error(tmp_path):
    data = tmp_path / "table.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    result = run_cli(tmp_path / "home", "run", "tabular-example", "-p", f"data={data}", "--no-tracking")
    assert result.returncode == 1
    assert "table.csv: no target column 'target' (columns: a, b)" in result.stderr
    assert "Traceback" not in result.stderr
