"""The default pipeline end to end on the SIB-200 mirror, through the CLI as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from foundation.home import Home
from pipelines.records import RunStore
from tests.support import REPO, run_cli

pytestmark = pytest.mark.slow


def pravah(home: Path, mirror: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return run_cli(home, *args, cwd=cwd, env={"PRAVAH_DATA_MIRROR": str(mirror)})


def assert_tracked_in_mlflow(home: Path, run_id: str) -> None:
    import mlflow

    from pipelines.tracking import tracked_run

    client = mlflow.MlflowClient(Home(home).tracking_uri)
    parent = client.get_run(tracked_run(Home(home), run_id)[0])
    assert parent.info.status == "FINISHED" and parent.data.params["languages"] == "hin_Deva,eng_Latn"
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    steps = {child.data.tags["pravah.step"]: child for child in children}
    assert {"ingest", "validate", "preprocess", "train", "evaluate", "gate", "register"} <= set(steps)
    assert steps["evaluate"].data.metrics["per_language.hin_Deva.macro_f1"] > 0.5
    assert steps["train"].data.params["C"] == "10.0"
    # the parent carries every step's metrics, so that runs compare in MLflow's table
    assert parent.data.metrics["evaluate.multiclass_classification_metrics.macro_f1"] > 0.5
    versions = client.search_model_versions("name = 'text-classifier'")
    assert [v.tags["approval_status"] for v in versions] == ["PendingManualApproval"]


def assert_model_card(home: Path, mirror: Path, evaluation: dict) -> None:
    """The registered version got its model card at registration, stored with it in MLflow; `models card`
    makes it again and says what is in it."""
    import mlflow

    client = mlflow.MlflowClient(Home(home).tracking_uri)
    stored = client.get_model_version("text-classifier", "1").tags["pravah.model_card"]
    card = json.loads(Path(mlflow.artifacts.download_artifacts(f"{stored}/model_card.json")).read_text())
    assert card["model"] == "text-classifier" and card["training_data"]["languages"] == ["eng_Latn", "hin_Deva"]
    assert card["training_data"]["dataset"] == "sib-200" and len(card["training_data"]["sha256"]) == 64
    assert card["evaluation"]["rows"] == evaluation["test_rows"] == 408
    assert {name: found["rows"] for name, found in card["evaluation"]["per_language"].items()} == {
        "eng_Latn": 204,
        "hin_Deva": 204,
    }
    assert (
        card["evaluation"]["per_language"]["hin_Deva"]["macro_f1"]
        == evaluation["per_language"]["hin_Deva"]["macro_f1"]["value"]
    )
    assert card["calibration"]["temperature"] == evaluation["multiclass_classification_metrics"]["temperature"]["value"]
    assert card["gate"]["decision"].startswith("passed (macro_f1 ") and card["gate"]["minimum"] == 0.6
    assert card["lineage"]["run_id"] and any("other languages" in limit for limit in card["known_limits"])
    again = pravah(home, mirror, "models", "card", "text-classifier", "1")
    assert again.returncode == 0 and "by language (accuracy, rows): eng_Latn" in again.stdout, again.stderr
    page = (Home(home).root / "cards" / "text-classifier" / "1" / "model_card.html").read_text()
    assert "<h3>Per language</h3>" in page and "hin_Deva" in page and "<script" not in page


def test_default_pipeline_runs_caches_and_reruns_only_what_changed(tmp_path, mirror):
    home = tmp_path / "home"
    first = pravah(home, mirror, "run", "text-classifier")
    assert first.returncode == 0, first.stderr
    assert "SUCCEEDED" in first.stdout and "registered text-classifier version 1" in first.stdout, "the result"
    record = RunStore(Home(home)).all()[0]
    assert (
        "comparison.margin = 0.01 >= 0.0 is true (no champion to compare with: the margin is the tolerance, "
        "only the threshold counts)"
    ) in record.steps["gate"].reason
    evaluation = json.loads((Path(record.steps["evaluate"].outputs["evaluation"].path) / "evaluation.json").read_text())
    per_language = evaluation["per_language"]
    from registry.mlflow_backend import MlflowRegistry

    registered = MlflowRegistry(Home(home)).get("text-classifier", 1)
    assert evaluation["model"]["artifact_sha256"] == registered.digest, "the digest the cloud registration reads"
    assert set(per_language) == {"hin_Deva", "eng_Latn"}
    # calibrated confidences: training fits a temperature on the validation split, the artifact carries it, every
    # prediction uses it; on the test split the expected calibration error falls (0.22 raw for this model)
    metrics = evaluation["multiclass_classification_metrics"]
    manifest = json.loads((Path(record.steps["train"].outputs["model"].path) / "model.json").read_text())
    assert manifest["calibration"]["validation_ece_after"] < manifest["calibration"]["validation_ece_before"]
    assert metrics["temperature"]["value"] == manifest["calibration"]["temperature"] != 1.0
    calibrated, raw = (metrics[f"expected_calibration_error{k}"]["value"] for k in ("", "_uncalibrated"))
    assert calibrated < raw / 2, (calibrated, raw)
    assert all(values["macro_f1"]["value"] > 0.5 for values in per_language.values())
    assert (Path(record.steps["evaluate"].outputs["evaluation"].path) / "confusion_matrix.png").stat().st_size > 0
    assert (Path(record.steps["validate"].outputs["report"].path) / "data_docs" / "index.html").exists()
    said = {step: Home(home).step_log(record.id, step).read_text() for step in ("validate", "train")}
    assert "Calculating Metrics" not in said["validate"], "no progress bar per metric in the step's log"
    assert "fitting sklearn-text on 1,402 rows (198 held out) ..." in said["train"], said["train"]
    synced = pravah(home, mirror, "runs", "sync", record.id)
    assert synced.returncode == 0, synced.stderr
    assert_tracked_in_mlflow(home, record.id)
    assert_model_card(home, mirror, evaluation)

    approved = pravah(home, mirror, "models", "approve", "text-classifier", "1", "--reason", "reviewed")
    assert approved.returncode == 0, approved.stderr
    second = pravah(home, mirror, "run", "text-classifier")
    assert second.returncode == 0, second.stderr
    assert "every step came from the cache, nothing to sync" in second.stderr
    assert "registered text-classifier version 1 (Approved)" in second.stdout, "the registry's status now"
    rerun = RunStore(Home(home)).all()[0]
    code_steps = ["ingest", "validate", "preprocess", "train", "evaluate"]
    assert [rerun.steps[s].status for s in code_steps] == ["cached"] * 5
    assert rerun.steps["register"].status == "cached"
    assert rerun.steps["register"].details["registered"]["version"] == 1, "the same artifact is not registered twice"

    # the gate against a champion, scored again on today's test split: demanding a 0.05 lead fails
    import mlflow

    registry = mlflow.MlflowClient(Home(home).tracking_uri)
    registry.set_registered_model_alias("text-classifier", "champion", "1")
    from pipelines.registry_worker import RegistryWorker
    from registry.mlflow_backend import MlflowRegistry

    through_mlflow = MlflowRegistry(Home(home), registry).resolve_alias("text-classifier", "champion")
    assert RegistryWorker(Home(home)).resolve(model_name="text-classifier", alias="champion") == through_mlflow
    assert RegistryWorker(Home(home)).resolve(model_name="text-classifier", alias="challenger") is None
    gated = pravah(home, mirror, "run", "text-classifier", "-p", "champion_tolerance=-0.05")
    assert gated.returncode == 1
    macro_f1 = record.steps["evaluate"].metrics["multiclass_classification_metrics.macro_f1"]
    assert f"quality gate failed: test macro-F1 {macro_f1:g} needs >= min_macro_f1 = 0.6" in gated.stderr
    assert f"and against the champion's {macro_f1:g} on the same test split, delta 0 needs >= -tolerance = 0.05" in (
        gated.stderr
    )
    refused = RunStore(Home(home)).all()[0]
    assert refused.steps["register"].status == "skipped" and refused.steps["reject"].status == "failed"
    assert f"({macro_f1:g} - the champion's {macro_f1:g} + tolerance -0.05)" in refused.steps["gate"].reason
    assert "input 'champion' changed" in refused.steps["evaluate"].reason
    assert len(registry.search_model_versions("name = 'text-classifier'")) == 1

    project = tmp_path / "project"
    shutil.copytree(REPO / "configs", project / "configs")
    spec = project / "configs" / "pipelines" / "text-classifier.yaml"
    spec.write_text(spec.read_text().replace("C: 10.0", "C: 5.0"))
    third = pravah(home, mirror, "run", str(spec), "-p", "champion_tolerance=0.05", cwd=project)
    assert third.returncode == 0, third.stderr
    changed = RunStore(Home(home)).all()[0]
    assert [changed.steps[s].status for s in code_steps] == ["cached"] * 3 + ["succeeded"] * 2
    # MLflow gets a nested run for each step that ran, none for those taken from the cache
    import mlflow

    assert pravah(home, mirror, "runs", "sync", changed.id).returncode == 0
    from pipelines.tracking import tracked_run

    client, parent = mlflow.MlflowClient(Home(home).tracking_uri), tracked_run(Home(home), changed.id)[0]
    children = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert {c.data.tags["pravah.step"] for c in children} == {"train", "evaluate", "gate", "register"}
    assert client.get_run(parent).data.tags["pravah.cached_steps"] == "ingest, validate, preprocess"
    assert "values.C (10.0 → 5.0)" in changed.steps["train"].reason

    shown = pravah(home, mirror, "runs", "show", record.id)
    assert "per_language.hin_Deva.macro_f1" in shown.stdout

    # a cached register step checks that its version is still in the registry
    (home / "mlflow.db").unlink()
    again = pravah(home, mirror, "run", "text-classifier", "--no-tracking")
    assert again.returncode == 0, again.stderr
    reregistered = RunStore(Home(home)).all()[0].steps["register"]
    assert reregistered.status == "succeeded" and reregistered.reason == "version 1 is no longer in the registry"


def test_bad_data_stops_before_preprocessing(tmp_path, mirror):
    fake = tmp_path / "mirror" / "data" / "annotated"
    for language in ("hin_Deva", "eng_Latn"):
        shutil.copytree(mirror / "data" / "annotated" / language, fake / language)
    project = tmp_path / "project"
    shutil.copytree(REPO / "configs", project / "configs")
    catalog = project / "configs" / "datasets.yaml"
    bad = fake / "hin_Deva" / "train.tsv"
    bad.write_text(bad.read_text(encoding="utf-8").replace("\tsports\t", "\tcooking\t"), encoding="utf-8")
    from foundation.fingerprint import hash_file

    text = catalog.read_text()
    old = next(line.split(": ")[1] for line in text.splitlines() if "hin_Deva/train.tsv" in line)
    catalog.write_text(text.replace(old, hash_file(bad)))
    result = pravah(tmp_path / "home", tmp_path / "mirror", "run", "text-classifier", "--no-tracking", cwd=project)
    assert result.returncode == 1
    assert "data validation failed" in result.stderr
    assert "expect_column_values_to_be_in_set on rows column 'label'" in result.stderr
    assert "cooking" in result.stderr
    record = RunStore(Home(tmp_path / "home")).all()[0]
    assert record.steps["preprocess"].status == "not-run"
    assert "Traceback" not in result.stderr


def test_transformer_pipeline_fine_tunes_offline(tmp_path, mirror, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a hub download would fail the test instead of hiding
    home = tmp_path / "home"
    # English at 32 tokens of 128 (half the rows, a quarter of the sequence): a fine-tune that runs offline end to end
    result = pravah(
        home, mirror, "run", "text-transformer", "--no-tracking", "-p", "max_length=32", "-p", "languages=eng_Latn"
    )
    assert result.returncode == 0, result.stderr
    record = RunStore(Home(home)).all()[0]
    model = Path(record.steps["train"].outputs["model"].path)
    assert (model / "model.safetensors").exists() and json.loads((model / "model.json").read_text())["family"] == (
        "transformers"
    )
    assert record.steps["evaluate"].metrics["multiclass_classification_metrics.macro_f1"] > 0.2
    assert record.steps["register"].details["registered"]["name"] == "text-transformer"
