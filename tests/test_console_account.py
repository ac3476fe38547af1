"""`pravah ui --target sagemaker`: the console's view of an environment's account, read from moto's server over
real HTTP through the project's validated requests: a pipeline upserted and started by the project's own code,
a model package registered and deployed by it, all shown on the console's /sagemaker pages."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from aws.environments import load_environment
from aws.requests import Aws
from cloud.deploy import Rollout, deploy
from console.account import AccountView
from console.app import create_console
from foundation.home import Home
from inference.endpoints import Alarms
from pipelines.sagemaker.compiler import compile_pipeline
from pipelines.sagemaker.pipeline import start, upsert
from pipelines.specfile import load_pipeline
from registry.versions import APPROVED, change_status
from tests.support import REPO, ensure_bucket, make_artifact, register_in_sagemaker

pytestmark = pytest.mark.slow
IMAGE = "720646828776.dkr.ecr.ap-south-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@pytest.fixture
def account(empty_account, monkeypatch):
    for key, value in {
        "AWS_ENDPOINT_URL": empty_account,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    aws = Aws(load_environment("dev", REPO), say=lambda _: None)
    ensure_bucket(aws.client("s3"), aws.environment.bucket, aws.environment.region)
    return aws


def test_the_console_shows_the_accounts_executions_with_their_graph_packages_and_endpoints(account, tmp_path):
    pipeline = load_pipeline(REPO / "configs" / "pipelines" / "text-classifier.yaml")
    upsert(account, pipeline, compile_pipeline(pipeline, account.environment))
    arn = start(account, pipeline, {})
    registry = register_in_sagemaker(account, "topics", make_artifact(tmp_path / "model", "account"), 1, IMAGE)
    change_status(registry, "topics", 1, APPROVED, "tests")
    deploy(account, "prod", "topics", 1, Rollout("all-at-once", 10, 25, 0, Alarms(0.05, 800, 20)))
    console = TestClient(create_console(Home(tmp_path / "home"), account=AccountView(account)))

    listed = console.get("/sagemaker")
    assert listed.status_code == 200 and arn.rsplit("/", 1)[-1] in listed.text and "text-classifier" in listed.text
    assert 'href="/sagemaker"' in console.get("/").text, "the local pages link to the account's"

    # moto does not answer ListPipelineExecutionSteps: the graph still comes from the execution's definition
    shown = console.get("/sagemaker/execution", params={"arn": arn})
    assert shown.status_code == 200, shown.text
    for step in ("ingest", "validate", "train", "evaluate", "gate"):
        assert f'data-step="{step}"' in shown.text
    assert 'id="steps-unanswered"' in shown.text
    assert "train → evaluate" in shown.text or "train \u2192 evaluate" in shown.text

    # the same page when the account answers it (the request validated by botocore, as its Stubber does)
    def answer_steps(model, params, **_):
        from botocore.awsrequest import AWSResponse

        assert json.loads(params["body"])["PipelineExecutionArn"] == arn
        rows = [
            {"StepName": "ingest", "StepStatus": "Succeeded", "StartTime": 1, "EndTime": 2},
            {"StepName": "train", "StepStatus": "Executing", "StartTime": 3},
        ]
        return AWSResponse("http://sagemaker", 200, {}, None), {"PipelineExecutionSteps": rows}

    event = "before-call.sagemaker.ListPipelineExecutionSteps"
    account.client("sagemaker").meta.events.register(event, answer_steps)
    try:
        shown = console.get("/sagemaker/execution", params={"arn": arn}).text
    finally:
        account.client("sagemaker").meta.events.unregister(event, answer_steps)
    assert 'class="step state-succeeded" data-step="ingest"' in shown
    assert 'class="step state-running" data-step="train"' in shown
    assert 'class="step state-pending" data-step="gate"' in shown and 'id="steps-unanswered"' not in shown

    refused = console.get("/sagemaker/execution", params={"arn": "../../etc/passwd"})
    assert refused.status_code == 400 and "PipelineExecutionArn" in refused.text and "Traceback" not in refused.text

    packages = console.get("/sagemaker/models").text
    assert 'data-version="topics/1"' in packages and "Approved" in packages
    endpoints = console.get("/sagemaker/endpoints").text
    assert 'data-endpoint="prod"' in endpoints and "AllTraffic" in endpoints


def test_without_an_account_there_is_no_sagemaker_page(tmp_path):
    console = TestClient(create_console(Home(tmp_path / "home")))
    assert console.get("/sagemaker").status_code == 404
    assert 'href="/sagemaker"' not in console.get("/").text
