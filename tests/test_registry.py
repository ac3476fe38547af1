"""The model registry: the approval workflow's rules, faults, concurrent registration, MLflow on SQLite and on
PostgreSQL (the SageMaker backend: tests/test_registry_sagemaker.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import pytest

from cli import main
from foundation.fingerprint import hash_tree
from foundation.home import Home
from registry.mlflow_backend import MlflowRegistry
from registry.versions import APPROVED, PENDING, REJECTED, RegistryError, assign_alias, change_status
from tests.support import LINEAGE, make_artifact, run_cli, wait_for


def register(registry, artifact: Path, status: str = PENDING):
    tree = hash_tree(artifact)
    return registry.register(
        name="topics",
        artifact=artifact,
        digest=tree.digest,
        files=tree.files,
        metrics={"macro_f1": 0.7},
        lineage=LINEAGE,
        status=status,
    )


@pytest.fixture
def mlflow_registry(tmp_path):
    return MlflowRegistry(Home(tmp_path / "home"))


def test_a_version_carries_artifact_checksums_metrics_lineage_and_history(mlflow_registry, tmp_path):
    version = register(mlflow_registry, make_artifact(tmp_path / "a", "one"))
    shown = mlflow_registry.get("topics", version.version)
    assert shown.status == PENDING and shown.metrics == {"macro_f1": 0.7}
    assert shown.digest == hash_tree(tmp_path / "a").digest
    assert shown.lineage["run_id"] == "run-1" and shown.lineage["data_sha256"] == "d" * 64
    assert shown.history[0]["reason"] == "registered" and "@" in shown.history[0]["by"]
    from registry.mlflow_backend import PYFUNC_ARTIFACT, local_artifacts

    mlflow_model = local_artifacts(shown.source)
    assert (mlflow_model / "MLmodel").is_file(), "registered as an MLflow pyfunc model"
    assert hash_tree(mlflow_model / PYFUNC_ARTIFACT).digest == shown.digest
    import mlflow.pyfunc
    import pandas as pd

    served = mlflow.pyfunc.load_model(str(mlflow_model)).predict(pd.DataFrame({"text": ["one goal match team"]}))
    assert served["prediction"].tolist() == ["sports"] and 0.5 < served["confidence"][0] <= 1


def test_the_runner_sees_whether_a_version_is_still_registered_and_its_status_now(mlflow_registry, tmp_path):
    from pipelines.registry_worker import RegistryWorker

    version = register(mlflow_registry, make_artifact(tmp_path / "a", "one"))
    worker = RegistryWorker(mlflow_registry.home)
    assert worker.status_of(model_name="topics", version=version.version, digest=version.digest) == version.status
    change_status(mlflow_registry, "topics", version.version, REJECTED, "not good enough")
    assert worker.status_of(model_name="topics", version=version.version, digest=version.digest) == REJECTED
    assert worker.status_of(model_name="topics", version=version.version, digest="0" * 64) is None
    assert worker.status_of(model_name="topics", version=2, digest=version.digest) is None
    assert mlflow_registry.status_of("topics", version.version, version.digest) == REJECTED
    assign_alias(mlflow_registry, "topics", "challenger", version.version)
    from pipelines.registry_worker import UNREADABLE, read_alias_from_sqlite, read_digest_from_sqlite

    uri = mlflow_registry.home.tracking_uri  # read directly, as MLflow wrote it
    assert read_digest_from_sqlite(uri, "topics", version.version) == (version.digest, REJECTED)
    assert read_alias_from_sqlite(uri, "topics", "challenger")[1] == version.digest
    database = sqlite3.connect(mlflow_registry.home.root / "mlflow.db")
    with closing(database), database:  # another revision (MLflow itself refuses it until migrated)
        database.execute("UPDATE alembic_version SET version_num = 'a-later-revision'")
    assert read_digest_from_sqlite(uri, "topics", version.version) is UNREADABLE, "another schema: not read directly"
    (mlflow_registry.home.root / "mlflow.db").unlink()
    assert worker.status_of(model_name="topics", version=version.version, digest=version.digest) is None


def test_the_direct_reader_was_written_for_the_installed_mlflows_schema():
    """The runner reads MLflow's SQLite tables directly (milliseconds instead of MLflow's seconds) only at the
    schema revision its queries were written for: an MLflow upgrade that moves the schema fails here first."""
    import os

    import mlflow.store.db_migrations
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from pipelines.registry_worker import MLFLOW_SCHEMA

    config = Config()
    config.set_main_option("script_location", os.path.dirname(mlflow.store.db_migrations.__file__))
    assert ScriptDirectory.from_config(config).get_heads() == [MLFLOW_SCHEMA]


def test_the_approval_workflow_and_its_refusals(mlflow_registry, tmp_path):
    first = register(mlflow_registry, make_artifact(tmp_path / "a", "one")).version
    second = register(mlflow_registry, make_artifact(tmp_path / "b", "two")).version
    with pytest.raises(RegistryError, match="only an approved version can become champion"):
        assign_alias(mlflow_registry, "topics", "champion", first)
    approved = change_status(mlflow_registry, "topics", first, APPROVED, "beats the baseline on hi and en")
    assert approved.status == APPROVED and approved.history[-1]["reason"] == "beats the baseline on hi and en"
    assign_alias(mlflow_registry, "topics", "champion", first)
    assign_alias(mlflow_registry, "topics", "challenger", second)
    assert mlflow_registry.get("topics", first).aliases == ["champion"]
    with pytest.raises(RegistryError, match="is already Approved"):
        change_status(mlflow_registry, "topics", first, APPROVED, "again")
    change_status(mlflow_registry, "topics", second, REJECTED, "worse on Hindi")
    with pytest.raises(RegistryError, match=r"was rejected \(worse on Hindi, by .*\): a rejected version cannot"):
        change_status(mlflow_registry, "topics", second, APPROVED, "changed my mind")
    with pytest.raises(RegistryError, match="no version 9 of model 'topics'; versions: 1, 2"):
        change_status(mlflow_registry, "topics", 9, APPROVED, "ok")
    with pytest.raises(RegistryError, match="give a --reason"):
        change_status(mlflow_registry, "topics", first, REJECTED, " ")
    assert [v.version for v in mlflow_registry.list(status=APPROVED)] == [first]
    assert [v.version for v in mlflow_registry.list("topics", REJECTED)] == [second]
    assert mlflow_registry.get("topics", second).aliases == [], "a rejected version holds no alias"
    with pytest.raises(RegistryError, match="rejected version cannot be approved; the approved ones: pravah models"):
        assign_alias(mlflow_registry, "topics", "champion", second)  # a hint that can be followed


def test_registering_a_missing_or_modified_artifact_is_refused(mlflow_registry, tmp_path):
    artifact = make_artifact(tmp_path / "a", "one")
    digest = hash_tree(artifact).digest
    (artifact / "labels.json").write_text("tampered")
    with pytest.raises(RegistryError, match="missing or was modified"):
        mlflow_registry.register(
            name="topics", artifact=artifact, digest=digest, files={}, metrics={}, lineage=LINEAGE, status=PENDING
        )
    with pytest.raises(RegistryError, match="missing or was modified"):
        mlflow_registry.register(
            name="topics",
            artifact=tmp_path / "nothing",
            digest=digest,
            files={},
            metrics={},
            lineage=LINEAGE,
            status=PENDING,
        )
    assert mlflow_registry.list() == []


@pytest.mark.slow
def test_two_runs_registering_at_once_on_a_new_database_lose_nothing_and_duplicate_nothing(tmp_path):
    home = tmp_path / "home"
    artifacts = [make_artifact(tmp_path / name, content) for name, content in (("a", "one"), ("b", "two"))]
    go = tmp_path / "go"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from foundation.fingerprint import hash_tree
        from foundation.home import Home
        from registry.mlflow_backend import MlflowRegistry
        import mlflow
        artifact = Path(sys.argv[1]); tree = hash_tree(artifact)
        Path(sys.argv[2] + ".ready").touch()
        while not Path({str(go)!r}).exists():  # all four start registering together, once all have imported
            time.sleep(0.01)
        v = MlflowRegistry(Home.resolve({str(home)!r})).register(name="topics", artifact=artifact, digest=tree.digest,
            files=tree.files, metrics={{}}, lineage={{"run_id": sys.argv[2]}}, status="PendingManualApproval")
        print(v.version)
    """)
    # no database yet: the four processes also race to create it
    jobs = [(artifacts[0], "r1"), (artifacts[0], "r2"), (artifacts[1], "r3"), (artifacts[1], "r4")]
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(a), run], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
        for a, run in jobs
    ]
    wait_for(lambda: len(list(tmp_path.glob("*.ready"))) == 4, "the four processes to be ready", timeout=600)
    go.touch()
    outputs = [p.communicate(timeout=600)[0] for p in processes]  # a cap for a hang, far above the time it takes
    assert [p.returncode for p in processes] == [0] * 4, outputs
    versions = [int(output.strip()) for output in outputs]
    assert versions[0] == versions[1] and versions[2] == versions[3] and versions[0] != versions[2]
    assert sorted(v.version for v in MlflowRegistry(Home(home)).list("topics")) == [1, 2]


def test_cli_mistakes_get_a_message_and_exit_2(mlflow_registry, tmp_path, capsys):
    register(mlflow_registry, make_artifact(tmp_path / "a", "one"))
    home = str(mlflow_registry.home.root)
    assert main(["--home", home, "models", "approve", "topics", "1", "--reason", "good"]) == 0
    assert "topics version 1 is now Approved" in capsys.readouterr().out
    assert main(["--home", home, "models", "approve", "topics", "1", "--reason", "good"]) == 2
    assert "error: topics version 1 is already Approved" in capsys.readouterr().err
    assert main(["--home", home, "models", "alias", "topics", "1", "champoin"]) == 2
    assert "unknown alias 'champoin'; did you mean 'champion'?" in capsys.readouterr().err
    assert main(["--home", home, "models", "list", "--status", "Aproved"]) == 2
    assert "did you mean 'Approved'?" in capsys.readouterr().err
    assert main(["--home", home, "models", "show", "topics", "1"]) == 0
    shown = capsys.readouterr().out
    assert "status history:" in shown and "Approved" in shown and "by " in shown and "run_id: run-1" in shown


@pytest.mark.slow
def test_list_reject_and_alias_through_the_cli(mlflow_registry, tmp_path):
    for content in ("one", "two", "three"):
        register(mlflow_registry, make_artifact(tmp_path / content, content))
    home = mlflow_registry.home.root
    assert run_cli(home, "models", "approve", "topics", "1", "--reason", "good").returncode == 0
    rejected = run_cli(home, "models", "reject", "topics", "2", "--reason", "worse on Hindi")
    assert rejected.returncode == 0 and "topics version 2 is now Rejected" in rejected.stdout
    again = run_cli(home, "models", "approve", "topics", "2", "--reason", "changed my mind")
    assert again.returncode == 2 and "a rejected version cannot be approved" in again.stderr
    assert run_cli(home, "models", "alias", "topics", "2", "champion").returncode == 2, "only approved versions"
    assert run_cli(home, "models", "alias", "topics", "1", "champion").stdout.strip() == "topics: champion -> version 1"
    assert run_cli(home, "models", "alias", "topics", "3", "challenger").returncode == 0
    rows = {line.split()[1]: line.split() for line in run_cli(home, "models", "list", "topics").stdout.splitlines()[1:]}
    assert rows["1"][2:4] == ["Approved", "champion"] and rows["2"][2:4] == ["Rejected", "-"]
    assert rows["3"][2:4] == ["PendingManualApproval", "challenger"] and rows["1"][4:6] == ["macro_f1", "0.7000"]
    approved = run_cli(home, "models", "list", "--status", "Approved").stdout.splitlines()
    assert len(approved) == 2 and approved[1].split()[:2] == ["topics", "1"]


# -- The MLflow registry on PostgreSQL (a real server: pgserver ships PostgreSQL's binaries in a wheel) ---------


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.mark.slow
def test_the_registry_works_the_same_on_postgresql(postgres, tmp_path, monkeypatch):
    postgres.psql("CREATE DATABASE registry;")
    socket_folder = postgres.get_uri().split("host=")[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"postgresql+psycopg2://postgres:@/registry?host={socket_folder}")
    registry = MlflowRegistry(Home(tmp_path / "home"))
    first = register(registry, make_artifact(tmp_path / "a", "one"))
    assert register(registry, tmp_path / "a").version == first.version, "the same artifact stays one version"
    second = register(registry, make_artifact(tmp_path / "b", "two"))
    change_status(registry, "topics", first.version, APPROVED, "good on hi and en")
    assign_alias(registry, "topics", "champion", first.version)
    with pytest.raises(RegistryError, match="only an approved version"):
        assign_alias(registry, "topics", "champion", second.version)
    assert [v.version for v in registry.list("topics", APPROVED)] == [first.version]
    assert registry.get("topics", first.version).aliases == ["champion"]
    assert not (tmp_path / "home" / "mlflow.db").exists(), "nothing went to the default SQLite file"
    tables = postgres.psql("\\c registry\nSELECT count(*) FROM model_versions;")
    assert " 2\n" in tables
