"""What a run costs around its steps and shows while it runs: MLflow tracking of what ran (and of nothing when
all was cached), `pravah ui` on the project's store, cache keys that cover every project module, the live
status line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from foundation.home import Home
from pipelines.records import RunStore
from tests.support import run_cli, unclaimed_port, wait_for


@pytest.mark.slow
def test_tracking_syncs_what_ran_and_a_fully_cached_run_nothing(tmp_path):
    """A run that ran steps is synced to MLflow in the background, its sync's CPU time kept and shown; a run
    that took every step from the cache starts no sync at all (it would cost seconds of CPU for nothing)."""
    from benchmarks.orchestration import STEPS, chain_project
    from pipelines.tracking import tracked_run

    home, project = tmp_path / "home", chain_project(tmp_path / "project")
    first = run_cli(home, "--project", str(project), "run", "chain")
    assert first.returncode == 0 and "syncing in the background" in first.stderr, first.stderr
    ran = RunStore(Home(home)).all()[0]
    parent, cpu_seconds = wait_for(lambda: (found := tracked_run(Home(home), ran.id))[1] and found, "the sync")
    assert cpu_seconds > 0.5, "MLflow's imports alone take more: the sync's own CPU time is what is recorded"
    import mlflow

    client = mlflow.MlflowClient(Home(home).tracking_uri)
    children = client.search_runs([client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(c.data.tags["pravah.step"] for c in children) == [f"s{n}" for n in range(1, STEPS + 1)]
    shown = run_cli(home, "--project", str(project), "runs", "show", ran.id)
    assert f"MLflow run: {parent} (synced in {cpu_seconds:.1f} CPU-s)" in shown.stdout, shown.stdout

    # pravah ui --mlflow: MLflow's UI on this project's own store (wherever --home puts it), showing this run
    import httpx

    port = unclaimed_port()
    ui = subprocess.Popen(
        [sys.executable, "-m", "cli", "--home", str(home), "ui", "--mlflow", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        search = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search"

        def listed():
            try:
                return httpx.post(search, json={"max_results": 10}, timeout=5).json()
            except (httpx.HTTPError, ValueError):
                return None

        experiments = wait_for(listed, "pravah ui to answer", 120)
        assert "chain" in {e["name"] for e in experiments["experiments"]}, experiments
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(30)

    again = run_cli(home, "--project", str(project), "run", "chain")
    assert again.returncode == 0 and "every step came from the cache, nothing to sync" in again.stderr
    cached = RunStore(Home(home)).all()[0]
    assert cached.id != ran.id and not (Home(home).logs / cached.id / "mlflow-sync.log").exists()


def test_a_steps_cache_key_covers_every_project_module_it_imports(tmp_path, monkeypatch):
    """A change to any module a step imports, Pravah's own (foundation, artifact, ...) or the project's own
    package beside the step, changes its code fingerprint and so re-runs it; neither counts as a library."""
    from foundation.fingerprint import code_fingerprint

    ingest = code_fingerprint("steps.ingest")
    assert {"steps.datasets", "foundation.fingerprint", "foundation.errors"} <= set(ingest.files)
    assert not {m for m in ingest.third_party if m.split(".")[0] in ("foundation", "artifact")}
    package = tmp_path / "mysteps"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "util.py").write_text("TWO = 2\n")
    (package / "step.py").write_text("from mysteps.util import TWO\n\ndef main(argv=None):\n    return TWO\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_fingerprint("mysteps.step")
    assert set(before.files) == {"mysteps.step", "mysteps.util"} and not before.third_party
    (package / "util.py").write_text("TWO = 3\n")
    assert code_fingerprint("mysteps.step").files != before.files


def test_the_live_status_line_shows_what_the_running_step_last_logged(tmp_path):
    """On a terminal, the status line names the running steps and the last line the longest-running one
    wrote to its log (a transformer's epoch and step), cut to fit."""
    import io
    from types import SimpleNamespace

    from pipelines.progress import Progress
    from pipelines.records import RunRecord

    home = Home(tmp_path / "home")
    record = RunRecord(id="r1", pipeline="p", spec_path="p.yaml", spec_hash="h", parameters={})
    screen = io.StringIO()
    progress = Progress(screen, live=True, home=home)
    progress.run_started(record, SimpleNamespace(steps={}))
    progress.step_started("train")
    log = home.step_log(record.id, "train")
    log.parent.mkdir(parents=True)
    log.write_text("=== attempt 1\nepoch 1/3 step 10/38: loss 1.9\nepoch 1/3 step 20/38: loss " + "1" * 90 + "\n")
    progress._print("  ▶ evaluate")
    shown = screen.getvalue().split("\r\x1b[K")[-1].splitlines()[-1]
    progress.run_finished(record)
    assert re.match(r"  running: train \d+s  \| epoch 1/3 step 20/38: loss 1+…$", shown), shown


def test_a_run_record_reads_back_whole_and_a_later_versions_field_is_ignored(tmp_path):
    """Run records are JSON written by one version of Pravah and read by another: what this version knows reads
    back unchanged; a field it does not know is left, as pydantic left it; a wrong type is an unreadable record."""
    import json

    import pytest

    from foundation.errors import PravahError
    from pipelines.records import OutputRecord, RunRecord, RunStore, StepRecord

    store = RunStore(Home(tmp_path / "home"))
    output = OutputRecord(path="/p", digest="d", files={"a.json": "h"})
    step = StepRecord(name="train", kind="training", status="succeeded", outputs={"model": output}, metrics={"f1": 1})
    record = RunRecord(
        id="r1",
        pipeline="p",
        spec_path="p.yaml",
        spec_hash="h",
        parameters={"x": 1},
        status="succeeded",
        steps={"train": step},
    )
    store.save(record)
    assert store.load("r1") == record
    written = json.loads(store.path("r1").read_text())
    written["added_later"] = 1
    written["steps"]["train"]["outputs"]["model"]["added_later"] = 1
    store.path("r1").write_text(json.dumps(written))
    assert store.load("r1") == record
    written["steps"]["train"]["metrics"]["f1"] = "high"
    store.path("r1").write_text(json.dumps(written))
    with pytest.raises(PravahError, match=r"unreadable run record .*steps\.train\.metrics\.f1: expected a number"):
        store.load("r1")
