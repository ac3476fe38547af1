"""The SageMaker Model Registry backend against a local AWS emulator (moto's server over real HTTP, with the
real boto3 client): model package groups, approval, the CLI with and without --dry-run, packages the cloud
pipeline registered, model cards."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from foundation.fingerprint import hash_tree
from registry.sagemaker_backend import SageMakerRegistry
from registry.versions import APPROVED, PENDING, REJECTED, RegistryError, assign_alias, change_status
from tests.support import LINEAGE, make_artifact, run_cli

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
