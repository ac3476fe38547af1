"""The registry as the runner sees it: a worker process, started when the step whose model a register step
takes starts (or on a first request), so that MLflow's start-up (imports and database set-up, about 3 s)
overlaps that step's training and the runner itself never imports MLflow. Requests and answers are JSON lines
over the worker's stdin and stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation import typed
from foundation.errors import StepFailed
from foundation.home import Home
from pipelines.records import OutputRecord, RunStore

if TYPE_CHECKING:
    from registry.mlflow_backend import MlflowRegistry


class RegistryWorker:
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
                        [sys.executable, "-m", "pipelines.registry_worker", "--home", str(self.home.root)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=log,
                        text=True,
                        encoding="utf-8",
                    )

    def register(self, **request: Any) -> dict[str, Any]:
        """A new version (or the existing one for the same artifact): name, version, approval status."""
        return self._ask("register", request)

    def resolve(self, *, model_name: str, alias: str) -> dict[str, Any] | None:
        """The version holding `alias`, its verified local artifact folder and digest; None when none does."""
        found = read_alias_from_sqlite(self.home.tracking_uri, model_name, alias)
        if found is UNREADABLE:
            return self._ask("resolve", {"model_name": model_name, "alias": alias})
        if found is None:
            return None
        source, expected = found
        from registry.mlflow_backend import verified_artifacts  # the registry's modules: only when a run asks it

        return verified_artifacts(model_name, alias, source, expected)

    def status_of(self, *, model_name: str, version: int, digest: str) -> str | None:
        """The approval status of that version now, if the registry still holds it with that artifact (a cached
        register step checks, and reports the status as it is, not as it was registered); else None."""
        found = read_digest_from_sqlite(self.home.tracking_uri, model_name, version)
        if found is UNREADABLE:
            return self._ask("status_of", {"model_name": model_name, "version": version, "digest": digest})
        from registry.versions import PENDING

        return (found[1] or PENDING) if found is not None and found[0] == digest else None

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
    """The worker's loop: one answer line per request line."""
    from foundation.mlflow_store import connect
    from pipelines.tracking import parent_run
    from registry.mlflow_backend import MlflowRegistry

    client = connect(home)
    registry = MlflowRegistry(home, client)
    _warm_imports()
    for line in sys.stdin:
        request = json.loads(line)
        operation = request.pop("operation")
        try:
            if operation == "resolve":
                result = registry.resolve_alias(request["model_name"], request["alias"])
            elif operation == "status_of":
                result = registry.status_of(request["model_name"], request["version"], request["digest"])
            else:
                record = RunStore(home).load(request["run_id"])
                output = typed.read(request["model_output"], OutputRecord)
                version = registry.register(
                    name=request["model_name"],
                    artifact=Path(output.path),
                    digest=output.digest,
                    files=output.files,
                    metrics=request["metrics"],
                    lineage=request["lineage"],
                    status=request["approval_status"],
                    parent_run_id=parent_run(client, home, record),
                )
                result = {"name": version.name, "version": version.version, "approval_status": version.status}
                _write_card(home, registry, version, record.parameters)
            reply: dict[str, Any] = {"result": result}
        except Exception as exc:  # the registry's own errors go back to the step as its message
            reply = {"error": f"{operation} '{request.get('model_name')}': {exc}"}
        print(json.dumps(reply), flush=True)


def _write_card(home: Home, registry: MlflowRegistry, version, parameters: dict[str, Any]) -> None:
    """Every registered version gets its model card, stored with it; a card that cannot be made is said (on the
    run's log) and leaves the registration as it is: `pravah models card` makes it again."""
    from registry.model_card import card_folder, write_card

    try:
        write_card(registry, version, parameters, card_folder(home, version.name, version.version))
    except Exception as exc:
        print(f"warning: no model card for {version.name} version {version.version}: {exc}", file=sys.stderr)


def _warm_imports() -> None:
    """Import now, while the steps still run, what the first registration needs (about 4 s): the pyfunc
    flavour and the default family's persistence."""
    import mlflow.models
    import mlflow.pyfunc  # noqa: F401
    import skops.io  # noqa: F401

    import artifact.predictor  # noqa: F401


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The registry worker of a pravah run (JSON lines on stdin).")
    parser.add_argument("--home", required=True)
    serve(Home.resolve(parser.parse_args(argv).home))


if __name__ == "__main__":
    main()


UNREADABLE = object()  # MLflow's SQLite tables could not be read directly: ask MLflow itself
# The MLflow database revision (alembic) these queries were written for: a database of any other revision is
# read through MLflow itself. tests/test_registry.py fails when the installed MLflow's head moves from it, so
# that an upgrade re-checks the queries before changing this.
MLFLOW_SCHEMA = "dc11669786a5"


def _read_sqlite(tracking_uri: str, query: str, parameters: tuple) -> Any:
    """One row of a read-only query on MLflow's own SQLite tables (None: no such row or no database yet).

    Asking MLflow costs about 2.5 s of imports and set-up; this costs milliseconds, which is what keeps a
    cached re-run instant. Another store, or a schema revision other than MLFLOW_SCHEMA, gives UNREADABLE.
    """
    import sqlite3

    if not tracking_uri.startswith("sqlite:///"):
        return UNREADABLE
    path = Path(tracking_uri.removeprefix("sqlite:///"))
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as db:
            if db.execute("SELECT version_num FROM alembic_version").fetchone() != (MLFLOW_SCHEMA,):
                return UNREADABLE
            return db.execute(query, parameters).fetchone()
    except sqlite3.Error:
        return UNREADABLE


def read_alias_from_sqlite(tracking_uri: str, model_name: str, alias: str) -> Any:
    """(source, artifact digest) of the version holding `alias`, None when none does, or UNREADABLE."""
    return _read_sqlite(
        tracking_uri,
        "SELECT v.source, t.value FROM registered_model_aliases a JOIN model_versions v"
        " ON v.name = a.name AND v.version = a.version LEFT JOIN model_version_tags t ON t.name = v.name"
        " AND t.version = v.version AND t.key = 'pravah.artifact_digest' WHERE a.name = ? AND a.alias = ?",
        (model_name, alias),
    )


def read_digest_from_sqlite(tracking_uri: str, model_name: str, version: int) -> Any:
    """(artifact digest, approval status) of a version, None when the version does not exist, or UNREADABLE."""
    return _read_sqlite(
        tracking_uri,
        "SELECT d.value, s.value FROM model_versions v LEFT JOIN model_version_tags d ON d.name = v.name"
        " AND d.version = v.version AND d.key = 'pravah.artifact_digest' LEFT JOIN model_version_tags s"
        " ON s.name = v.name AND s.version = v.version AND s.key = 'approval_status'"
        " WHERE v.name = ? AND v.version = ?",
        (model_name, version),
    )
