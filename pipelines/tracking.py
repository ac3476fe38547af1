"""MLflow tracking of pipeline runs: a parent run per pipeline run, a nested run per step.

MLflow is imported and written to on one background thread, so its start-up (about two seconds, more
when the SQLite store is created) overlaps the steps instead of adding to them, and SQLite sees a
single writer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from pipelines.errors import StepFailed
from pipelines.home import Home
from pipelines.records import OutputRecord, RunRecord

MAX_ARTIFACT_BYTES = 5 * 1024 * 1024  # larger outputs are recorded by path and hash, not copied
_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}


class MlflowTracker:
    def __init__(self, home: Home):
        self.home = home
        self._jobs: queue.Queue[tuple[Callable[[Any], Any], Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="mlflow", daemon=True)
        self._thread.start()
        self._parent: str | None = None
        self._experiment: str | None = None
        self._errors: list[BaseException] = []

    # -- the worker -------------------------------------------------------------------------------

    def _work(self) -> None:
        client = None
        while (job := self._jobs.get()) is not None:
            function, future = job
            try:
                if client is None:
                    client = self._connect()
                future.set_result(function(client))
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

    def _connect(self):
        import mlflow  # lazy: about two seconds of imports

        self.home.root.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.home.tracking_uri)
        return mlflow.MlflowClient(self.home.tracking_uri)

    def _submit(self, function: Callable[[Any], Any]) -> Future:
        future: Future = Future()
        self._jobs.put((function, future))
        return future

    def close(self) -> list[str]:
        """Wait for every queued write; return the distinct errors, if any, as warnings to show."""
        self._jobs.put(None)
        self._thread.join()
        return list(dict.fromkeys(str(exc) for exc in self._errors))

    def _background(self, function: Callable[[Any], Any]) -> None:
        future = self._submit(function)
        future.add_done_callback(lambda f: f.exception() and self._errors.append(f.exception()))

    # -- runner events ------------------------------------------------------------------------------

    def run_started(self, record: RunRecord, graph: Any) -> None:
        def start(client) -> None:
            experiment = client.get_experiment_by_name(record.pipeline)
            if experiment is None:
                uri = (self.home.artifact_root / record.pipeline).as_uri()
                self._experiment = client.create_experiment(record.pipeline, artifact_location=uri)
            else:
                self._experiment = experiment.experiment_id
            if record.mlflow_run_id:  # a resumed run continues its parent run
                self._parent = record.mlflow_run_id
                client.update_run(self._parent, status="RUNNING")
                return
            run = client.create_run(
                self._experiment,
                run_name=record.id,
                tags={"pravah.run_id": record.id, "pravah.spec_hash": record.spec_hash,
                      "pravah.spec_path": record.spec_path},
            )  # fmt: skip
            self._parent = record.mlflow_run_id = run.info.run_id
            _log_params(client, self._parent, record.parameters)

        self._background(start)

    def step_started(self, name: str) -> None:
        pass

    def step_finished(self, record: RunRecord, name: str, outcome: Any) -> None:
        step = record.steps[name]
        outputs = dict(step.outputs)
        params, metrics = dict(outcome.params), dict(step.metrics)

        def log(client) -> None:
            run = client.create_run(
                self._experiment,
                run_name=name,
                tags={"mlflow.parentRunId": self._parent, "pravah.run_id": record.id, "pravah.step": name,
                      "pravah.status": step.status, "pravah.cache_hit": str(step.cache_hit).lower(),
                      "pravah.reason": (step.reason or "")[:5000]},
            )  # fmt: skip
            run_id = run.info.run_id
            _log_params(client, run_id, params)
            if metrics:
                from mlflow.entities import Metric

                stamp = _millis()
                client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()])
            for output_name, output in outputs.items():
                _log_output(client, run_id, output_name, output)
            if step.error:
                client.set_tag(run_id, "pravah.error", step.error[:5000])
            client.set_terminated(run_id, "FAILED" if step.status == "failed" else "FINISHED")

        self._background(log)

    def run_finished(self, record: RunRecord) -> None:
        def finish(client) -> None:
            if self._parent:
                if record.error:
                    client.set_tag(self._parent, "pravah.error", record.error[:5000])
                client.set_terminated(self._parent, _STATUS.get(record.status, "FAILED"))

        self._background(finish)

    # -- the registry -------------------------------------------------------------------------------

    def register(
        self, *, model_name: str, model_output: OutputRecord, metrics: dict[str, float],
        approval_status: str, record: RunRecord,
    ) -> dict[str, Any]:  # fmt: skip
        """Register the model output as a new version of `model_name` (runs on the tracking thread)."""
        from pipelines.registry import register_version

        future = self._submit(
            lambda client: register_version(
                client, model_name=model_name, model_output=model_output, metrics=metrics,
                approval_status=approval_status, pipeline_run=record, parent_run_id=self._parent,
            )
        )  # fmt: skip
        try:
            return future.result()
        except StepFailed:
            raise
        except Exception as exc:  # the registry's own errors become a failed step with its message
            raise StepFailed(f"registering '{model_name}' failed: {exc}") from exc


def _millis() -> int:
    import time

    return int(time.time() * 1000)


def _log_params(client, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(str(k)[:250], str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):
        client.log_batch(run_id, params=items[start : start + 100])


def _log_output(client, run_id: str, output_name: str, output: OutputRecord) -> None:
    """Small files of an output as artifacts; always the list of files with their hashes."""
    root = Path(output.path)
    client.log_dict(run_id, {"path": output.path, "digest": output.digest, "files": output.files},
                    f"{output_name}/outputs.json")  # fmt: skip
    for relative in output.files:
        path = root / relative
        if path.is_file() and path.stat().st_size <= MAX_ARTIFACT_BYTES:
            parent = str(Path(output_name) / Path(relative).parent).rstrip("/.")
            client.log_artifact(run_id, str(path), parent)
