"""The model registry: the approval workflow's rules, faults, concurrent registration, and the SageMaker
backend against a local AWS emulator (moto's server over real HTTP, with the real boto3 client)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from cli import main
from foundation.fingerprint import hash_tree
from foundation.home import Home
from registry.mlflow_backend import MlflowRegistry
from registry.sagemaker_backend import SageMakerRegistry
from registry.versions import APPROVED, PENDING, REJECTED, RegistryError, assign_alias, change_status
from tests.support import make_artifact, run_cli, wait_for

LINEAGE = {"run_id": "run-1", "data_sha256": "d" * 64, "code_sha256": "c" * 64, "spec_hash": "s" * 64}


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
    (mlflow_registry.home.root / "mlflow.db").unlink()
    assert worker.status_of(model_name="topics", version=version.version, digest=version.digest) is None


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


# -- SageMaker Model Registry, against moto's server over real HTTP ------------------------------------

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@pytest.fixture
def sagemaker(moto_server, monkeypatch):
    import boto3
    from botocore.config import Config

    from registry.sagemaker_backend import SageMakerRegistry

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    config = Config(retries={"max_attempts": 1})
    s3 = boto3.client("s3", endpoint_url=moto_server, config=config)
    registry = SageMakerRegistry(boto3.client("sagemaker", endpoint_url=moto_server, config=config))
    return registry, s3


def upload_model(s3, artifact: Path, bucket: str) -> str:
    s3.create_bucket(Bucket=bucket)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(artifact, arcname=".")
    s3.put_object(Bucket=bucket, Key="models/topics/model.tar.gz", Body=buffer.getvalue())
    return f"s3://{bucket}/models/topics/model.tar.gz"


def register_small_model(sagemaker, folder: Path, name: str, bucket: str) -> str:
    """A small artifact (make_artifact) uploaded to `bucket` and registered as version 1 of `name`; its URI."""
    registry, s3 = sagemaker
    artifact = make_artifact(folder, name)
    tree = hash_tree(artifact)
    uri = upload_model(s3, artifact, bucket)
    registry.register(
        name=name,
        artifact=uri,
        digest=tree.digest,
        files=tree.files,
        metrics={},
        lineage=LINEAGE,
        status=PENDING,
        image_uri=IMAGE,
    )
    return uri


def test_sagemaker_group_register_approve_and_list_approved(sagemaker, tmp_path):
    registry, s3 = sagemaker
    artifact = make_artifact(tmp_path / "a", "one")
    tree = hash_tree(artifact)
    uri = upload_model(s3, artifact, "pravah-test-models")
    metrics = {"macro_f1": 0.7}
    version = registry.register(
        name="topics-sm",
        artifact=uri,
        digest=tree.digest,
        files=tree.files,
        metrics=metrics,
        lineage=LINEAGE,
        status=PENDING,
        image_uri=IMAGE,
    )
    assert version.version == 1 and version.status == PENDING and version.source == uri
    assert version.lineage["data_sha256"] == "d" * 64 and version.metrics == {"macro_f1": 0.7}
    again = registry.register(
        name="topics-sm",
        artifact=uri,
        digest=tree.digest,
        files=tree.files,
        metrics={},
        lineage=LINEAGE,
        status=PENDING,
        image_uri=IMAGE,
    )
    assert again.version == 1, "the same artifact is not registered twice"
    assert registry.list("topics-sm", APPROVED) == []
    with pytest.raises(RegistryError, match="only an approved version can become champion"):
        assign_alias(registry, "topics-sm", "champion", 1)
    approved = change_status(registry, "topics-sm", 1, APPROVED, "meets the gate")
    assert approved.status == APPROVED
    # the package's metadata is sent whole with the change (AWS merges it, moto replaces it): the lineage that
    # deploy and monitoring read survives an approval, and the change is recorded beside it
    assert approved.lineage["data_sha256"] == "d" * 64 and approved.metrics == {"macro_f1": 0.7}
    assert approved.history[-1]["status"] == APPROVED and approved.history[-1]["reason"] == "meets the gate"
    assert [v.version for v in registry.list("topics-sm", APPROVED)] == [1]
    with pytest.raises(RegistryError, match="already Approved"):
        change_status(registry, "topics-sm", 1, APPROVED, "again")
    shown: list[str] = []
    dry = SageMakerRegistry(registry.client, dry_run=True, say=shown.append)
    assign_alias(dry, "topics-sm", "champion", 1)
    assert '"operation": "AddTags"' in shown[0] and registry.get("topics-sm", 1).aliases == [], (
        "a dry run sends nothing"
    )
    assign_alias(registry, "topics-sm", "champion", 1)
    assert registry.get("topics-sm", 1).aliases == ["champion"]
    with pytest.raises(RegistryError, match=r"no version 7 of model package group .topics-sm.; versions: 1"):
        registry.get("topics-sm", 7)


def test_sagemaker_rejected_is_final_and_bad_requests_are_refused(sagemaker, tmp_path):
    registry, _ = sagemaker
    uri = register_small_model(sagemaker, tmp_path / "b", "topics-rejects", "pravah-test-models-2")
    change_status(registry, "topics-rejects", 1, REJECTED, "worse on Hindi")
    with pytest.raises(RegistryError, match="a rejected version cannot be approved"):
        change_status(registry, "topics-rejects", 1, APPROVED, "changed my mind")
    with pytest.raises(RegistryError, match="not /local/folder"):
        registry.register(
            name="topics-rejects",
            artifact="/local/folder",
            digest="x",
            files={},
            metrics={},
            lineage=LINEAGE,
            status=PENDING,
            image_uri=IMAGE,
        )
    with pytest.raises(RegistryError, match="'bad name!' is not a valid SageMaker model package group name"):
        registry.register(
            name="bad name!",
            artifact=uri,
            digest="y" * 64,
            files={},
            metrics={},
            lineage=LINEAGE,
            status=PENDING,
            image_uri=IMAGE,
        )


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


def test_sagemaker_registry_through_the_cli_with_and_without_dry_run(sagemaker, moto_server, tmp_path):
    registry, s3 = sagemaker
    artifact = make_artifact(tmp_path / "c", "three")
    tree = hash_tree(artifact)
    uri = upload_model(s3, artifact, "pravah-test-models-3")
    for mark in "ab":
        registry.register(
            name="topics-cli",
            artifact=uri,
            digest=mark + tree.digest[1:],
            files=tree.files,
            metrics={},
            lineage=LINEAGE,
            status=PENDING,
            image_uri=IMAGE,
        )

    def models(*args: str):
        return run_cli(
            tmp_path / "home",
            "models",
            "--target",
            "sagemaker",
            "--region",
            "us-east-1",
            *args,
            env={"AWS_ENDPOINT_URL": moto_server},
        )

    dry = models("approve", "topics-cli", "1", "--reason", "looks good", "--dry-run")  # after the verb, as well
    assert dry.returncode == 0, dry.stderr
    assert "dry run: no change sent (reads ran); topics-cli version 1 stays PendingManualApproval" in dry.stdout
    assert '"operation": "UpdateModelPackage"' in dry.stdout
    assert registry.get("topics-cli", 1).status == PENDING
    assert models("approve", "topics-cli", "1", "--reason", "looks good").returncode == 0
    assert registry.get("topics-cli", 1).status == APPROVED
    assert models("reject", "topics-cli", "2", "--reason", "worse").returncode == 0
    dry_alias = models("--dry-run", "alias", "topics-cli", "1", "champion")
    assert dry_alias.stdout.strip().endswith("(dry run: no change sent; reads ran)")
    assert registry.get("topics-cli", 1).aliases == []
    assert models("alias", "topics-cli", "1", "champion").returncode == 0
    assert registry.get("topics-cli", 1).aliases == ["champion"]
    listed = models("list", "topics-cli").stdout
    assert "Approved" in listed and "champion" in listed and "Rejected" in listed
    wrong = models("alias", "topics-cli", "2", "champion")
    assert wrong.returncode == 2 and "only an approved version can become champion" in wrong.stderr


def test_a_package_the_cloud_pipeline_registered_reads_with_its_digest_lineage_and_metrics(sagemaker, tmp_path):
    """The names the compiled RegisterModel step writes (resolved, as SageMaker writes them) are the ones the
    registry reads back."""
    registry, s3 = sagemaker
    artifact = make_artifact(tmp_path / "d", "four")
    uri = upload_model(s3, artifact, "pravah-test-models-4")
    registry.client.create_model_package_group(ModelPackageGroupName="from-pipeline")
    registry.client.create_model_package(
        ModelPackageGroupName="from-pipeline",
        ModelApprovalStatus=PENDING,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": uri}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties={
            "pravah.run_id": "exec-1",
            "pravah.pipeline": "text-classifier",
            "pravah.spec_hash": "s" * 64,
            "pravah.source_sha256": "c" * 64,
            "pravah.artifact_digest": hash_tree(artifact).digest,
            "pravah.data_sha256": "d" * 64,
            "metric.macro_f1": "0.81",
            "pravah.gate_metric": "roc_auc",
            "pravah.gate_value": "0.93",
        },
    )
    version = registry.get("from-pipeline", 1)
    assert version.digest == hash_tree(artifact).digest and version.metrics == {"macro_f1": 0.81, "roc_auc": 0.93}
    assert version.lineage["run_id"] == "exec-1" and version.lineage["data_sha256"] == "d" * 64
    assert version.lineage["gate_metric"] == "roc_auc" and "gate_value" not in version.lineage


def test_a_versions_model_card_goes_to_sagemaker_as_a_model_card_checked_against_its_schema(
    sagemaker, moto_server, tmp_path
):
    """`pravah models card --target sagemaker`: the card is built from the package's own model.tar.gz, its
    content checked against SageMaker's model card schema (the SDK's shapes) and the request against botocore's
    model, then created; made again, it is an update (SageMaker keeps the content's versions); a dry run sends
    nothing. Content the schema does not know is refused before any request."""
    import json

    from foundation.errors import PravahError
    from registry.model_card import check_sagemaker_content

    registry, _ = sagemaker
    uri = register_small_model(sagemaker, tmp_path / "e", "topics-card", "pravah-test-models-5")

    def card(*args: str):
        return run_cli(
            tmp_path / "home",
            "models",
            "--target",
            "sagemaker",
            "--region",
            "us-east-1",
            *args,
            env={"AWS_ENDPOINT_URL": moto_server},
        )

    dry = card("--dry-run", "card", "topics-card", "1")
    assert dry.returncode == 0 and '"operation": "CreateModelCard"' in dry.stdout, dry.stderr
    made = card("card", "topics-card", "1", "--json")
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout[made.stdout.index("{") :])
    assert shown["model_details"]["labels"] == ["politics", "sports"] and shown["evaluation"] is None
    assert shown["stored_at"].startswith("arn:aws:sagemaker:us-east-1:") and shown["stored_at"].endswith(
        "topics-card-v1"
    )
    stored = registry.client.describe_model_card(ModelCardName="topics-card-v1")
    content = json.loads(stored["Content"])
    assert stored["ModelCardStatus"] == "Draft" and content["model_overview"]["model_artifact"] == [uri]
    assert content["training_details"]["training_job_details"]["training_datasets"] == ["sha256:" + "d" * 64]
    assert card("card", "topics-card", "1").returncode == 0, "made again: an update of the same card"
    assert (tmp_path / "home" / "cards" / "topics-card" / "1" / "model_card.html").is_file()
    # a package the compiled pipeline registered names its evaluation report (ModelMetrics): the card reads it
    report = {
        "test_rows": 12,
        "test_metrics": {"accuracy": 0.75, "macro_f1": 0.7},
        "per_language": {"hin_Deva": {"rows": 12, "accuracy": {"value": 0.75}, "macro_f1": {"value": 0.7}}},
    }
    s3 = sagemaker[1]
    s3.put_object(Bucket="pravah-test-models-5", Key="evaluation/evaluation.json", Body=json.dumps(report))
    registry.client.create_model_package(
        ModelPackageGroupName="topics-card",
        ModelApprovalStatus=PENDING,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": uri}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": "s3://pravah-test-models-5/evaluation/evaluation.json",
                }
            }
        },
    )
    second = card("card", "topics-card", "2", "--json")
    assert second.returncode == 0, second.stderr
    evaluated = json.loads(second.stdout[second.stdout.index("{") :])["evaluation"]
    assert evaluated["rows"] == 12 and evaluated["per_language"]["hin_Deva"] == {
        "rows": 12,
        "accuracy": 0.75,
        "macro_f1": 0.7,
    }
    groups = json.loads(registry.client.describe_model_card(ModelCardName="topics-card-v2")["Content"])
    assert [g["name"] for g in groups["evaluation_details"][0]["metric_groups"]] == ["overall", "hin_Deva"]
    with pytest.raises(PravahError, match=r"does not know: intended_uses\.purpose$"):
        check_sagemaker_content({**content, "intended_uses": {"purpose": "a typo of purpose_of_model"}})
    with pytest.raises(PravahError, match="does not fit SageMaker's schema"):
        check_sagemaker_content({**content, "intended_uses": {"risk_rating": "Tolerable"}})
