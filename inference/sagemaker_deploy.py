"""`pravah deploy --target sagemaker`: an approved model package onto a SageMaker endpoint with guardrails.

The same options as a local deployment become SageMaker's own: a blue/green update policy (all at once,
canary or linear, with the wait interval), CloudWatch alarms on the endpoint's error rate and p99 latency
(created here) that roll the update back by themselves, and data capture to S3 in the format the monitoring
job reads. The endpoint keeps one variant name; SageMaker swaps the fleet behind it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from inference.endpoints import Alarms, plan
from pipelines.aws import Aws
from pipelines.errors import PravahError

VARIANT = "AllTraffic"
TERMINATION_WAIT = 300  # seconds the old fleet is kept after traffic has moved, for a fast manual rollback


@dataclass(frozen=True)
class Rollout:
    strategy: str  # all-at-once, canary, linear
    canary_percent: float
    linear_step_percent: float
    wait_seconds: float
    alarms: Alarms
    capture_percent: float = 100.0


def alarm_requests(environment_prefix: str, endpoint: str, alarms: Alarms) -> list[dict[str, Any]]:
    """PutMetricAlarm requests: the endpoint's 5xx share of invocations, and its p99 model latency."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": VARIANT}]

    def metric(name: str, statistic: str, ident: str) -> dict[str, Any]:
        return {"Id": ident, "ReturnData": False, "MetricStat": {
            "Metric": {"Namespace": "AWS/SageMaker", "MetricName": name, "Dimensions": dimensions},
            "Period": 60, "Stat": statistic}}  # fmt: skip

    errors = {
        "AlarmName": f"{environment_prefix}-{endpoint}-error-rate", "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 1, "Threshold": alarms.max_error_rate, "TreatMissingData": "notBreaching",
        "AlarmDescription": f"pravah: share of 5xx answers of {endpoint} above {alarms.max_error_rate:g}",
        "Metrics": [metric("Invocation5XXErrors", "Sum", "errors"), metric("Invocations", "Sum", "calls"),
                    {"Id": "rate", "Expression": "errors / calls", "Label": "error rate", "ReturnData": True}],
    }  # fmt: skip
    latency = {
        "AlarmName": f"{environment_prefix}-{endpoint}-p99-latency", "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 1, "Threshold": alarms.max_p99_ms * 1000, "TreatMissingData": "notBreaching",
        "AlarmDescription": f"pravah: p99 model latency of {endpoint} above {alarms.max_p99_ms:g} ms",
        "Namespace": "AWS/SageMaker", "MetricName": "ModelLatency", "Dimensions": dimensions,
        "ExtendedStatistic": "p99", "Period": 60,
    }  # fmt: skip
    return [errors, latency]


def deployment_config(rollout: Rollout, alarm_names: list[str]) -> dict[str, Any]:
    """UpdateEndpoint's DeploymentConfig for the rollout."""
    kind = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}[rollout.strategy]
    routing: dict[str, Any] = {"Type": kind, "WaitIntervalInSeconds": int(rollout.wait_seconds)}
    if rollout.strategy == "canary":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": int(rollout.canary_percent)}
    if rollout.strategy == "linear":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": int(rollout.linear_step_percent)}
    steps = len(plan(rollout.strategy, rollout.canary_percent, rollout.linear_step_percent))
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing, "TerminationWaitInSeconds": TERMINATION_WAIT,
            "MaximumExecutionTimeoutInSeconds": max(600, int(rollout.wait_seconds) * steps + 1800),
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in alarm_names]},
    }  # fmt: skip


def deploy(aws: Aws, endpoint: str, model: str, version: int, rollout: Rollout) -> dict[str, Any]:
    """Create the model and an endpoint config for the package, the alarms, then the endpoint or its update."""
    env = aws.environment
    package = _approved_package(aws, model, version)
    model_name = f"{model}-v{version}"
    if not aws.exists("sagemaker", "describe_model", ModelName=model_name):
        aws.call("sagemaker", "create_model", ModelName=model_name, ExecutionRoleArn=env.role_arn,
                 Containers=[{"ModelPackageName": package}])  # fmt: skip
    config_name = f"{endpoint}-{model_name}-{time.strftime('%Y%m%d%H%M%S')}"[:63]
    aws.call("sagemaker", "create_endpoint_config", EndpointConfigName=config_name, ProductionVariants=[
        {"VariantName": VARIANT, "ModelName": model_name, "InitialInstanceCount": 1,
         "InstanceType": env.instance_types.endpoint}],
        DataCaptureConfig={"EnableCapture": True, "InitialSamplingPercentage": int(rollout.capture_percent),
                           "DestinationS3Uri": f"s3://{env.bucket}/capture/{endpoint}",
                           "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                           "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]}})  # fmt: skip
    alarms = alarm_requests("pravah", endpoint, rollout.alarms)
    for alarm in alarms:
        aws.call("cloudwatch", "put_metric_alarm", **alarm)
    if aws.exists("sagemaker", "describe_endpoint", EndpointName=endpoint):
        config = deployment_config(rollout, [a["AlarmName"] for a in alarms])
        aws.call("sagemaker", "update_endpoint", EndpointName=endpoint, EndpointConfigName=config_name,
                 DeploymentConfig=config)  # fmt: skip
        return {"action": "update_endpoint", "endpoint_config": config_name, "deployment_config": config}
    aws.call("sagemaker", "create_endpoint", EndpointName=endpoint, EndpointConfigName=config_name)
    return {"action": "create_endpoint", "endpoint_config": config_name}


def _approved_package(aws: Aws, model: str, version: int) -> str:
    from pipelines.registry import APPROVED, RegistryError
    from pipelines.sagemaker_registry import SageMakerRegistry

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
        raise PravahError(f"{model} version {version} is {found.status}: only an approved version can be deployed")
    return registry.package_arn(model, version)
