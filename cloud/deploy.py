"""`pravah deploy --target sagemaker`: an approved model package onto a SageMaker endpoint with guardrails.

The same options as a local deployment become SageMaker's own: a blue/green update policy (all at once,
canary or linear, with the wait interval), CloudWatch alarms on the endpoint's error rate and p99 latency
(created here) that roll the update back by themselves, and data capture to S3 in the format the monitoring
job reads. The endpoint keeps one variant name; SageMaker swaps the fleet behind it. A shadow deployment
keeps the production variant's model and adds the new one as its shadow (ShadowProductionVariants): SageMaker
copies a share of the requests to it and captures its answers, never returning them."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from artifact.contract import MANIFEST
from aws.requests import Aws, s3_location
from cloud.monitoring import capture_destination
from foundation.errors import PravahError
from inference.endpoints import Alarms, versioned_name

VARIANT = "AllTraffic"
SHADOW_VARIANT = "Shadow"
TERMINATION_WAIT = 300  # seconds the old fleet is kept after traffic has moved, for a fast manual rollback


@dataclass(frozen=True)
class Rollout:
    strategy: str  # all-at-once, canary, linear, shadow
    canary_percent: float
    linear_step_percent: float
    wait_seconds: float
    alarms: Alarms
    capture_percent: float = 100.0
    sample_percent: float = 100.0  # a shadow's share of the requests


def alarm_requests(environment_prefix: str, endpoint: str, alarms: Alarms) -> list[dict[str, Any]]:
    """PutMetricAlarm requests: the endpoint's 5xx share of invocations, and its p99 model latency."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": VARIANT}]

    def metric(name: str, statistic: str, ident: str) -> dict[str, Any]:
        return {
            "Id": ident,
            "ReturnData": False,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dimensions},
                "Period": 60,
                "Stat": statistic,
            },
        }

    errors = {
        "AlarmName": f"{environment_prefix}-{endpoint}-error-rate",
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 1,
        "Threshold": alarms.max_error_rate,
        "TreatMissingData": "notBreaching",
        "AlarmDescription": f"pravah: share of 5xx answers of {endpoint} above {alarms.max_error_rate:g}",
        "Metrics": [
            metric("Invocation5XXErrors", "Sum", "errors"),
            metric("Invocations", "Sum", "calls"),
            {"Id": "rate", "Expression": "errors / calls", "Label": "error rate", "ReturnData": True},
        ],
    }
    latency = {
        "AlarmName": f"{environment_prefix}-{endpoint}-p99-latency",
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 1,
        "Threshold": alarms.max_p99_ms * 1000,
        "TreatMissingData": "notBreaching",
        "AlarmDescription": f"pravah: p99 model latency of {endpoint} above {alarms.max_p99_ms:g} ms",
        "Namespace": "AWS/SageMaker",
        "MetricName": "ModelLatency",
        "Dimensions": dimensions,
        "ExtendedStatistic": "p99",
        "Period": 60,
    }
    return [errors, latency]


def step_instances(rollout: Rollout, fleet: int) -> int | None:
    """The instances of the new fleet that each canary or linear step turns on; None for all at once. AWS
    refuses a canary above half of the fleet and linear steps outside 10-50% of it, so both need two or more
    instances; the share asked for is turned into whole instances here, and refused where AWS would refuse it."""
    if rollout.strategy == "all-at-once":
        return None
    canary = rollout.strategy == "canary"
    percent = rollout.canary_percent if canary else rollout.linear_step_percent
    if not (0 < percent <= 50 if canary else 10 <= percent <= 50):
        limits = "at most 50%" if canary else "10% to 50%"
        raise PravahError(f"a SageMaker {rollout.strategy} step must be {limits} of the new fleet, not {percent:g}%")
    if fleet < 2:
        raise PravahError(
            f"a {rollout.strategy} deployment needs a fleet of at least 2 instances (each step at most "
            f"half of it), and this endpoint's has {fleet}: use --strategy all-at-once, or set "
            "endpoint_scaling.min_instances to 2 or more in the environment"
        )
    instances = min(fleet // 2, max(1, round(fleet * percent / 100)))
    if rollout.strategy == "linear" and instances < fleet * 0.1:
        instances = max(instances, -(-fleet // 10))
    return instances


def deployment_config(rollout: Rollout, alarm_names: list[str], fleet: int) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig for the rollout onto a new fleet of `fleet` instances."""
    kind = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}[rollout.strategy]
    routing: dict[str, Any] = {"Type": kind, "WaitIntervalInSeconds": int(rollout.wait_seconds)}
    step = step_instances(rollout, fleet)
    if rollout.strategy == "canary":
        routing["CanarySize"] = {"Type": "INSTANCE_COUNT", "Value": step}
    if rollout.strategy == "linear":
        routing["LinearStepSize"] = {"Type": "INSTANCE_COUNT", "Value": step}
    steps = 1 if step is None else (2 if rollout.strategy == "canary" else -(-fleet // step))
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": TERMINATION_WAIT,
            "MaximumExecutionTimeoutInSeconds": min(28800, max(600, int(rollout.wait_seconds) * steps + 1800)),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names]},
    }


def scalable_target(endpoint: str) -> dict[str, str]:
    """The endpoint's variant as Application Auto Scaling names it."""
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint}/variant/{VARIANT}",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }


def scaling_requests(endpoint: str, scaling) -> list[tuple[str, dict[str, Any]]]:
    """Application Auto Scaling of the endpoint's variant: its bounds, and a target-tracking policy on
    invocations per instance."""
    target = scalable_target(endpoint)
    policy = {
        **target,
        "PolicyName": f"pravah-{endpoint}-invocations",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": float(scaling.invocations_per_instance),
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
            "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
        },
    }
    bounds = {**target, "MinCapacity": scaling.min_instances, "MaxCapacity": scaling.max_instances}
    return [("register_scalable_target", bounds), ("put_scaling_policy", policy)]


def deploy(aws: Aws, endpoint: str, model: str, version: int, rollout: Rollout) -> dict[str, Any]:
    """Create the model and an endpoint config for the package, the alarms, then the endpoint (and its
    autoscaling) or its blue/green update."""
    env = aws.environment
    package = approved_package(aws, model, version)
    current = aws.read("sagemaker", "describe_endpoint", EndpointName=endpoint)
    fleet = max(env.endpoint_scaling.min_instances, _instances(current))
    if rollout.strategy == "shadow":
        return _shadow(aws, endpoint, model, version, package, rollout, current, fleet)
    rescale = False
    if current is not None:  # refuse before anything is created what AWS would refuse at the update
        step_instances(rollout, fleet)
        # AWS refuses to update an autoscaled variant onto another instance type: scaling comes off first
        # and goes back once the update is done (a new model alone keeps it: AWS allows that)
        serving_type = (_production_variant(aws, current) or {}).get("InstanceType")
        rescale = serving_type not in (None, env.instance_types.endpoint)
    served_input = checked_input(aws, endpoint, package, replacing=current is not None)  # before any change
    model_name = model_of_package(aws, model, version, package)
    production = {
        "VariantName": VARIANT,
        "ModelName": model_name,
        "InitialInstanceCount": fleet,
        "InstanceType": env.instance_types.endpoint,
    }
    config_name = _endpoint_config(aws, endpoint, model_name, rollout, [production])
    alarms = alarm_requests("pravah", endpoint, rollout.alarms)
    for alarm in alarms:
        aws.call("cloudwatch", "put_metric_alarm", **alarm)
    scaling = scaling_requests(endpoint, env.endpoint_scaling)
    if current is not None:
        config = deployment_config(rollout, [a["AlarmName"] for a in alarms], fleet)
        if rescale and _scaled(aws, endpoint):  # deregistering also deletes the target's scaling policies
            aws.call("application-autoscaling", "deregister_scalable_target", **scalable_target(endpoint))
        aws.call(
            "sagemaker",
            "update_endpoint",
            EndpointName=endpoint,
            EndpointConfigName=config_name,
            DeploymentConfig=config,
        )
        if rescale:
            _register_scaling(aws, endpoint, scaling)
        write_input(aws, endpoint, served_input)
        return {
            "action": "update_endpoint",
            "endpoint_config": config_name,
            "deployment_config": config,
            "instances": fleet,
            "scaling_reregistered": rescale,
            "package": package,
        }
    aws.call("sagemaker", "create_endpoint", EndpointName=endpoint, EndpointConfigName=config_name)
    write_input(aws, endpoint, served_input)
    _register_scaling(aws, endpoint, scaling)
    return {"action": "create_endpoint", "endpoint_config": config_name, "instances": fleet, "package": package}


def _endpoint_config(
    aws: Aws,
    endpoint: str,
    model_name: str,
    rollout: Rollout,
    variants: list[dict[str, Any]],
    shadows: list[dict[str, Any]] | None = None,
) -> str:
    """A new endpoint config (its name: endpoint, model, time), capturing requests and answers to S3."""
    env = aws.environment
    unique = f"-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(2)}"  # two deploys in one second differ
    config_name = f"{endpoint}-{model_name}"[: 63 - len(unique)] + unique
    aws.call(
        "sagemaker",
        "create_endpoint_config",
        EndpointConfigName=config_name,
        ProductionVariants=variants,
        **({"ShadowProductionVariants": shadows} if shadows else {}),
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": int(rollout.capture_percent),
            "DestinationS3Uri": capture_destination(env, endpoint),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        },
    )
    return config_name


def _shadow(
    aws: Aws,
    endpoint: str,
    model: str,
    version: int,
    package: str,
    rollout: Rollout,
    current: dict[str, Any] | None,
    fleet: int,
) -> dict[str, Any]:
    """The endpoint's production model kept, with `package` as its shadow on one instance. AWS takes one
    production and one shadow variant, and the share copied to the shadow from their weights (production 1,
    the shadow the share). Promoting it is a deployment of its version; deploying production's again ends it."""
    if current is None:
        raise PravahError(f"endpoint '{endpoint}' does not exist: deploy a production version before a shadow")
    if not 0 < rollout.sample_percent <= 100:
        raise PravahError(f"a shadow's sample must be above 0% and at most 100%, not {rollout.sample_percent:g}%")
    production = _production_variant(aws, current)
    if production is None:
        raise PravahError(f"endpoint '{endpoint}' has no variant {VARIANT} to keep as production beside a shadow")
    if production["ModelName"] == versioned_name(model, version):
        raise PravahError(
            f"endpoint '{endpoint}' serves {production['ModelName']} already: a shadow is another version"
        )
    checked_input(aws, endpoint, package, replacing=True)  # the shadow reads what production's clients send
    model_name = model_of_package(aws, model, version, package)  # created once nothing is refused
    env = aws.environment
    # production's instance type is kept, so that its autoscaling stays on (AWS refuses to change it under it)
    kept = {
        "VariantName": VARIANT,
        "ModelName": production["ModelName"],
        "InitialInstanceCount": fleet,
        "InstanceType": production.get("InstanceType", env.instance_types.endpoint),
        "InitialVariantWeight": 1.0,
    }
    share = rollout.sample_percent / 100
    shadow = {
        "VariantName": SHADOW_VARIANT,
        "ModelName": model_name,
        "InitialInstanceCount": 1,
        "InstanceType": env.instance_types.endpoint,
        "InitialVariantWeight": share,
    }
    config_name = _endpoint_config(aws, endpoint, model_name, rollout, [kept], [shadow])
    aws.call("sagemaker", "update_endpoint", EndpointName=endpoint, EndpointConfigName=config_name)
    return {
        "action": "update_endpoint",
        "endpoint_config": config_name,
        "instances": fleet,
        "package": package,
        "shadow": model_name,
    }


def input_description_uri(environment, endpoint: str) -> str:
    """Where the endpoint's input description is: what its model reads, for the predict Lambda to check
    requests against (PRAVAH_INPUT_SCHEMA in the template)."""
    return f"s3://{environment.bucket}/endpoints/{endpoint}/input.json"


def checked_input(aws: Aws, endpoint: str, package: str, replacing: bool) -> dict[str, Any] | None:
    """What `package`'s model reads ({"package", "columns"}: a table's columns and types, or None for text,
    from the model.json in its model.tar.gz); a model of the other kind than the endpoint's (`replacing`) is
    refused: its clients send the kind of input it served. None in a dry run that cannot read the package."""
    from artifact.contract import input_columns

    manifest = _manifest_of(aws, package)
    if manifest is None:
        aws.say(f"(dry run: cannot read {package}'s model.json; its input description is not shown)")
        return None
    columns = input_columns(manifest)
    bucket, key = s3_location(input_description_uri(aws.environment, endpoint))
    served = aws.read("s3", "get_object", Bucket=bucket, Key=key) if replacing else None
    if served is not None and (json.loads(served["Body"].read()).get("columns") is None) != (columns is None):
        kinds = ("table rows", "text") if columns is None else ("text", "table rows")
        raise PravahError(
            f"endpoint '{endpoint}' serves a model of {kinds[0]} and {package} reads {kinds[1]}: "
            "its clients' requests would all be refused; deploy it to another endpoint"
        )
    return {"package": package, "columns": columns}


def write_input(aws: Aws, endpoint: str, description: dict[str, Any] | None) -> None:
    if description is not None:
        aws.put_json(input_description_uri(aws.environment, endpoint), description)


def _manifest_of(aws: Aws, package: str) -> dict[str, Any] | None:
    """The model.json in a package's model.tar.gz, read as the archive streams (the weights are not kept)."""
    import tarfile

    described = aws.read("sagemaker", "describe_model_package", ModelPackageName=package)
    if described is None:
        if aws.dry_run:
            return None
        raise PravahError(f"no model package {package}")
    archive_uri = described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    bucket, key = s3_location(archive_uri)
    found = aws.read("s3", "get_object", Bucket=bucket, Key=key)  # AWS's refusals as a PravahError
    if found is None:
        raise PravahError(f"{package}: its model archive {archive_uri} is not in S3")
    with tarfile.open(fileobj=found["Body"], mode="r|gz") as archive:
        for member in archive:
            if member.isfile() and member.name.removeprefix("./") == MANIFEST:
                return json.loads(archive.extractfile(member).read())
    raise PravahError(f"{package}: its model archive has no {MANIFEST}")


def _register_scaling(aws: Aws, endpoint: str, scaling: list[tuple[str, dict[str, Any]]]) -> None:
    """Application Auto Scaling takes an endpoint's variant only once the endpoint is in service."""
    if not aws.dry_run:
        aws.say(f"waiting for {endpoint} to be in service, then registering its autoscaling")
        aws.client("sagemaker").get_waiter("endpoint_in_service").wait(EndpointName=endpoint)
    for operation, request in scaling:
        aws.call("application-autoscaling", operation, **request)


def _scaled(aws: Aws, endpoint: str) -> bool:
    target = scalable_target(endpoint)
    found = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=target["ServiceNamespace"], ResourceIds=[target["ResourceId"]]
    )
    return bool(found.get("ScalableTargets"))


def _production_variant(aws: Aws, described: dict[str, Any]) -> dict[str, Any] | None:
    """The endpoint's production variant as its current endpoint config declares it (model, instance type)."""
    config = aws.read("sagemaker", "describe_endpoint_config", EndpointConfigName=described["EndpointConfigName"])
    return next((v for v in (config or {}).get("ProductionVariants", []) if v["VariantName"] == VARIANT), None)


def _instances(described: dict[str, Any] | None) -> int:
    """The endpoint's variant's instances now (autoscaling may have added some): the new fleet keeps them."""
    for variant in (described or {}).get("ProductionVariants", []):
        if variant.get("VariantName") == VARIANT:
            return int(variant.get("CurrentInstanceCount") or variant.get("DesiredInstanceCount") or 0)
    return 0


def model_of_package(aws: Aws, model: str, version: int, package: str) -> str:
    """The SageMaker model MODEL-vVERSION serving `package` (created the first time): an endpoint's or a
    Batch Transform job's."""
    model_name = versioned_name(model, version)
    if not aws.exists("sagemaker", "describe_model", ModelName=model_name):
        aws.call(
            "sagemaker",
            "create_model",
            ModelName=model_name,
            ExecutionRoleArn=aws.environment.role_arn,
            Containers=[{"ModelPackageName": package}],
        )
    return model_name


def approved_package(aws: Aws, model: str, version: int, use: str = "deployed") -> str:
    """The package ARN of `model` version `version`, refused unless it is Approved: AWS deploys (to an endpoint
    or a Batch Transform job) only an Approved versioned model package. In a dry run, the ARN it would have
    when the registry cannot be read."""
    from registry.sagemaker_backend import SageMakerRegistry
    from registry.versions import APPROVED, RegistryError

    registry = SageMakerRegistry(aws.client("sagemaker"))
    try:
        found = registry.get(model, version)
    except RegistryError as exc:
        if aws.dry_run:
            aws.say(f"(dry run: cannot look up {model} version {version}: {exc}; showing the requests anyway)")
            return (
                f"arn:aws:sagemaker:{aws.environment.region}:{aws.environment.account}:model-package/{model}/{version}"
            )
        raise
    if found.status != APPROVED:
        raise PravahError(
            f"{model} version {version} is {found.status}: only an Approved version can be {use} (SageMaker "
            f"refuses a model package that is not Approved); approve it first: pravah models --target sagemaker "
            f"approve {model} {version} --reason ..."
        )
    return registry.package_arn(model, version)
