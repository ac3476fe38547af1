"""`pravah deploy --target sagemaker`: the model, endpoint config with data capture, the alarms and the endpoint
against moto's server over real HTTP; the blue/green update, which moto does not implement, through the same
boto3 client with that one operation answered in-process after botocore validated the request against the
SageMaker service model (what botocore's Stubber does, for one operation)."""

from __future__ import annotations

import io
import json
import os
import tarfile

import boto3
import pytest

from aws.environments import load_environment
from aws.requests import Aws
from cloud.deploy import Rollout, deploy
from foundation.errors import PravahError
from foundation.fingerprint import hash_tree
from inference.endpoints import Alarms
from registry.sagemaker_backend import SageMakerRegistry
from registry.versions import APPROVED, PENDING, change_status
from tests.support import REPO, ensure_bucket, make_artifact, register_in_sagemaker, run_cli

IMAGE = "720646828776.dkr.ecr.ap-south-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@pytest.fixture(scope="module")
def aws(tmp_path_factory, moto_server):
    monkeypatch = pytest.MonkeyPatch()
    tmp_path = tmp_path_factory.mktemp("deploy")
    # dev's own scaling is 1 to 5 instances; a blue/green canary or linear update needs two or more
    dev = load_environment("dev", REPO)
    environment = dev.model_copy(
        update={"endpoint_scaling": dev.endpoint_scaling.model_copy(update={"min_instances": 2})}
    )
    for key, value in {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    client = Aws(environment, say=lambda _: None)
    s3 = client.client("s3")
    ensure_bucket(s3, environment.bucket, environment.region)
    # three versions: the first and the third approved, the second not (and never, in any test: each passes alone
    # and in any order)
    registry = register_in_sagemaker(client, "topics", make_artifact(tmp_path / "model", "deploy"), 3, IMAGE)
    for version in (1, 3):
        change_status(registry, "topics", version, APPROVED, "tests")
    client.client("sagemaker").meta.events.register("before-call.sagemaker.UpdateEndpoint", _answer_update)
    yield client
    monkeypatch.undo()


UPDATES: list[dict] = []  # UpdateEndpoint requests as they would go on the wire


def _answer_update(model, params, **_):
    """moto lacks UpdateEndpoint: it is answered here, after botocore validated the request against the
    SageMaker service model (what botocore's Stubber does, for one operation)."""
    from botocore.awsrequest import AWSResponse

    UPDATES.append(json.loads(params["body"]))
    return AWSResponse("http://sagemaker", 200, {}, None), {"EndpointArn": "arn:aws:sagemaker:x:1:endpoint/e"}


def updates_of(endpoint: str) -> list[dict]:
    return [request for request in UPDATES if request["EndpointName"] == endpoint]


ROLLOUT = Rollout("canary", 10, 25, 300, Alarms(max_error_rate=0.05, max_p99_ms=800, min_requests=20), 50)


def test_first_deployment_creates_model_config_with_capture_alarms_and_endpoint(aws):
    done = deploy(aws, "prod", "topics", 1, ROLLOUT)
    assert done["action"] == "create_endpoint"
    sagemaker, cloudwatch = aws.client("sagemaker"), aws.client("cloudwatch")
    config = sagemaker.describe_endpoint_config(EndpointConfigName=done["endpoint_config"])
    capture = config["DataCaptureConfig"]
    assert capture["EnableCapture"] and capture["InitialSamplingPercentage"] == 50
    assert capture["DestinationS3Uri"] == f"s3://{aws.environment.bucket}/capture/prod"
    assert config["ProductionVariants"][0]["ModelName"] == "topics-v1"
    assert sagemaker.describe_endpoint(EndpointName="prod")["EndpointConfigName"] == done["endpoint_config"]
    names = ["pravah-prod-error-rate", "pravah-prod-p99-latency"]  # by name: another test deploys prod-b
    alarms = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]}
    assert set(alarms) == {"pravah-prod-error-rate", "pravah-prod-p99-latency"}
    assert alarms["pravah-prod-p99-latency"]["Threshold"] == 800_000  # ModelLatency is in microseconds
    assert alarms["pravah-prod-error-rate"]["Threshold"] == 0.05
    with pytest.raises(PravahError, match="only an Approved version can be deployed"):
        deploy(aws, "prod", "topics", 2, ROLLOUT)
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2 == done["instances"]
    scaling = aws.client("application-autoscaling")
    [target] = scaling.describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=["endpoint/prod/variant/AllTraffic"]
    )["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 5)
    [policy] = scaling.describe_scaling_policies(
        ServiceNamespace="sagemaker", ResourceId="endpoint/prod/variant/AllTraffic"
    )["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 1000.0  # the design doc: 1,000 invocations per instance
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"


def test_a_second_deployment_is_a_blue_green_update_that_names_its_alarms_for_automatic_rollback(aws):
    deploy(aws, "prod-b", "topics", 1, ROLLOUT)
    linear = Rollout("linear", 10, 25, 120, Alarms(0.02, 500, 20))
    done = deploy(aws, "prod-b", "topics", 1, linear)
    [request] = updates_of("prod-b")
    assert done["action"] == "update_endpoint"
    config = request["DeploymentConfig"]
    routing = config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    # 25% of a fleet of two is half an instance: one instance a step, which is 50% (AWS allows 10% to 50%)
    assert routing == {
        "Type": "LINEAR",
        "WaitIntervalInSeconds": 120,
        "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1},
    }
    assert config["BlueGreenUpdatePolicy"]["MaximumExecutionTimeoutInSeconds"] >= 2 * 120
    assert {a["AlarmName"] for a in config["AutoRollbackConfiguration"]["Alarms"]} == {
        "pravah-prod-b-error-rate",
        "pravah-prod-b-p99-latency",
    }
    with pytest.raises(Exception, match="Parameter validation failed"):  # the service model still guards the shape
        aws.client("sagemaker").update_endpoint(
            EndpointName="prod", EndpointConfigName="x", DeploymentConfig={"BlueGreenUpdatePolicy": {"Typo": 1}}
        )


def test_dry_run_prints_every_request_and_creates_nothing(aws):
    def dry_run_operations() -> list[str]:
        printed: list[str] = []
        deploy(Aws(aws.environment, dry_run=True, say=printed.append), "staging-endpoint", "topics", 1, ROLLOUT)
        return [line.split('"operation": "')[1].split('"')[0] for line in printed if '"operation"' in line]

    sagemaker = aws.client("sagemaker")
    if "topics-v1" in {m["ModelName"] for m in sagemaker.list_models()["Models"]}:
        sagemaker.delete_model(ModelName="topics-v1")  # whatever ran before: from no model, then with one
    assert dry_run_operations() == [
        "CreateModel",
        "CreateEndpointConfig",
        "PutMetricAlarm",
        "PutMetricAlarm",
        "CreateEndpoint",
        "PutObject",
        "RegisterScalableTarget",
        "PutScalingPolicy",
    ]
    deploy(aws, "dry-run-base", "topics", 1, ROLLOUT)  # makes topics-v1
    # a dry run still reads: topics-v1 exists now, so it is not created again
    assert dry_run_operations() == [
        "CreateEndpointConfig",
        "PutMetricAlarm",
        "PutMetricAlarm",
        "CreateEndpoint",
        "PutObject",
        "RegisterScalableTarget",
        "PutScalingPolicy",
    ]
    endpoints = boto3.client("sagemaker", region_name=aws.environment.region).list_endpoints()["Endpoints"]
    assert "staging-endpoint" not in {e["EndpointName"] for e in endpoints}


@pytest.mark.parametrize(
    ("strategy", "routing"),
    [
        (
            "canary",
            {"Type": "CANARY", "WaitIntervalInSeconds": 300, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
        ),
        ("all-at-once", {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300}),
    ],
)
def test_canary_and_all_at_once_updates_route_traffic_as_asked(aws, strategy, routing):
    endpoint = f"routing-{strategy}"
    deploy(aws, endpoint, "topics", 1, ROLLOUT)
    done = deploy(aws, endpoint, "topics", 1, Rollout(strategy, 10, 25, 300, ROLLOUT.alarms))
    assert done["action"] == "update_endpoint"
    [request] = updates_of(endpoint)
    assert request["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == routing
    assert {a["AlarmName"] for a in request["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]} == {
        f"pravah-{endpoint}-error-rate",
        f"pravah-{endpoint}-p99-latency",
    }


def test_deploy_target_sagemaker_dry_run_through_the_cli(aws, tmp_path):
    env = {
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    args = ("deploy", "cli-endpoint", "--model", "topics", "--version", "1", "--target", "sagemaker", "--dry-run")
    shown = run_cli(tmp_path / "home", *args, "--strategy", "canary", "--canary-percent", "20", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "create_endpoint cli-endpoint with cli-endpoint-topics-v1-" in shown.stdout
    assert "(dry run: no change sent; reads ran)" in shown.stdout and '"operation": "CreateEndpoint"' in shown.stdout
    endpoints = aws.client("sagemaker").list_endpoints()["Endpoints"]
    assert "cli-endpoint" not in {e["EndpointName"] for e in endpoints}
    refused = run_cli(tmp_path / "home", *args[:5], "2", *args[6:], env=env)
    assert refused.returncode == 2 and "only an Approved version can be deployed" in refused.stderr


def test_what_aws_refuses_of_a_blue_green_update_is_refused_before_anything_changes(aws):
    one_instance = Aws(load_environment("dev", REPO), say=lambda _: None)  # dev: 1 to 5 instances
    deploy(one_instance, "small", "topics", 1, Rollout("all-at-once", 10, 25, 60, ROLLOUT.alarms))
    configs = {c["EndpointConfigName"] for c in aws.client("sagemaker").list_endpoint_configs()["EndpointConfigs"]}
    with pytest.raises(PravahError, match="a canary deployment needs a fleet of at least 2 instances"):
        deploy(one_instance, "small", "topics", 1, ROLLOUT)
    with pytest.raises(PravahError, match="a SageMaker canary step must be at most 50% of the new fleet, not 60%"):
        deploy(aws, "small", "topics", 1, Rollout("canary", 60, 25, 60, ROLLOUT.alarms))
    with pytest.raises(PravahError, match="linear step must be 10% to 50% of the new fleet, not 5%"):
        deploy(aws, "small", "topics", 1, Rollout("linear", 10, 5, 60, ROLLOUT.alarms))
    after = {c["EndpointConfigName"] for c in aws.client("sagemaker").list_endpoint_configs()["EndpointConfigs"]}
    assert after == configs, "nothing was created for a refused deployment"
    assert not updates_of("small")


def test_a_new_instance_type_takes_autoscaling_off_for_the_update_and_back_after(aws):
    deploy(aws, "resized", "topics", 1, ROLLOUT)
    bigger = aws.environment.model_copy(
        update={"instance_types": aws.environment.instance_types.model_copy(update={"endpoint": "ml.c5.2xlarge"})}
    )
    said: list[str] = []
    resized = Aws(bigger, say=said.append)
    resized._clients = aws._clients  # the same clients, so the UpdateEndpoint answer above serves this one too
    done = deploy(resized, "resized", "topics", 1, Rollout("all-at-once", 10, 25, 60, ROLLOUT.alarms))
    assert done["scaling_reregistered"] and updates_of("resized")
    assert any("registering its autoscaling" in line for line in said)
    targets = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="sagemaker", ResourceIds=["endpoint/resized/variant/AllTraffic"]
    )["ScalableTargets"]
    assert len(targets) == 1


def test_a_batch_transform_job_scores_s3_with_the_versions_package(aws, tmp_path):
    """`pravah predict --target sagemaker`: the model of the version's package and a CreateTransformJob with the
    design doc's settings, validated against the service model and recorded by moto; a dry run sends neither;
    what AWS or the handlers would refuse is refused first."""
    from cloud.transform import transform, transform_request

    bucket = aws.environment.bucket
    jobs = aws.client("sagemaker").list_transform_jobs()["TransformJobSummaries"]
    with pytest.raises(
        PravahError,
        match="topics version 2 is PendingManualApproval: only an Approved version can be batch-transformed",
    ):
        transform(aws, "topics", 2, f"s3://{bucket}/batch/in", f"s3://{bucket}/batch/out")
    assert aws.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == jobs, "nothing was started"
    models = {m["ModelName"] for m in aws.client("sagemaker").list_models()["Models"]}
    assert "topics-v2" not in models, "no model is created from a package that is not Approved"
    request = transform(aws, "topics", 1, f"s3://{bucket}/batch/in", f"s3://{bucket}/batch/out")
    described = aws.client("sagemaker").describe_transform_job(TransformJobName=request["TransformJobName"])
    assert described["ModelName"] == "topics-v1" and described["TransformResources"]["InstanceType"] == "ml.m5.xlarge"
    assert request["MaxConcurrentTransforms"] == 10 and request["TransformInput"]["SplitType"] == "Line"
    assert request["TransformOutput"] == {
        "S3OutputPath": f"s3://{bucket}/batch/out",
        "Accept": "application/jsonlines",
        "AssembleWith": "Line",
    }
    with pytest.raises(PravahError, match="cannot be split by line"):
        transform_request(aws, "j", "m", f"s3://{bucket}/in", f"s3://{bucket}/out", "text/csv")
    with pytest.raises(PravahError, match="S3Uri"):  # botocore's pattern for an S3 URI, before anything is sent
        transform(aws, "topics", 1, "/local/file.jsonl", f"s3://{bucket}/out")

    env = {
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    before = aws.client("sagemaker").list_transform_jobs()["TransformJobSummaries"]
    shown = run_cli(
        tmp_path / "home",
        "predict",
        "--target",
        "sagemaker",
        "--model",
        "topics",
        "--version",
        "1",
        "--input",
        f"s3://{bucket}/batch/in",
        "--output",
        f"s3://{bucket}/batch/out",
        "--dry-run",
        env=env,
    )
    assert shown.returncode == 0 and '"operation": "CreateTransformJob"' in shown.stdout, shown.stdout + shown.stderr
    assert aws.client("sagemaker").list_transform_jobs()["TransformJobSummaries"] == before


def test_a_transform_job_is_followed_to_its_end_and_a_failure_says_sagemakers_reason(aws, monkeypatch):
    """`--wait`: the job's end, or its FailureReason (moto's server runs in this process: its job is failed here,
    as SageMaker fails one whose container exits); AWS's payload rule is checked on the request itself."""
    from cloud import transform as batch
    from tests.support import moto_sagemaker_backends

    bucket = aws.environment.bucket
    request = batch.transform(aws, "topics", 1, f"s3://{bucket}/batch/in", f"s3://{bucket}/batch/out")
    assert request["MaxConcurrentTransforms"] * request["MaxPayloadInMB"] <= 100, "AWS's 100 MB rule"
    name = request["TransformJobName"]
    assert batch.wait(aws, name)["TransformJobStatus"] == "Completed"
    [job] = [backend.transform_jobs[name] for backend in moto_sagemaker_backends() if name in backend.transform_jobs]
    job.transform_job_status, job.failure_reason = "Failed", "AlgorithmError: the serving container exited (1)"
    with pytest.raises(PravahError, match=r"failed: AlgorithmError: the serving container exited \(1\)"):
        batch.wait(aws, name)
    monkeypatch.setattr(batch, "MAX_PAYLOAD_MB", 11)  # 10 concurrent requests of 11 MB: 110 MB
    with pytest.raises(PravahError, match="may not exceed 100 MB"):
        batch.transform_request(aws, "j", "m", f"s3://{bucket}/in", f"s3://{bucket}/out", "application/jsonlines")


def register_table_model(aws, name: str, folder) -> None:
    """A small real sklearn-tabular artifact (its model.json names its columns), registered and approved."""
    import pandas as pd

    from artifact.contract import column_types, seal
    from training import sklearn_tabular

    frame = pd.DataFrame({"tenure": [1, 2, 3, 30, 40, 50] * 3, "plan": ["basic", "pro", "basic"] * 6})
    model = sklearn_tabular.fit(frame, ["yes", "yes", "yes", "no", "no", "no"] * 3, {"max_iter": 5})
    folder.mkdir(parents=True)
    sklearn_tabular.save(model, folder)
    seal(
        folder,
        {
            "family": "sklearn-tabular",
            "loader": sklearn_tabular.__name__,
            "task": "classification",
            "features": list(frame.columns),
            "input_schema": column_types(frame),
        },
        sklearn_tabular.classes(model),
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    bucket = aws.environment.bucket
    aws.client("s3").put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz", Body=buffer.getvalue())
    registry, tree = SageMakerRegistry(aws.client("sagemaker")), hash_tree(folder)
    registry.register(
        name=name,
        artifact=f"s3://{bucket}/models/{name}/model.tar.gz",
        digest=tree.digest,
        files=tree.files,
        metrics={},
        lineage={},
        status=PENDING,
        image_uri=IMAGE,
    )
    change_status(registry, name, 1, APPROVED, "tests")


def test_the_endpoints_input_is_described_for_the_lambda_and_its_kind_kept(aws, tmp_path):
    """Each deploy writes what the endpoint's model reads (a table's columns and types, or text) where the
    predict Lambda reads it; a model of the other kind is refused before anything changes."""
    from cloud.deploy import input_description_uri

    def described(endpoint: str) -> dict:
        bucket, _, key = input_description_uri(aws.environment, endpoint).removeprefix("s3://").partition("/")
        return json.loads(aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

    all_at_once = Rollout("all-at-once", 10, 25, 60, ROLLOUT.alarms)
    register_table_model(aws, "churn", tmp_path / "churn")
    deploy(aws, "tables", "churn", 1, all_at_once)
    assert described("tables")["columns"] == [{"name": "tenure", "type": "integer"}, {"name": "plan", "type": "string"}]
    deploy(aws, "texts", "topics", 1, all_at_once)
    assert described("texts") == {"package": described("texts")["package"], "columns": None}
    configs = len(aws.client("sagemaker").list_endpoint_configs(MaxResults=100)["EndpointConfigs"])
    with pytest.raises(PravahError, match=r"serves a model of text and .* reads table rows"):
        deploy(aws, "texts", "churn", 1, all_at_once)
    assert len(aws.client("sagemaker").list_endpoint_configs(MaxResults=100)["EndpointConfigs"]) == configs
    assert described("texts")["columns"] is None


def test_a_shadow_keeps_production_and_copies_a_share_to_the_new_version(aws):
    """ShadowProductionVariants: production's model and instance type kept, the new version beside it on one
    instance with the share copied as its weight against production's 1; validated by botocore's service model
    on the way to moto (which keeps no shadows: the request is read as sent)."""
    sent: list[dict] = []

    def keep(params, **_):
        sent.append(json.loads(params["body"]))

    sagemaker = aws.client("sagemaker")
    sagemaker.meta.events.register("before-call.sagemaker.CreateEndpointConfig", keep)
    try:
        with pytest.raises(PravahError, match="does not exist: deploy a production version before a shadow"):
            deploy(aws, "shadowed", "topics", 1, Rollout("shadow", 10, 25, 60, ROLLOUT.alarms))
        deploy(aws, "shadowed", "topics", 1, ROLLOUT)
        with pytest.raises(PravahError, match="serves topics-v1 already: a shadow is another version"):
            deploy(aws, "shadowed", "topics", 1, Rollout("shadow", 10, 25, 60, ROLLOUT.alarms))
        done = deploy(aws, "shadowed", "topics", 3, Rollout("shadow", 10, 25, 60, ROLLOUT.alarms, 50, 25))
    finally:
        sagemaker.meta.events.unregister("before-call.sagemaker.CreateEndpointConfig", keep)
    assert done["shadow"] == "topics-v3"
    request = sent[-1]
    assert [(v["VariantName"], v["ModelName"], v["InitialVariantWeight"]) for v in request["ProductionVariants"]] == [
        ("AllTraffic", "topics-v1", 1.0)
    ]
    [shadow] = request["ShadowProductionVariants"]
    assert (shadow["VariantName"], shadow["ModelName"], shadow["InitialVariantWeight"]) == ("Shadow", "topics-v3", 0.25)
    assert shadow["InitialInstanceCount"] == 1 and request["DataCaptureConfig"]["EnableCapture"]
    [update] = updates_of("shadowed")[-1:]
    assert update["EndpointConfigName"] == done["endpoint_config"] and "DeploymentConfig" not in update
    with pytest.raises(Exception, match="Parameter validation failed"):  # the service model guards the shape
        sagemaker.create_endpoint_config(
            EndpointConfigName="x",
            ProductionVariants=request["ProductionVariants"],
            ShadowProductionVariants=[{**shadow, "InitialVariantWeight": -1}],
        )
