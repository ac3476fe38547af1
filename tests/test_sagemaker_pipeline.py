"""`pravah pipeline upsert|start|status|executions` against moto's server over real HTTP, with the real boto3
client (which validates every request against the service models). moto runs no step of an execution: it
marks executions Succeeded at once."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from aws.environments import load_environment
from tests.support import REPO, ensure_bucket, run_cli

pytestmark = pytest.mark.slow
OUTER_ENDPOINT = os.environ.get("AWS_ENDPOINT_URL")  # whatever the shell exports: the tests leave it as it was


@pytest.fixture(scope="module")
def aws_env(moto_server):
    environment = load_environment("dev", REPO)
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": environment.region,
    }
    s3 = boto3.client(
        "s3",
        region_name=environment.region,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    ensure_bucket(s3, environment.bucket, environment.region)
    return env, environment, s3


def cli(tmp_path, env, *args):
    return run_cli(tmp_path / "home", *args, env=env, timeout=300)


def test_upsert_uploads_once_creates_then_updates_and_executions_start(aws_env, tmp_path):
    env, environment, s3 = aws_env
    first = cli(tmp_path, env, "pipeline", "upsert", "text-classifier")
    assert first.returncode == 0, first.stderr
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=environment.bucket, Prefix="pravah/")["Contents"]}
    assert any(k.endswith("/source.tar.gz") for k in keys) and any(k.endswith("/datasets.yaml") for k in keys)
    assert s3.get_bucket_versioning(Bucket=environment.bucket)["Status"] == "Enabled", "every object recoverable"
    sagemaker = boto3.client(
        "sagemaker",
        region_name=environment.region,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    described = sagemaker.describe_pipeline(PipelineName="text-classifier")
    definition = json.loads(described["PipelineDefinition"])
    assert {s["Name"] for s in definition["Steps"]} >= {"ingest", "train", "gate"}
    assert described["RoleArn"] == environment.role_arn

    again = cli(tmp_path, env, "pipeline", "upsert", "text-classifier")
    assert again.returncode == 0 and again.stdout.count("kept s3://") == len(keys), again.stdout

    started = cli(tmp_path, env, "pipeline", "start", "text-classifier", "-p", "min_macro_f1=0.7")
    assert started.returncode == 0, started.stderr
    arn = started.stdout.split()[1]
    sent = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {"Name": "min_macro_f1", "Value": "0.7"} in sent, "the run's parameters reached the service"
    from tests.support import moto_sagemaker_backends

    [execution] = [
        pipeline.pipeline_executions[arn]
        for backend in moto_sagemaker_backends()
        for pipeline in backend.pipelines.values()
        if arn in pipeline.pipeline_executions
    ]
    execution.pipeline_execution_status = "Executing"  # a run under way, not moto's canned "Succeeded"
    status = cli(tmp_path, env, "pipeline", "status", "text-classifier", arn)
    assert status.returncode == 0 and status.stdout.startswith(f"{arn}: Executing (started"), status.stdout
    listed = cli(tmp_path, env, "pipeline", "executions", "text-classifier")
    assert arn in listed.stdout


def test_dry_run_prints_validated_requests_and_sends_nothing(aws_env, tmp_path):
    env, environment, s3 = aws_env
    before = s3.list_objects_v2(Bucket=environment.bucket).get("KeyCount", 0)
    shown = cli(tmp_path, env, "pipeline", "start", "text-classifier", "--dry-run", "-p", "languages=hin_Deva")
    assert shown.returncode == 0, shown.stderr
    request = json.loads(shown.stdout[: shown.stdout.rindex("}") + 1])
    assert request["operation"] == "StartPipelineExecution"
    assert request["parameters"]["PipelineParameters"] == [{"Name": "languages", "Value": "hin_Deva"}]
    assert s3.list_objects_v2(Bucket=environment.bucket).get("KeyCount", 0) == before
    wrong = cli(tmp_path, env, "pipeline", "start", "text-classifier", "-p", "min_macro_f1=high")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    missing = cli(
        tmp_path,
        {**env, "AWS_DEFAULT_REGION": "eu-west-1"},
        "pipeline",
        "status",
        "text-classifier",
        "arn:aws:sagemaker:ap-south-1:111111111111:pipeline/text-classifier/execution/nope",
    )
    assert missing.returncode == 2 and "describe_pipeline_execution" in missing.stderr
    assert os.environ.get("AWS_ENDPOINT_URL") == OUTER_ENDPOINT, "the tests' endpoint stays in their subprocesses"


def test_the_bucket_is_replicated_when_the_environment_says_so(aws_env, monkeypatch):
    from aws.environments import Replication
    from aws.requests import Aws
    from pipelines.sagemaker.pipeline import protect_bucket

    env, environment, s3 = aws_env
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s3.create_bucket(Bucket="pravah-dr-copy", CreateBucketConfiguration={"LocationConstraint": environment.region})
    s3.put_bucket_versioning(Bucket="pravah-dr-copy", VersioningConfiguration={"Status": "Enabled"})
    copy = Replication(destination_bucket="pravah-dr-copy", role_arn="arn:aws:iam::111111111111:role/pravah-dr")
    protect_bucket(Aws(environment.model_copy(update={"replication": copy}), say=lambda _: None))
    rules = s3.get_bucket_replication(Bucket=environment.bucket)["ReplicationConfiguration"]["Rules"]
    assert rules[0]["Destination"]["Bucket"] == "arn:aws:s3:::pravah-dr-copy" and rules[0]["Status"] == "Enabled"
