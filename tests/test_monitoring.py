"""Monitoring on real data: traffic in the trained languages shows no drift; Marathi, Bengali and Tamil
traffic from the same SIB-200 mirror shows language and prediction drift, raises an alert and starts
retraining; a window of two versions, and a shadow's copies, are judged each by its own. The job itself on
made-up captures: tests/test_monitoring_job.py."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from tests.support import captured, deploy_default_model, run_cli, serve, split_texts, wait_for

API = "/api/v1/ml/predict"
LANGUAGE_CODES = {"hin_Deva": "hi", "eng_Latn": "en", "mar_Deva": "mr", "ben_Beng": "bn", "tam_Taml": "ta"}


def send(server, rows: list[dict[str, str]]) -> list[dict]:
    answers = []
    with server.client() as client:
        for row in rows:
            body = {"input": {"text": row["text"], "metadata": {"language": LANGUAGE_CODES[row["language"]]}}}
            answer = client.post(API, json=body)
            assert answer.status_code == 200, answer.text
            answers.append({**row, "predictionId": answer.json()["predictionId"]})
    return answers


def window_edge(home: Path, sent: list[dict]) -> str:
    """A window's edge: once every sent request is in the capture files, a clear second later (windows are
    compared to the second)."""
    ids = {row["predictionId"] for row in sent}
    wait_for(lambda: ids <= captured(home / "capture" / "prod").keys(), "the capture of the window's requests")
    time.sleep(1.1)
    return datetime.now(UTC).isoformat()


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, mirror):
    home = tmp_path_factory.mktemp("monitoring") / "home"
    key, _ = deploy_default_model(home, mirror, "traffic")
    server = serve(home, "prod", key)
    start = window_edge(home, [])
    familiar = send(server, split_texts(mirror, "hin_Deva") + split_texts(mirror, "eng_Latn"))
    middle = window_edge(home, familiar)
    foreign = send(
        server, [row for lang in ("mar_Deva", "ben_Beng", "tam_Taml") for row in split_texts(mirror, lang)[:150]]
    )
    end = window_edge(home, foreign)
    server.stop()
    yield home, (start, middle, end), familiar, foreign


@pytest.mark.slow
def test_familiar_traffic_shows_no_drift_and_labels_give_model_quality(monitored, tmp_path):
    home, (start, middle, _), familiar, _ = monitored
    labels = tmp_path / "labels.csv"
    pd.DataFrame(familiar)[["predictionId", "label"]].to_csv(labels, index=False)
    added = run_cli(home, "monitor", "labels", "add", str(labels))
    assert added.returncode == 0 and f"{len(familiar)} new labels" in added.stdout
    done = run_cli(home, "monitor", "run", "prod", "--start", start, "--end", middle)
    assert done.returncode == 0, done.stderr
    assert "ALERT" not in done.stdout, done.stdout
    output = Path(done.stdout.split("report: ")[1].split("/drift_report.html")[0])
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["records"] == len(familiar) and metrics["judged"]
    assert not any(f["drift"] for f in metrics["features"].values()), metrics["features"]
    assert set(metrics["features"]) == {
        "language",
        "script",
        "prediction",
        "text_length",
        "confidence",
        "unknown_token_rate",
    }
    quality = metrics["model_quality"]
    assert quality["labelled"] == len(familiar) and abs(quality["accuracy"] - quality["baseline"]["accuracy"]) < 0.02
    # estimated without labels from the calibrated confidences, then checked against the labels that came
    estimated = metrics["estimated_performance"]
    assert estimated["rows"] == len(familiar) and set(estimated["by_language"]) == {"hin_Deva", "eng_Latn"}
    assert abs(quality["estimate_error"]) <= 0.05, quality
    assert abs(estimated["accuracy"] - quality["accuracy"]) <= 0.05 and "estimated" in done.stdout
    assert json.loads((output / "constraint_violations.json").read_text()) == {"violations": []}
    assert (output / "drift_report.html").stat().st_size > 10_000


@pytest.mark.slow
def test_new_languages_drift_raise_an_alert_and_start_retraining(monitored, tmp_path, mirror):
    home, (_, middle, end), _, foreign = monitored
    capture = home / "capture" / "prod" / "text-classifier-v1"
    hour_folder = next(p.parent for p in capture.rglob("*.jsonl"))
    damaged = [hour_folder / name for name in ("zz-corrupt.jsonl", "zz-binary.jsonl", "zz-unreadable.jsonl")]
    damaged[0].write_text('{"captureData": \nnot json at all\n{"eventMetadata": {}}\n')
    damaged[1].write_bytes(b"\xff\xfe\x00garbage")  # one more corrupt line
    damaged[2].mkdir()  # a "file" that cannot be read
    config = tmp_path / "monitoring.yaml"
    config.write_text("alerts:\n  retrain:\n    enabled: true\n    pipeline: text-classifier\n")
    earlier_alerts = set((home / "monitoring" / "alerts").glob("*-prod.json"))  # the module's other tests' own
    try:
        done = run_cli(
            home,
            "monitor",
            "run",
            "prod",
            "--start",
            middle,
            "--end",
            end,
            "--config",
            str(config),
            env={"PRAVAH_DATA_MIRROR": str(mirror)},
        )
    finally:  # the module's other tests read the same capture
        for path in damaged:
            path.rmdir() if path.is_dir() else path.unlink()
    assert done.returncode == 3, done.stderr  # an alert: the documented exit code, for schedulers and CI
    assert "warning:" in done.stderr and "corrupt lines" in done.stderr and "unreadable" in done.stderr
    output = Path(done.stdout.split("report: ")[1].split("/drift_report.html")[0])
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["records"] == len(foreign) and metrics["corrupt_lines"] == 4 and metrics["unreadable_files"] == 1
    drifted = {name for name, found in metrics["features"].items() if found["drift"]}
    assert {"language", "prediction", "script"} <= drifted, metrics["features"]
    violations = json.loads((output / "constraint_violations.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations if v["constraint_check_type"] == "baseline_drift_check"} == drifted
    # without a label: the accuracy estimated from calibrated confidences drops, for Bengali and Tamil each
    estimated = metrics["estimated_performance"]
    assert estimated["baseline"]["accuracy"] - estimated["accuracy"] > estimated["max_drop"], estimated
    quality_checks = {v["feature_name"] for v in violations if v["constraint_check_type"] == "model_quality_check"}
    assert {"estimated_accuracy", "estimated_accuracy[ben_Beng]", "estimated_accuracy[tam_Taml]"} <= quality_checks
    assert "ALERT" in done.stdout and "retraining started" in done.stdout
    alerts = list(set((home / "monitoring" / "alerts").glob("*-prod.json")) - earlier_alerts)
    assert len(alerts) == 1 and json.loads(alerts[0].read_text())["retraining"]["pipeline"] == "text-classifier"
    assert '"message": "Drift alert"' in done.stderr
    retraining = Path(json.loads(alerts[0].read_text())["retraining"]["log"])
    # the retraining run: the same data, so its steps are cached and it ends quickly
    wait_for(lambda: "SUCCEEDED" in (text := retraining.read_text()) or "FAILED" in text, "the retraining run", 600)
    assert "SUCCEEDED" in retraining.read_text(), retraining.read_text()


@pytest.mark.slow
def test_monitor_run_since_takes_the_recent_window(monitored):
    home, _, familiar, foreign = monitored
    hour_folder = next((home / "capture" / "prod" / "text-classifier-v1").rglob("*.jsonl")).parent
    corrupt = hour_folder / "zz-since-corrupt.jsonl"
    corrupt.write_text("not json\n")
    try:
        done = run_cli(home, "monitor", "run", "prod", "--since", "1d")  # the whole of this module's traffic
    finally:
        corrupt.unlink()
    assert done.returncode == 3, done.stderr  # the foreign languages' drift is in it: an alert
    assert str(corrupt) in done.stderr, "warnings name the capture files themselves"
    output = Path(done.stdout.split("report: ")[1].split("/drift_report.html")[0])
    assert json.loads((output / "metrics.json").read_text())["records"] == len(familiar) + len(foreign)
    wrong = run_cli(home, "monitor", "run", "prod", "--since", "yesterday")
    assert wrong.returncode == 2 and "yesterday" in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.slow
def test_the_scheduler_reports_a_monitoring_run_that_alerted(monitored):
    """A monitor schedule's run that raised an alert (exit 3) is recorded and said as such, not as a failure."""
    from foundation.home import Home
    from monitoring.schedules import ScheduleStore, run_due

    home, _, _, _ = monitored
    store = ScheduleStore(Home(home))
    added = store.add("monitor", "prod", None, "1d", "drift-watch")  # the day holds the foreign languages' traffic
    try:
        said: list[str] = []
        assert run_due(Home(home), said.append, now=datetime.now(UTC) + timedelta(days=1)) == 1
        assert said[-1].endswith("drift-watch: raised an alert"), said
        assert {s.name: s.last_outcome for s in store.all()}["drift-watch"] == "raised an alert"
    finally:
        store.remove(added.name)


@pytest.mark.parametrize("clock", ["2026-11-26T12:00:00+00:00", "2026-11-26T23:30:00+00:00"])
def test_schedules_run_when_due_once_and_record_the_outcome(tmp_path, clock):
    """The wall clock is set (time-machine), so the outcome is the same at any hour the suite runs; at 23:30 the
    nightly slot falls inside the three hours and runs too. Both targets do not exist: each run fails at once."""
    import time_machine

    from foundation.errors import PravahError
    from foundation.home import Home
    from monitoring.schedules import ScheduleStore, run_due

    home = Home(tmp_path / "home")
    store = ScheduleStore(home)
    with time_machine.travel(datetime.fromisoformat(clock), tick=True):
        created = datetime.now(UTC)
        nightly = store.add("retrain", "no-such-pipeline", "0 2 * * *", None, None)
        assert nightly.next_run() == (created + timedelta(days=1)).replace(hour=2, minute=0, second=0, microsecond=0)
        store.add("monitor", "nowhere", None, "1h", None)
        with pytest.raises(PravahError, match="exists"):
            store.add("monitor", "nowhere", None, "1h", None)
        said: list[str] = []
        assert run_due(home, said.append) == 0, "nothing is due yet"
        three_hours_later = created + timedelta(hours=3)
        nightly_due = nightly.next_run() <= three_hours_later
        assert nightly_due == clock.startswith("2026-11-26T23")
        assert run_due(home, said.append, now=three_hours_later) == 1 + nightly_due, "missed slots run once"
        assert run_due(home, said.append, now=three_hours_later) == 0, "and not again in the same slot"
    ran = {s.kind: s for s in store.all()}
    assert ran["monitor"].last_outcome == "failed (exit 2)", "an endpoint that does not exist: the run fails, says so"
    assert ran["retrain"].last_outcome == ("failed (exit 2)" if nightly_due else None)
    log = next((home.root / "logs" / "schedules").glob("monitor-*.log")).read_text()
    assert "no endpoint 'nowhere'" in log
    assert ran["monitor"].next_run() > three_hours_later


def test_schedules_through_the_cli_add_list_run_once_and_remove(tmp_path):
    home = tmp_path / "home"
    added = run_cli(home, "schedule", "add", "monitor", "--endpoint", "nowhere", "--every", "1h", "--name", "hourly")
    assert added.returncode == 0 and "added hourly: monitor nowhere, every 3600s" in added.stdout, added.stderr
    idle = run_cli(home, "scheduler", "--once").stdout.strip()  # not due for an hour: says when, and how to run it
    assert re.fullmatch(
        r"nothing was due; next: hourly at \S+ \S+ UTC \(pravah schedule run hourly runs it now\)", idle
    ), idle
    now = run_cli(home, "schedule", "run", "hourly")  # one schedule, now
    assert now.returncode == 1 and now.stdout.strip() == "schedule 'hourly': failed (exit 2)", now.stdout + now.stderr
    assert "no endpoint 'nowhere'" in max((home / "logs" / "schedules").glob("hourly-*.log")).read_text()
    schedules = json.loads((home / "schedules.json").read_text())  # the scheduler was down for two hours
    schedules[0]["last_run"] = (datetime.fromisoformat(schedules[0]["last_run"]) - timedelta(hours=2)).isoformat()
    (home / "schedules.json").write_text(json.dumps(schedules))
    once = run_cli(home, "scheduler", "--once")
    assert once.returncode == 0 and once.stdout.strip().endswith("1 schedules ran"), once.stdout + once.stderr
    assert "hourly: failed (exit 2)" in once.stdout
    listed = run_cli(home, "schedule", "list").stdout
    assert "hourly: monitor nowhere, every 3600s; last " in listed and "failed (exit 2)" in listed
    [scripted] = json.loads(run_cli(home, "schedule", "list", "--json").stdout)
    assert (scripted["name"], scripted["every_seconds"], scripted["last_outcome"]) == (
        "hourly",
        3600,
        "failed (exit 2)",
    )
    assert datetime.fromisoformat(scripted["next_run"]) > datetime.fromisoformat(scripted["last_run"])
    wrong = run_cli(home, "schedule", "remove", "hourli")
    assert wrong.returncode == 2 and "no schedule 'hourli'" in wrong.stderr and "did you mean 'hourly'" in wrong.stderr
    assert run_cli(home, "schedule", "remove", "hourly").returncode == 0
    assert "no schedules" in run_cli(home, "schedule", "list").stdout


@pytest.fixture(scope="module")
def second_version(monitored, mirror) -> int:
    """Version 2 of the monitored model, retrained with another C (its own baseline, through its run)."""
    home = monitored[0]
    retrained = run_cli(
        home, "run", "text-classifier", "--set", "train.C=5", "--no-tracking", env={"PRAVAH_DATA_MIRROR": str(mirror)}
    )
    assert retrained.returncode == 0 and "registered text-classifier version 2" in retrained.stdout
    return 2


@pytest.mark.slow
def test_a_window_of_two_versions_traffic_is_judged_variant_by_variant(monitored, second_version):
    """After a deployment a window holds two versions' traffic: each variant's is judged against the baseline
    of the version it serves, said in the summary; an empty window says so and points at no report."""
    import shutil

    home, (start, middle, _), familiar, _ = monitored
    served = home / "capture" / "prod" / "text-classifier-v1"
    shutil.copytree(served, served.with_name("text-classifier-v2"))  # as if version 2 had answered the same
    try:
        done = run_cli(home, "monitor", "run", "prod", "--start", start, "--end", middle)
        assert "[1/2] text-classifier-v1: reading " in done.stderr and "[2/2] text-classifier-v2" in done.stderr
        first, second = done.stdout.split("variant text-classifier-v2")
        assert "ALERT" not in first, done.stdout  # version 1's answers judged by its own baseline: no drift
        reports = re.findall(r"report: (\S+)/drift_report\.html", done.stdout)
        one, two = (json.loads((Path(folder) / "metrics.json").read_text()) for folder in reports)
        assert one["prediction_mix"] == two["prediction_mix"], "the same answers in both windows"
        assert one["confidence_shift"] != two["confidence_shift"], "each against its own version's baseline"
        assert ("ALERT" in second) == (two["violations"] > 0), done.stdout  # version 2's verdict is its own
        assert done.returncode == (3 if two["violations"] else 0), done.stderr
        for version in (1, 2):
            assert (
                f"variant text-classifier-v{version}: {len(familiar)} records" in done.stdout
                and f"judged against the baseline of text-classifier version {version}" in done.stdout
            ), done.stdout
        assert len(reports) == 2 and reports[1].endswith("text-classifier-v2"), reports
    finally:
        shutil.rmtree(served.with_name("text-classifier-v2"))
    early = (datetime.fromisoformat(start) - timedelta(days=30)).isoformat()
    empty = run_cli(
        home,
        "monitor",
        "run",
        "prod",
        "--start",
        early,
        "--end",
        (datetime.fromisoformat(start) - timedelta(days=29)).isoformat(),
    )
    assert empty.returncode == 0 and "no captured traffic" in empty.stdout and "report" not in empty.stdout


@pytest.mark.slow
def test_a_shadows_copies_are_judged_as_a_shadows_and_start_no_retraining(monitored, second_version, tmp_path):
    """A shadow's captured answers reached nobody: `monitor run` says the variant is a shadow, records its
    alert as a shadow's, starts no retraining and exits 0 (production did not alert)."""
    home, (_, middle, end), _, foreign = monitored
    endpoint_file = home / "endpoints" / "prod.json"
    before = endpoint_file.read_bytes()  # the module's other tests judge version 2 as production's: restored below
    reason = ["--reason", "a shadow for the monitoring test"]
    assert run_cli(home, "models", "approve", "text-classifier", str(second_version), *reason).returncode == 0
    shadowed = run_cli(
        home, "deploy", "prod", "--model", "text-classifier", "--version", str(second_version), "--strategy", "shadow"
    )
    assert shadowed.returncode == 0, shadowed.stderr
    production = home / "capture" / "prod" / "text-classifier-v1"
    copies = production.with_name(f"text-classifier-v{second_version}")
    production.rename(copies)  # the window's traffic as the shadow's copies alone: production's own is judged above
    config = tmp_path / "monitoring.yaml"
    config.write_text("alerts:\n  retrain:\n    enabled: true\n    pipeline: text-classifier\n")
    earlier_alerts = set((home / "monitoring" / "alerts").glob("*-prod.json"))
    try:
        done = run_cli(home, "monitor", "run", "prod", "--start", middle, "--end", end, "--config", str(config))
    finally:
        copies.rename(production)
        assert run_cli(home, "endpoints", "stop-shadow", "prod").returncode == 0
        endpoint_file.write_bytes(before)
    assert done.returncode == 0, done.stderr  # only a shadow alerted
    assert "text-classifier-v2 (a shadow: copies of production requests): reading" in done.stderr
    assert f"variant text-classifier-v2 (shadow): {len(foreign)} records" in done.stdout, done.stdout
    assert "SHADOW ALERT (its answers reached nobody, so no retraining): " in done.stdout, done.stdout
    assert "retraining started" not in done.stdout
    alerts = list(set((home / "monitoring" / "alerts").glob("*-prod.json")) - earlier_alerts)
    assert len(alerts) == 1, alerts
    alert = json.loads(alerts[0].read_text())
    assert alert["shadow"] is True and alert["retraining"] is None, alert


def test_shadow_variants_are_those_whose_answers_never_reached_anyone():
    """The shadow now, and past shadows that never took traffic; a promoted or canaried shadow served users."""
    from inference.endpoints import EndpointState, Shadow, Variant

    def variant(version: int) -> Variant:
        return Variant(f"m-v{version}", "m", version, "/artifact", "digest", weight=100.0 if version == 1 else 0.0)

    state = EndpointState("prod", variants=[variant(1)], shadow=Shadow(variant(4), 100.0))
    state.shadowed = ["m-v2", "m-v3", "m-v4"]  # v2 stopped, v3 was canaried then rolled back, v4 shadows now
    state.history = [{"target": "m-v3", "status": "rolled_back", "replaced": None}]
    assert state.shadow_variants() == {"m-v2", "m-v4"}
    state.history.append({"target": "m-v2", "status": "completed", "replaced": {"name": "m-v1"}})
    assert state.shadow_variants() == {"m-v4"}
    assert EndpointState.from_json({"name": "prod", "shadowed": ["m-v2"]}).shadowed == ["m-v2"]
