"""`pravah cloud bootstrap`: an empty account (moto's server over HTTP, playing the environment's account)
made ready for a first deploy, each resource as the command's description promises, a second run sending
nothing, and credentials of another account refused before anything is created."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest

from cloud.events import rule_name
from tests.support import run_cli

ACCOUNT = "111111111111"  # configs/environments/dev.yaml
BUCKET = f"pravah-dev-{ACCOUNT}"


def sagemaker_event(detail_type: str, detail: dict) -> dict:
    """An event as SageMaker sends it to EventBridge (the envelope and the fields its rules read)."""
    return {
        "version": "0",
        "id": "0bd4a141-0a02-9d8a-f977-3924c3fb259c",
        "detail-type": detail_type,
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-12-07T01:52:12Z",
        "region": "ap-south-1",
        "resources": [],
        "detail": detail,
    }


EXECUTION = f"arn:aws:sagemaker:ap-south-1:{ACCOUNT}:pipeline/text-classifier/execution/abc123"
SAGEMAKER_EVENTS = {
    "run failed": sagemaker_event(
        "SageMaker Model Building Pipeline Execution Status Change",
        {
            "pipelineExecutionArn": EXECUTION,
            "currentPipelineExecutionStatus": "Failed",
            "previousPipelineExecutionStatus": "Executing",
        },
    ),
    "run interrupted": sagemaker_event(
        "SageMaker Model Building Pipeline Execution Status Change",
        {
            "pipelineExecutionArn": EXECUTION,
            "currentPipelineExecutionStatus": "Stopped",
            "previousPipelineExecutionStatus": "Stopping",
        },
    ),
    "awaits approval": sagemaker_event(
        "SageMaker Model Package State Change",
        {"ModelPackageGroupName": "topics", "ModelPackageVersion": 3, "ModelApprovalStatus": "PendingManualApproval"},
    ),
}


@pytest.fixture
def account(empty_account):
    env = {"AWS_ENDPOINT_URL": empty_account, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

    def client(service: str):
        return boto3.client(
            service,
            region_name="ap-south-1",
            endpoint_url=empty_account,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return env, client


def test_an_empty_account_is_made_ready_once_and_a_second_run_sends_nothing(account, tmp_path):
    env, client = account
    home = tmp_path / "home"
    dry = run_cli(home, "cloud", "bootstrap", "--environment", "dev", "--endpoint", "prod", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    operations = [line.split('"')[3] for line in dry.stdout.splitlines() if '"operation"' in line]
    assert operations == [
        "CreateBucket",
        "PutPublicAccessBlock",
        "PutBucketEncryption",
        "PutBucketVersioning",
        "PutBucketLifecycleConfiguration",
        "CreateRole",
        "PutRolePolicy",
        "CreateRepository",  # pravah-runtime, pravah-runtime-gpu, pravah-monitoring
        "CreateRepository",
        "CreateRepository",
        "CreateTopic",
        "CreateTopic",  # the events topic, its policy, and a rule and a target per event
        "SetTopicAttributes",
        *["PutRule", "PutTargets"] * 3,
        "PutObject",
    ], operations
    assert BUCKET not in [b["Name"] for b in client("s3").list_buckets()["Buckets"]], "a dry run creates nothing"

    done = run_cli(home, "cloud", "bootstrap", "--environment", "dev", "--endpoint", "prod", env=env)
    assert done.returncode == 0, done.stderr
    assert "environment dev: ready" in done.stdout
    s3 = client("s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    [rule] = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    blocked = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert blocked == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]}
    assert (
        rules["expire-capture"]["Expiration"]["Days"] == 90
        and rules["expire-capture"]["Filter"]["Prefix"] == "capture/"
    )
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    iam = client("iam")
    role = iam.get_role(RoleName="pravah-sagemaker-dev")["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/pravah-sagemaker-dev", "the environment's role_arn"
    trust = role["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    policy = iam.get_role_policy(RoleName="pravah-sagemaker-dev", PolicyName="pravah")["PolicyDocument"]
    for statement in policy["Statement"]:  # least privilege: no wildcard action, resources of this account
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(action.count(":") == 1 and not action.endswith(":*") for action in actions), statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if resources != ["*"]:
            assert all(BUCKET in r or f":{ACCOUNT}:" in r or ":763104351884:" in r for r in resources), statement
        else:  # only what has no resource: ECR's login and metrics limited to Pravah's namespace
            assert actions in (["ecr:GetAuthorizationToken"], ["cloudwatch:PutMetricData"]), statement
    repositories = client("ecr").describe_repositories()["repositories"]
    assert {r["repositoryName"] for r in repositories} == {"pravah-runtime", "pravah-runtime-gpu", "pravah-monitoring"}
    assert all(r["imageScanningConfiguration"]["scanOnPush"] for r in repositories)
    topics = [t["TopicArn"] for t in client("sns").list_topics()["Topics"]]
    assert f"arn:aws:sns:ap-south-1:{ACCOUNT}:pravah-prod-alarms" in topics
    assert f"arn:aws:sns:ap-south-1:{ACCOUNT}:pravah-events" in topics
    package = s3.get_object(Bucket=BUCKET, Key="pravah/lambda/predict.zip")
    body = package["Body"].read()
    assert package["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest() and body[:2] == b"PK"

    again = run_cli(home, "cloud", "bootstrap", "--environment", "dev", "--endpoint", "prod", "--dry-run", env=env)
    assert again.returncode == 0, again.stderr
    assert '"operation"' not in again.stdout, "a second run changes nothing: " + again.stdout
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="pravah/lambda/")["Versions"]
    assert len(versions) == 1
    said_by_rules(client)


def said_by_rules(client) -> None:
    """SageMaker's events through the rules: each rule takes its own event alone and says it in the feed's words.
    moto's EventBridge delivers to SQS, not SNS: the topic's target is pointed at a queue, the same input
    transformer kept, to read what is sent."""
    events, sqs = client("events"), client("sqs")
    queue = sqs.create_queue(QueueName="said")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for kind in SAGEMAKER_EVENTS:
        [target] = events.list_targets_by_rule(Rule=rule_name(kind))["Targets"]
        assert target["Arn"] == f"arn:aws:sns:ap-south-1:{ACCOUNT}:pravah-events"
        events.put_targets(Rule=rule_name(kind), Targets=[{**target, "Arn": queue_arn}])
    for kind, event in SAGEMAKER_EVENTS.items():
        entry = {"Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"])}
        events.put_events(Entries=[entry])
        [message] = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        said = json.loads(message["Body"])
        assert said.startswith(f"pravah: {kind}: ") and ("topics version 3" in said or EXECUTION in said), said


def test_credentials_of_another_account_are_refused_before_anything_is_created(account, monkeypatch, tmp_path):
    env, client = account
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "999999999999")
    refused = run_cli(tmp_path / "home", "cloud", "bootstrap", "--environment", "dev", "--no-lambda", env=env)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"these AWS credentials are for account 999999999999, and the environment names account {ACCOUNT}" in (
        refused.stderr
    )
    assert not client("s3").list_buckets()["Buckets"]
