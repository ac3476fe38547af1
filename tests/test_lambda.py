"""The predict API as the Lambda handler: API Gateway proxy events (payload 1.0 and 2.0) in-process, the
SageMaker endpoint behind it played by moto's server over real HTTP with the real boto3 client."""

from __future__ import annotations

import json

import boto3
import httpx
import pytest

from artifact.predictor import Predictor
from inference import lambda_handler
from inference.sagemaker_handlers import input_fn, output_fn, predict_fn
from tests.support import make_artifact, run_cli

VARIANT = "AllTraffic"  # as pravah deploy --target sagemaker names it; the model is text-classifier-v1
MODEL = "text-classifier-v1"
TEXT = "goal match team"


@pytest.fixture
def endpoint(moto_server, monkeypatch, tmp_path):
    """Endpoint `prod` on moto's server, answering what the serving container's real handlers answer for TEXT
    with a real model; the environment a Lambda of the template gets."""
    aws = moto_server
    environment = {
        "AWS_ENDPOINT_URL": aws,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PRAVAH_ENDPOINT": "prod",
        "PRAVAH_HOME": str(tmp_path / "home"),
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    sagemaker = boto3.client("sagemaker")
    role = "arn:aws:iam::123456789012:role/pravah"
    sagemaker.create_model(ModelName=MODEL, ExecutionRoleArn=role, PrimaryContainer={"Image": "sklearn:1.4"})
    sagemaker.create_endpoint_config(
        EndpointConfigName="prod-1",
        ProductionVariants=[
            {
                "VariantName": VARIANT,
                "ModelName": MODEL,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.c5.xlarge",
                "InitialVariantWeight": 1.0,
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="prod", EndpointConfigName="prod-1")
    predictor = Predictor(make_artifact(tmp_path / "model", "lambda"))
    body, _ = output_fn(predict_fn(input_fn(json.dumps({"inputs": [TEXT]}), "application/json"), predictor))
    canned = {"results": [{"Body": body, "ContentType": "application/json", "InvokedProductionVariant": VARIANT}]}
    httpx.post(f"{aws}/moto-api/static/sagemaker/endpoint-results", json=canned).raise_for_status()
    yield environment
    sagemaker.delete_endpoint(EndpointName="prod")
    sagemaker.delete_endpoint_config(EndpointConfigName="prod-1")
    sagemaker.delete_model(ModelName=MODEL)


@pytest.fixture
def handler(endpoint, monkeypatch):
    monkeypatch.setattr(lambda_handler, "_handler", None)
    # what the Lambda sends on the wire, seen as botocore sends it to moto (the handler builds its client from
    # the default session after this, so the client carries this observer)
    sent: list[dict] = []

    def observe(request, **_):
        sent.append({"url": request.url, "headers": dict(request.headers), "body": json.loads(request.body)})

    boto3.DEFAULT_SESSION.events.register("before-send.sagemaker-runtime.InvokeEndpoint", observe)
    lambda_handler.handler.sent = sent
    yield lambda_handler.handler
    boto3.DEFAULT_SESSION.events.unregister("before-send.sagemaker-runtime.InvokeEndpoint", observe)


def rest_event(method: str, path: str, body: dict | None = None) -> dict:
    """API Gateway REST API proxy integration, payload 1.0; the gateway checked the API key."""
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "isBase64Encoded": False,
        "headers": {"content-type": "application/json", "x-api-key": "checked-by-the-gateway"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": "r-1",
            "identity": {"apiKeyId": "key-123", "sourceIp": "203.0.113.9"},
        },
        "body": json.dumps(body) if body is not None else None,
    }


def http_event(method: str, path: str, body: dict | None = None) -> dict:
    """API Gateway HTTP API, payload 2.0; a Cognito JWT authorizer let the caller in."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "isBase64Encoded": False,
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "tests",
            },
            "authorizer": {"jwt": {"claims": {"sub": "user-42"}, "scopes": None}},
            "stage": "$default",
            "requestId": "r-2",
        },
        "body": json.dumps(body) if body is not None else None,
    }


@pytest.mark.parametrize("event", [rest_event, http_event])
def test_predict_through_api_gateway_calls_the_sagemaker_endpoint(handler, event):
    answer = handler(event("POST", "/api/v1/ml/predict", {"input": {"text": TEXT}}), None)
    assert answer["statusCode"] == 200, answer
    [request] = handler.sent
    assert request["url"].endswith("/endpoints/prod/invocations")
    assert request["body"] == {"inputs": [TEXT]}, "the endpoint gets the text in the serving container's format"
    assert request["headers"]["Content-Type"] in ("application/json", b"application/json")
    body = json.loads(answer["body"])
    assert body["result"]["prediction"] == "sports" and body["modelVersion"] == "1"
    invalid = handler(event("POST", "/api/v1/ml/predict", {"input": {"text": ""}}), None)
    assert invalid["statusCode"] == 400 and json.loads(invalid["body"])["error"]["details"][0]["field"] == "input.text"
    assert len(handler.sent) == 1, "an invalid request never reaches the endpoint"
    batch = handler(event("POST", "/api/v1/ml/batch-predict", {"inputs": [{"text": TEXT}]}), None)
    assert batch["statusCode"] == 501 and "Batch Transform" in json.loads(batch["body"])["error"]["message"]
    info = json.loads(handler(event("GET", "/api/v1/ml/model-info"), None)["body"])
    assert info["variants"] == [{"name": VARIANT, "modelVersion": "1", "weight": 1.0}]


def test_a_tables_endpoint_takes_features_checked_against_the_deployed_columns(handler, monkeypatch):
    """The input description `pravah deploy --target sagemaker` writes (PRAVAH_INPUT_SCHEMA, as the template
    sets it): the Lambda checks a row's values against the model's columns, as the local API does, and sends
    them to the endpoint as the serving container's instances."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="pravah-tables")
    columns = [{"name": "tenure", "type": "integer"}, {"name": "plan", "type": "string"}]
    s3.put_object(
        Bucket="pravah-tables",
        Key="endpoints/prod/input.json",
        Body=json.dumps({"package": "arn:p/churn/1", "columns": columns}).encode(),
    )
    monkeypatch.setenv("PRAVAH_INPUT_SCHEMA", "s3://pravah-tables/endpoints/prod/input.json")
    row = {"tenure": 12, "plan": "basic"}
    answer = handler(rest_event("POST", "/api/v1/ml/predict", {"input": {"features": row}}), None)
    assert answer["statusCode"] == 200, answer
    assert handler.sent[-1]["body"] == {"instances": [row]}
    refused = handler(rest_event("POST", "/api/v1/ml/predict", {"input": {"features": {"tenur": 12, "plan": 3}}}), None)
    fields = {d["field"]: d["message"] for d in json.loads(refused["body"])["error"]["details"]}
    assert refused["statusCode"] == 400 and "did you mean 'tenure'" in fields["input.features.tenur"], fields
    assert "input.features.plan" in fields and len(handler.sent) == 1, "a refused row never reaches the endpoint"
    text = handler(rest_event("POST", "/api/v1/ml/predict", {"input": {"text": TEXT}}), None)
    assert text["statusCode"] == 400 and "features" in text["body"]
    schemas = json.loads(handler(rest_event("GET", "/openapi.json"), None)["body"])["components"]["schemas"]
    assert set(schemas["Features"]["required"]) == {"tenure", "plan"}


def test_an_endpoint_answer_in_an_unknown_shape_is_a_500_without_internals(handler, moto_server, monkeypatch):
    aws = moto_server
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # moto keeps canned answers per region: only this one
    garbled = {"Body": "<html>oops</html>", "ContentType": "text/html", "InvokedProductionVariant": VARIANT}
    queued = {"region": "eu-west-1", "results": [garbled]}
    httpx.post(f"{aws}/moto-api/static/sagemaker/endpoint-results", json=queued).raise_for_status()
    answer = handler(rest_event("POST", "/api/v1/ml/predict", {"input": {"text": TEXT}}), None)
    error = json.loads(answer["body"])["error"]
    assert answer["statusCode"] == 500 and error["code"] == "MODEL_ERROR" and "Traceback" not in error["message"]


def test_the_deployment_package_runs_alone_in_an_empty_folder(endpoint, tmp_path):
    """As Lambda runs it: the zip unpacked into an empty folder, which is the working directory and the only
    entry on the path beside the standard library (`python -I -S`: no site-packages, no environment paths, not
    the repository); a health check, a predict answered by the endpoint, and a 400 in the design doc's shape."""
    import zipfile

    from inference.lambda_package import call_alone

    made = run_cli(tmp_path / "home", "package", "lambda", "--output", str(tmp_path / "predict.zip"))
    assert made.returncode == 0, made.stderr
    task = tmp_path / "task"
    with zipfile.ZipFile(tmp_path / "predict.zip") as archive:
        names = archive.namelist()
        archive.extractall(task)
    assert "inference/lambda_handler.py" in names and any(n.startswith("mangum/") for n in names)
    assert "aws/requests.py" in names, "every module of this repository that the handler imports"
    assert not any(n.startswith(("torch/", "sklearn/", "mlflow/", "steps/", "pipelines/")) for n in names)
    calls = [
        ("GET", "/health", None),
        ("POST", "/api/v1/ml/predict", {"input": {"text": TEXT}}),
        ("POST", "/api/v1/ml/predict", {"input": {"text": ""}}),
    ]
    env = {**endpoint, "PRAVAH_HOME": str(tmp_path / "lambda"), "PATH": "/usr/bin:/bin"}
    health, predicted, refused = call_alone(task, calls, env)
    assert health[0] == 200, health
    assert predicted[0] == 200 and predicted[1]["result"]["prediction"] == "sports", predicted
    assert refused[0] == 400, refused
    error = refused[1]["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["details"][0]["field"] == "input.text", error
    assert {"code", "message", "details", "timestamp", "requestId"} <= set(error), error
