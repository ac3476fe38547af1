"""The model registry (MLflow backend): a registered version carries its artifact, checksums, metrics and
the lineage of the run that made it.

The runner talks to it through `RegistryWorker`, a process of its own started when a run first does real
work, so that MLflow's start-up (imports and database set-up, about 3 s) overlaps the steps and the runner
itself never imports MLflow.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pipelines.cache import verify_output
from pipelines.errors import StepFailed
from pipelines.fingerprint import hash_tree
from pipelines.home import Home
from pipelines.records import OutputRecord, RunRecord, RunStore

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")


def register_version(
    client, *, model_name: str, model_output: OutputRecord, metrics: dict[str, float],
    approval_status: str, pipeline_run: RunRecord, parent_run_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Create a new version of `model_name` from a model output whose hashes still match."""
    from mlflow.exceptions import MlflowException

    if approval_status not in APPROVAL_STATUSES:
        raise StepFailed(f"approval status '{approval_status}' is not one of {', '.join(APPROVAL_STATUSES)}")
    if not Path(model_output.path).is_dir() or not verify_output(model_output):
        raise StepFailed(f"model artifact {model_output.path} is missing or was modified since it was written")
    if parent_run_id is None:
        raise StepFailed("no tracking run to attach the model to")
    client.log_artifacts(parent_run_id, model_output.path, "model")
    source = f"{client.get_run(parent_run_id).info.artifact_uri}/model"
    try:
        client.create_registered_model(model_name, tags={"pravah.pipeline": pipeline_run.pipeline})
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    existing = client.search_model_versions(
        f"name = '{model_name}' and tags.`pravah.artifact_digest` = '{model_output.digest}'"
    )
    if existing:  # the same artifact again (a fully cached run): no duplicate version
        found = existing[0]
        return {
            "name": model_name,
            "version": int(found.version),
            "approval_status": found.tags.get("approval_status", approval_status),
            "existing": True,
        }
    tags = {
        "approval_status": approval_status,
        "pravah.run_id": pipeline_run.id,
        "pravah.spec_hash": pipeline_run.spec_hash,
        "pravah.artifact_path": model_output.path,
        "pravah.artifact_digest": model_output.digest,
        **{f"metric.{name}": f"{value:.6g}" for name, value in sorted(metrics.items())[:200]},
    }
    version = client.create_model_version(model_name, source, run_id=parent_run_id, tags=tags)
    return {"name": model_name, "version": int(version.version), "approval_status": approval_status}


def resolve_alias(client, *, model_name: str, alias: str) -> dict[str, Any] | None:
    """The version of `model_name` holding `alias`, with its artifact folder verified against its digest."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
            return None
        raise
    return verified_artifacts(model_name, alias, version.source, version.tags.get("pravah.artifact_digest"))


def verified_artifacts(model_name: str, alias: str, source: str, expected: str | None) -> dict[str, Any]:
    path = local_artifacts(source)
    if not path.is_dir():
        raise StepFailed(f"{model_name} ({alias}): its artifact {path} is missing")
    digest = hash_tree(path).digest
    if expected and digest != expected:
        raise StepFailed(f"{model_name} ({alias}): its artifact {path} was modified since it was registered")
    return {"path": str(path), "digest": digest}


def read_alias_from_sqlite(tracking_uri: str, model_name: str, alias: str) -> tuple[str, str | None] | bool | None:
    """A read-only look at MLflow's own SQLite tables for the version holding `alias`: its source and
    artifact digest, or None when no version holds it. False when that cannot be read this way (another
    backend, or a schema this code does not know): then ask MLflow itself.

    Asking MLflow costs about 2.5 s of imports and set-up; this costs milliseconds, which is what keeps
    a cached re-run of a pipeline that compares against its champion instant.
    """
    if not tracking_uri.startswith("sqlite:///"):
        return False
    path = Path(tracking_uri.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as db:
            row = db.execute(
                "SELECT v.source, v.version FROM registered_model_aliases a JOIN model_versions v"
                " ON v.name = a.name AND v.version = a.version WHERE a.name = ? AND a.alias = ?",
                (model_name, alias),
            ).fetchone()
            if row is None:
                return None
            tag = db.execute(
                "SELECT value FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
                (model_name, row[1], "pravah.artifact_digest"),
            ).fetchone()
    except sqlite3.Error:
        return False
    return row[0], (tag[0] if tag else None)


def local_artifacts(source: str) -> Path:
    """A local folder with a version's artifacts: the folder itself for a file store, else a download."""
    parsed = urlparse(source)
    if parsed.scheme in {"", "file"}:
        return Path(unquote(parsed.path))
    import mlflow.artifacts

    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source))


class RegistryWorker:
    """Requests and answers as JSON lines over the worker's stdin and stdout."""

    def __init__(self, home: Home):
        self.home = home
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def log(self) -> Path:
        return self.home.logs / "registry.log"

    def warm(self) -> None:
        with self._lock:
            if self._process is None:
                self.log.parent.mkdir(parents=True, exist_ok=True)
                with self.log.open("a") as log:
                    self._process = subprocess.Popen(
                        [sys.executable, "-m", "pipelines.registry", "--home", str(self.home.root)],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, encoding="utf-8",
                    )  # fmt: skip

    def register(self, **request: Any) -> dict[str, Any]:
        """A new version (or the existing one for the same artifact): name, version, approval status."""
        return self._ask("register", request)

    def resolve(self, *, model_name: str, alias: str) -> dict[str, Any] | None:
        """The version holding `alias`, its verified local artifact folder and digest; None when none does."""
        found = read_alias_from_sqlite(self.home.tracking_uri, model_name, alias)
        if found is False:
            return self._ask("resolve", {"model_name": model_name, "alias": alias})
        if found is None:
            return None
        source, expected = found
        return verified_artifacts(model_name, alias, source, expected)

    def _ask(self, operation: str, request: dict[str, Any]) -> Any:
        self.warm()
        with self._lock:
            assert self._process is not None and self._process.stdin and self._process.stdout
            self._process.stdin.write(json.dumps({"operation": operation, **request}) + "\n")
            self._process.stdin.flush()
            answer = self._process.stdout.readline()
        if not answer:
            raise StepFailed(f"the registry process ended unexpectedly; see {self.log}")
        reply = json.loads(answer)
        if "error" in reply:
            raise StepFailed(reply["error"])
        return reply["result"]

    def close(self) -> None:
        """Let the worker go: it exits when its input ends (its teardown is not waited for)."""
        with self._lock:
            if self._process is not None and self._process.stdin:
                self._process.stdin.close()
            self._process = None


def serve(home: Home) -> None:
    """The worker's loop: one registration per request line."""
    from pipelines.tracking import connect, parent_run

    client = connect(home)
    for line in sys.stdin:
        request = json.loads(line)
        operation = request.pop("operation")
        try:
            if operation == "resolve":
                result = resolve_alias(client, **request)
            else:
                record = RunStore(home).load(request.pop("run_id"))
                result = register_version(
                    client, model_output=OutputRecord.model_validate(request.pop("model_output")),
                    pipeline_run=record, parent_run_id=parent_run(client, home, record), **request,
                )  # fmt: skip
            reply: dict[str, Any] = {"result": result}
        except Exception as exc:  # the registry's own errors go back to the step as its message
            reply = {"error": f"{operation} '{request.get('model_name')}': {exc}"}
        print(json.dumps(reply), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The registry worker of a pravah run (JSON lines on stdin).")
    parser.add_argument("--home", required=True)
    serve(Home.resolve(parser.parse_args(argv).home))


if __name__ == "__main__":
    main()
