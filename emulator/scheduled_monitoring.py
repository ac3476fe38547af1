"""The emulator's last part: the endpoint's monitoring pipeline on its traffic, as AWS now advises in place of
Model Monitor (Data Capture kept, the drift job as a scheduled processing job, SNS alerts, CloudWatch metrics).

The exchange the emulator asked the served package for is captured as the endpoint's DataCaptureConfig would
capture it, again and again (one text repeated: traffic unlike the training data, which must raise an alert);
then `pravah schedule deploy`'s own code writes the package's baseline, the endpoint's alert topic, its
monitoring pipeline and the EventBridge rule; an operator's SQS queue subscribes to the topic; the rule's
target is started as EventBridge starts it, and the monitoring pipeline's execution is run from its definition
like any other (emulator.engine), on the monitoring image as its Dockerfile builds it. What the job put into
CloudWatch and published to SNS is read back from moto.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws.requests import Aws, s3_location
from emulator.endpoint import ENDPOINT, VARIANT

CAPTURED_COPIES = 60  # captured exchanges: enough records for the job to judge the window (min_records)


def monitor_exchange(
    aws: Aws, url: str, package_arn: str, request: Any, response: Any, folder: Path, say: Callable[[str], None]
) -> dict[str, Any] | None:
    """Capture the endpoint's traffic, deploy its monitoring as `pravah schedule deploy` does, fire the rule
    once; the job's metrics.json with what it published (None for a package that has no monitoring
    baseline: a table's model)."""
    from cloud.monitoring import alert_topic_arn, deploy_monitoring_pipeline, upload_baseline
    from cloud.schedules import ensure_events_role, monitoring_window, schedule_requests
    from emulator.engine import ExecutionFailed
    from monitoring.config import MonitoringConfig
    from monitoring.scheduled import NAMESPACE
    from monitoring.schedules import Schedule

    environment = aws.environment
    capture(aws, request, response)
    baseline = upload_baseline(aws, ENDPOINT, package_arn, MonitoringConfig().constraints())
    if baseline is None:
        say(f"  (no monitoring: {package_arn} has no text reference profile to compare its traffic with)")
        return None
    say(f"▸ monitoring {ENDPOINT}: baseline of {'/'.join(package_arn.rsplit('/', 2)[-2:])} at {baseline}")
    schedule = Schedule(name="emulated-monitor", kind="monitor", target=ENDPOINT, every_seconds=3600)
    deploy_monitoring_pipeline(aws, ENDPOINT, monitoring_window(schedule))
    ensure_events_role(aws)
    for service, operation, params in schedule_requests(environment, schedule):
        aws.call(service, operation, **params)
    queue = subscribe_queue(aws, alert_topic_arn(environment, ENDPOINT))
    [target] = aws.client("events").list_targets_by_rule(Rule=f"pravah-{schedule.name}")["Targets"]
    pipeline = target["Arn"].rsplit("/", 1)[-1]
    say(f"  the rule's target is pipeline {pipeline}")
    reports, metrics = run_monitoring_pipeline(aws, url, pipeline, folder, say)
    say(
        f"  ✓ the monitoring job read {metrics['records']} captured predictions ({metrics['corrupt_lines']} "
        f"corrupt lines, {metrics['violations']} violations): {reports}"
    )
    names = aws.client("cloudwatch").list_metrics(Namespace=NAMESPACE)["Metrics"]
    metrics["cloudwatch"] = sorted({m["MetricName"] for m in names})
    say(f"  ✓ CloudWatch {NAMESPACE}: {', '.join(metrics['cloudwatch']) or 'nothing'}")
    metrics["alerts"] = received(aws, queue)
    for alert in metrics["alerts"]:
        say(f"  ✓ SNS alert: {alert['Subject']}: {alert['Message'].splitlines()[0]}")
    if metrics["violations"] and not metrics["alerts"]:
        raise ExecutionFailed(f"{metrics['violations']} violations, and no alert reached the topic's subscriber")
    return metrics


def run_monitoring_pipeline(
    aws: Aws, url: str, pipeline: str, folder: Path, say: Callable[[str], None]
) -> tuple[str, dict[str, Any]]:
    """An execution of an endpoint's monitoring pipeline, started as its rule starts it and run from its
    definition on the monitoring image as its Dockerfile builds it; its reports' S3 folder and metrics.json."""
    from cloud.monitoring import monitoring_prefix
    from emulator.engine import Emulation, Execution
    from emulator.images import declared_image

    environment = aws.environment
    started = aws.call(
        "sagemaker", "start_pipeline_execution", PipelineName=pipeline, ClientRequestToken=secrets.token_hex(16)
    )["PipelineExecutionArn"]
    say(f"  started {started}")
    described = aws.call("sagemaker", "describe_pipeline", PipelineName=pipeline)
    image = declared_image(environment.monitoring_image_uri, say)
    definition = json.loads(described["PipelineDefinition"])
    images = {environment.monitoring_image_uri: image}
    execution = Execution(definition, {}, Emulation(started, folder=folder), aws, url, images, folder, say)
    execution.run()
    endpoint = pipeline.removeprefix("pravah-monitor-")
    reports = f"{monitoring_prefix(environment, endpoint)}/reports/{execution.execution_id}"
    bucket, prefix = s3_location(reports)
    body = aws.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/metrics.json")["Body"].read()
    return reports, json.loads(body)


def capture(aws: Aws, request: Any, response: Any) -> None:
    """The exchange, CAPTURED_COPIES times, in one captured file of this hour, as Data Capture writes it."""
    from cloud.monitoring import capture_destination
    from inference.capture import capture_line

    now = datetime.now(UTC)
    folder = f"{capture_destination(aws.environment, ENDPOINT)}/{ENDPOINT}/{VARIANT}/{now:%Y/%m/%d/%H}"
    bucket, key = s3_location(f"{folder}/{now:%M-%S-%f}-{secrets.token_hex(4)}.jsonl")
    lines = "".join(capture_line(secrets.token_hex(16), request, response, now) for _ in range(CAPTURED_COPIES))
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=lines.encode())


def subscribe_queue(aws: Aws, topic_arn: str) -> str:
    """An SQS queue subscribed to the topic, as an operator's pager or mailbox would be; its URL."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="pravah-emulated-alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.call("sns", "subscribe", TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def received(aws: Aws, queue_url: str) -> list[dict[str, Any]]:
    """The SNS notifications that reached the queue."""
    answer = aws.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [json.loads(message["Body"]) for message in answer.get("Messages", [])]
