"""MLflow tracking of pipeline runs: a parent run per pipeline run, a nested run per step that ran.

The runner's records are the source of truth; `sync_run` mirrors one into MLflow, idempotently (again
after a resume, only what changed). `pravah run` starts it in a detached process when the run ends, so a
run never waits for MLflow's start-up (about 2.5 s of imports and database set-up), and only when the run did
something: a fully cached run starts no sync (`pravah runs sync RUN_ID` records it anyway). A step taken from
the cache is not logged again (its run in MLflow is the one that made it); the parent run carries every
step's metrics, cached ones included, so that runs compare in MLflow's table. The sync's CPU time is kept
with what it synced, and `pravah runs show` reports it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from foundation.home import Home, write_json_atomic
from foundation.mlflow_store import connect
from pipelines.records import OutputRecord, RunRecord, RunStore

MAX_ARTIFACT_BYTES = 5 * 1024 * 1024  # larger outputs are recorded by path and hash, not copied
FINAL_STEP_STATES = {"succeeded", "cached", "failed"}
_RUN_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "interrupted": "KILLED", "running": "RUNNING"}


@contextmanager
def _sync_state(home: Home, run_id: str) -> Iterator[dict[str, Any]]:
    """What of a run is already in MLflow, held under a lock so two syncs never log twice."""
    folder = home.root / "tracking"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{run_id}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = folder / f"{run_id}.json"
        state = json.loads(path.read_text()) if path.exists() else {"parent": None, "steps": {}}
        yield state
        write_json_atomic(path, state)


def parent_run(client, home: Home, record: RunRecord, state: dict[str, Any] | None = None) -> str:
    """The MLflow parent run of a pipeline run, created on first use."""
    if state is None:
        with _sync_state(home, record.id) as held:
            return parent_run(client, home, record, held)
    if state["parent"]:
        return state["parent"]
    experiment = client.get_experiment_by_name(record.pipeline)
    if experiment is None:
        uri = (home.artifact_root / record.pipeline).as_uri()
        experiment_id = client.create_experiment(record.pipeline, artifact_location=uri)
    else:
        experiment_id = experiment.experiment_id
    tags = {"pravah.run_id": record.id, "pravah.spec_hash": record.spec_hash, "pravah.spec_path": record.spec_path}
    run = client.create_run(experiment_id, run_name=record.id, tags=tags)
    _log_params(client, run.info.run_id, record.parameters)
    state["parent"] = run.info.run_id
    return state["parent"]


def ran(record: RunRecord) -> bool:
    """Whether a run did anything to sync: a step that ran (not from the cache), or an end other than success."""
    return record.status != "succeeded" or any(
        step.status in FINAL_STEP_STATES and not step.cache_hit and step.kind in ("processing", "training", "register")
        for step in record.steps.values()
    )


def sync_run(home: Home, run_id: str, client=None) -> str:
    """Mirror a run record into MLflow; return the parent run id."""
    from mlflow.entities import Metric

    record = RunStore(home).load(run_id)
    client = client or connect(home)
    with _sync_state(home, run_id) as state:
        parent = parent_run(client, home, record, state)
        experiment_id = client.get_run(parent).info.experiment_id
        for name, step in record.steps.items():
            logged = state["steps"].get(name)
            if step.status not in FINAL_STEP_STATES or (logged and logged["ended_at"] == step.ended_at):
                continue
            step_run = None if step.cache_hit else _log_step(client, experiment_id, parent, record, name)
            state["steps"][name] = {"ended_at": step.ended_at, "run_id": step_run}
        stamp = int(time.time() * 1000)
        metrics = [
            Metric(f"{name}.{key}"[:250], value, stamp, 0)
            for name, step in record.steps.items()
            for key, value in step.metrics.items()
        ]
        for start in range(0, len(metrics), 1000):
            client.log_batch(parent, metrics=metrics[start : start + 1000])
        cached = [name for name, step in record.steps.items() if step.cache_hit]
        if cached:
            client.set_tag(parent, "pravah.cached_steps", ", ".join(cached))
        if record.error:
            client.set_tag(parent, "pravah.error", record.error[:5000])
        client.set_tag(parent, "pravah.status", record.status)
        if record.status == "running":
            client.update_run(parent, status="RUNNING")
        else:
            client.set_terminated(parent, _RUN_STATUS[record.status])
    return parent


def _log_step(client, experiment_id: str, parent: str, record: RunRecord, name: str) -> str:
    from mlflow.entities import Metric

    step = record.steps[name]
    tags = {
        "mlflow.parentRunId": parent,
        "pravah.run_id": record.id,
        "pravah.step": name,
        "pravah.status": step.status,
        "pravah.cache_hit": str(step.cache_hit).lower(),
        "pravah.reason": (step.reason or "")[:5000],
    }
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    _log_params(client, run_id, step.params)
    if step.metrics:
        stamp = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in step.metrics.items()])
    for output_name, output in step.outputs.items():
        _log_output(client, run_id, output_name, output)
    if step.error:
        client.set_tag(run_id, "pravah.error", step.error[:5000])
    if step.details.get("search"):
        _log_trials(client, experiment_id, run_id, record, name, step.details["search"])
    client.set_terminated(run_id, "FAILED" if step.status == "failed" else "FINISHED")
    return run_id


def _log_trials(client, experiment_id: str, step_run: str, record: RunRecord, name: str, search: dict) -> None:
    """A search's trials as nested runs under the step's run: each with the hyperparameters it tried and its
    objective, so that MLflow's comparison and parallel-coordinates views show the search."""
    from mlflow.entities import Metric

    stamp = int(time.time() * 1000)
    for trial in search["trials"]:
        tags = {
            "mlflow.parentRunId": step_run,
            "pravah.run_id": record.id,
            "pravah.step": name,
            "pravah.trial": str(trial["trial"]),
            "pravah.status": trial["status"],
            "pravah.best_trial": str(trial["trial"] == search["best_trial"]).lower(),
        }
        run_id = client.create_run(experiment_id, run_name=f"{name} trial {trial['trial']}", tags=tags).info.run_id
        _log_params(client, run_id, trial["params"])
        if trial["value"] is not None:
            client.log_batch(run_id, metrics=[Metric(search["objective"], trial["value"], stamp, 0)])
        client.set_terminated(run_id, "FINISHED" if trial["value"] is not None else "FAILED")


def _log_params(client, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(str(k)[:250], str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start : start + 100])


def _log_output(client, run_id: str, output_name: str, output: OutputRecord) -> None:
    """Small files of an output as artifacts; always the list of files with their hashes."""
    root = Path(output.path)
    client.log_dict(run_id, asdict(output), f"{output_name}/outputs.json")
    for relative in output.files:
        path = root / relative
        if path.is_file() and path.stat().st_size <= MAX_ARTIFACT_BYTES:
            parent = str(Path(output_name) / Path(relative).parent).rstrip("/.")
            client.log_artifact(run_id, str(path), parent)


def tracked_run(home: Home, run_id: str) -> tuple[str | None, float]:
    """The MLflow parent run of a pipeline run once synced, and the CPU-seconds its syncs took."""
    path = home.root / "tracking" / f"{run_id}.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    return state.get("parent"), state.get("cpu_seconds", 0.0)


def _record_cpu(home: Home, run_id: str) -> None:
    """Add this process's CPU time (a sync's: MLflow's imports and database included) to the run's state."""
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    with _sync_state(home, run_id) as state:
        state["cpu_seconds"] = round(state.get("cpu_seconds", 0.0) + used.ru_utime + used.ru_stime, 3)


def start_background_sync(home: Home, run_id: str) -> Path:
    """Sync a run in a detached process; its output goes to the run's log folder."""
    log = home.logs / run_id / "mlflow-sync.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        subprocess.Popen(
            [sys.executable, "-m", "pipelines.tracking", "--home", str(home.root), run_id],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return log


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Mirror a pravah run record into MLflow.")
    parser.add_argument("--home", required=True)
    parser.add_argument("run_id")
    args = parser.parse_args(argv)
    home = Home.resolve(args.home)
    parent = sync_run(home, args.run_id)
    _record_cpu(home, args.run_id)
    print(f"run {args.run_id} synced to MLflow run {parent}")


if __name__ == "__main__":
    main()
