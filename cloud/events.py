"""The project's events in the cloud: what SageMaker itself sends to EventBridge, routed by one rule per event to
one SNS topic of the environment (`pravah-events`), each message in the words of the local feed
(console/events.py and `pravah events notify`: "pravah: run failed: ..."). `pravah cloud bootstrap` creates it;
the environment's `alarm_email` is subscribed to it. A deployment's rollback and a drift alert already go to the
endpoint's own alert topic (its CloudWatch alarms, the monitoring pipeline), which that e-mail also receives."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws.environments import Environment
from aws.requests import Aws

TOPIC = "pravah-events"
PIPELINE_EXECUTION = "SageMaker Model Building Pipeline Execution Status Change"
MODEL_PACKAGE = "SageMaker Model Package State Change"

# event kind (console/notify.KINDS): SageMaker's event that says it, and the message's fields and words
ROUTES: dict[str, dict[str, Any]] = {
    "run failed": {
        "detail-type": PIPELINE_EXECUTION,
        "detail": {"currentPipelineExecutionStatus": ["Failed"]},
        "paths": {"execution": "$.detail.pipelineExecutionArn"},
        "words": "<execution>",
    },
    "run interrupted": {
        "detail-type": PIPELINE_EXECUTION,
        "detail": {"currentPipelineExecutionStatus": ["Stopped"]},
        "paths": {"execution": "$.detail.pipelineExecutionArn"},
        "words": "<execution>",
    },
    "awaits approval": {
        "detail-type": MODEL_PACKAGE,
        "detail": {"ModelApprovalStatus": ["PendingManualApproval"]},
        "paths": {"group": "$.detail.ModelPackageGroupName", "version": "$.detail.ModelPackageVersion"},
        "words": "<group> version <version>",
    },
}


def topic_arn(environment: Environment) -> str:
    return f"arn:aws:sns:{environment.region}:{environment.account}:{TOPIC}"


def rule_name(kind: str) -> str:
    return "pravah-event-" + kind.replace(" ", "-")


def event_pattern(kind: str) -> dict[str, Any]:
    route = ROUTES[kind]
    return {"source": ["aws.sagemaker"], "detail-type": [route["detail-type"]], "detail": route["detail"]}


def topic_policy(environment: Environment) -> dict[str, Any]:
    """EventBridge may publish to the topic, for rules of this account only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgePublishes",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn(environment),
                "Condition": {"StringEquals": {"aws:SourceAccount": environment.account}},
            }
        ],
    }


def rule_request(kind: str) -> dict[str, Any]:
    return {
        "Name": rule_name(kind),
        "EventPattern": json.dumps(event_pattern(kind)),
        "State": "ENABLED",
        "Description": f"pravah: {kind}, to the {TOPIC} topic",
    }


def target_of(kind: str, environment: Environment) -> dict[str, Any]:
    """The topic, sent the event's message: a JSON string, which SNS delivers as plain text."""
    route = ROUTES[kind]
    template = json.dumps(f"pravah: {kind}: {route['words']}")
    transformer = {"InputPathsMap": route["paths"], "InputTemplate": template}
    return {"Id": "topic", "Arn": topic_arn(environment), "InputTransformer": transformer}


def route_events(aws: Aws, say: Callable[[str], None]) -> str:
    """The topic, its policy, the e-mail's subscription and each event's rule and target: each asked for first
    and sent only when missing or different, so a second run sends nothing. The topic's ARN."""
    environment, arn = aws.environment, topic_arn(aws.environment)
    found = aws.read("sns", "get_topic_attributes", TopicArn=arn)
    if found is None:
        aws.call("sns", "create_topic", Name=TOPIC)
    policy = topic_policy(environment)
    if found is None or json.loads(found["Attributes"].get("Policy") or "{}") != policy:
        aws.call("sns", "set_topic_attributes", TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy))
    email = environment.observability.alarm_email
    if email:
        subscribed = (aws.read("sns", "list_subscriptions_by_topic", TopicArn=arn) or {}).get("Subscriptions", [])
        if not any(s.get("Protocol") == "email" and s.get("Endpoint") == email for s in subscribed):
            aws.call("sns", "subscribe", TopicArn=arn, Protocol="email", Endpoint=email)
    for kind in ROUTES:
        wanted = rule_request(kind)
        rule = aws.read("events", "describe_rule", Name=wanted["Name"]) or {}
        same = json.loads(rule.get("EventPattern") or "{}") == event_pattern(kind)
        if not same or rule.get("State") != wanted["State"] or rule.get("Description") != wanted["Description"]:
            aws.call("events", "put_rule", **wanted)
        target = target_of(kind, environment)
        targets = (aws.read("events", "list_targets_by_rule", Rule=wanted["Name"]) or {}).get("Targets", [])
        if targets != [target]:
            aws.call("events", "put_targets", Rule=wanted["Name"], Targets=[target])
    say(f"events topic {arn}: {', '.join(ROUTES)} (SageMaker's events, by EventBridge rules)")
    return arn
