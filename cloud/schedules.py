"""The project's schedules in the cloud: EventBridge rules that start a SageMaker pipeline (the one to retrain,
or the endpoint's monitoring pipeline), as template resources and as direct requests for `pravah schedule
deploy`, with the role EventBridge assumes."""

from __future__ import annotations

import json
import re
from typing import Any

from aws.environments import Environment
from cloud.monitoring import (
    alert_topic_name,
    monitoring_definition,
    monitoring_pipeline_description,
    monitoring_pipeline_name,
)
from cloud.policies import allow, role, trust_policy
from foundation.errors import PravahError

_DAYS = {str(n): str(n + 1) for n in range(7)} | {"7": "1"}  # cron 0-7 (0 and 7: Sunday) -> EventBridge 1-7


def eventbridge_cron(expression: str) -> str:
    """A 5-field cron expression as EventBridge's `cron(minutes hours day-of-month month day-of-week year)`."""
    fields = expression.split()
    if len(fields) != 5:
        raise PravahError(f"'{expression}' is not a 5-field cron expression")
    minute, hour, day, month, weekday = fields
    if weekday == "*":
        weekday = "?"
    elif day == "*":
        day = "?"
        weekday = re.sub(r"\d", lambda m: _DAYS[m.group()], weekday)
    else:
        raise PravahError(f"'{expression}': EventBridge cannot take both a day of the month and a day of the week")
    return f"cron({minute} {hour} {day} {month} {weekday} *)"


def eventbridge_rate(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"rate({count} {unit}{'' if count == 1 else 's'})"
    raise PravahError(f"every {seconds}s: EventBridge schedules in whole minutes")


def schedule_name(schedule) -> str:
    """A schedule's name as a CloudFormation logical id's prefix."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", schedule.name) if part)


def schedule_expression(schedule) -> str:
    return eventbridge_cron(schedule.cron) if schedule.cron else eventbridge_rate(schedule.every_seconds)


def monitoring_window(schedule) -> int:
    """The seconds of traffic each monitoring execution judges: the period of an `--every` schedule, an hour
    for a cron one (as `pravah scheduler` runs them)."""
    return schedule.every_seconds or 3600


def scheduled_pipeline(schedule) -> str:
    """The SageMaker pipeline an EventBridge rule starts for the schedule."""
    return schedule.target if schedule.kind == "retrain" else monitoring_pipeline_name(schedule.target)


def schedule_description(schedule) -> str:
    what = f"run pipeline {schedule.target}" if schedule.kind == "retrain" else f"monitor endpoint {schedule.target}"
    return f"pravah schedule {schedule.name}: {what}"


def schedule_resources(environment: Environment, schedule, endpoint: str, retrain_pipeline: str) -> dict[str, Any]:
    name, pipeline = schedule_name(schedule), scheduled_pipeline(schedule)
    pipeline_arn = {"Fn::Sub": f"arn:aws:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:pipeline/{pipeline}"}
    rule = {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": schedule_description(schedule),
            "ScheduleExpression": schedule_expression(schedule),
            "State": "ENABLED",
            "Targets": [
                {
                    "Id": "pipeline",
                    "Arn": pipeline_arn,
                    "RoleArn": {"Fn::GetAtt": [f"{name}Role", "Arn"]},
                    "SageMakerPipelineParameters": {"PipelineParameterList": []},
                }
            ],
        },
    }
    resources = {
        f"{name}Role": role("events.amazonaws.com", ["sagemaker:StartPipelineExecution"], pipeline_arn),
        f"{name}Rule": rule,
    }
    if schedule.kind == "monitor":
        definition = monitoring_definition(environment, schedule.target, monitoring_window(schedule), retrain_pipeline)
        resources[f"{name}MonitoringPipeline"] = {
            "Type": "AWS::SageMaker::Pipeline",
            "Properties": {
                "PipelineName": pipeline,
                "RoleArn": environment.role_arn,
                "PipelineDescription": monitoring_pipeline_description(schedule.target),
                "PipelineDefinition": {"PipelineDefinitionBody": json.dumps(definition)},
            },
        }
        rule["DependsOn"] = [f"{name}MonitoringPipeline"]
        if schedule.target != endpoint:  # the template's own endpoint has its topic (AlarmTopic)
            resources[f"{name}AlertTopic"] = {
                "Type": "AWS::SNS::Topic",
                "Properties": {"TopicName": alert_topic_name(schedule.target)},
            }
    return resources


EVENTS_ROLE = "pravah-eventbridge-start-pipeline"


def events_role_requests(environment: Environment) -> list[tuple[str, str, dict[str, Any]]]:
    """The role EventBridge assumes to start a pipeline: trusted by events.amazonaws.com (the SageMaker
    execution role is not), allowed sagemaker:StartPipelineExecution on this account's pipelines only."""
    pipelines = f"arn:aws:sagemaker:{environment.region}:{environment.account}:pipeline/*"
    allowed = allow("sagemaker:StartPipelineExecution", pipelines)
    return [
        (
            "iam",
            "create_role",
            {
                "RoleName": EVENTS_ROLE,
                "AssumeRolePolicyDocument": json.dumps(trust_policy("events.amazonaws.com")),
                "Description": "pravah: EventBridge starts SageMaker pipelines (retraining)",
            },
        ),
        (
            "iam",
            "put_role_policy",
            {"RoleName": EVENTS_ROLE, "PolicyName": "start-pipelines", "PolicyDocument": json.dumps(allowed)},
        ),
    ]


def ensure_events_role(aws) -> bool:
    """The role EventBridge assumes to start pipelines, created when missing; whether it was."""
    if aws.exists("iam", "get_role", RoleName=EVENTS_ROLE):
        return False
    for service, operation, params in events_role_requests(aws.environment):
        aws.call(service, operation, **params)
    return True


def events_role_arn(environment: Environment) -> str:
    return f"arn:aws:iam::{environment.account}:role/{EVENTS_ROLE}"


def schedule_requests(environment: Environment, schedule) -> list[tuple[str, str, dict[str, Any]]]:
    """The same schedule's EventBridge rule and target as direct AWS requests (service, operation,
    parameters), for `pravah schedule deploy`, assuming the role of events_role_requests; a monitor's pipeline
    is created first (cloud.monitoring.deploy_monitoring_pipeline)."""
    rule, pipeline = f"pravah-{schedule.name}", scheduled_pipeline(schedule)
    pipeline_arn = f"arn:aws:sagemaker:{environment.region}:{environment.account}:pipeline/{pipeline}"
    return [
        (
            "events",
            "put_rule",
            {
                "Name": rule,
                "ScheduleExpression": schedule_expression(schedule),
                "State": "ENABLED",
                "Description": schedule_description(schedule),
            },
        ),
        (
            "events",
            "put_targets",
            {
                "Rule": rule,
                "Targets": [
                    {
                        "Id": "pipeline",
                        "Arn": pipeline_arn,
                        "RoleArn": events_role_arn(environment),
                        "SageMakerPipelineParameters": {"PipelineParameterList": []},
                    }
                ],
            },
        ),
    ]
