"""`pravah template`: the cloud side as one CloudFormation template — the predict API (the FastAPI app on
Lambda behind API Gateway, with API keys, a usage plan and throttling), and the project's schedules as an
EventBridge rule that starts a SageMaker pipeline: the one to retrain (retrain), or the endpoint's monitoring
pipeline (monitor: the drift job as a processing job, AWS's replacement for Model Monitor schedules)."""

from __future__ import annotations

import json
import re
from typing import Any

from aws.environments import Environment
from aws.requests import s3_location
from foundation.errors import PravahError
from pipelines.sagemaker.deploy import input_description_uri
from pipelines.sagemaker.monitoring import (
    alert_topic_name,
    monitoring_definition,
    monitoring_pipeline_description,
    monitoring_pipeline_name,
)

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


def template(
    environment: Environment, endpoint: str, schedules: list, rate_limit: float, burst: int, retrain_pipeline: str = ""
) -> dict[str, Any]:
    """`retrain_pipeline`: what a monitoring pipeline starts on a violation (configs/monitoring.yaml)."""
    endpoint_arn = {"Fn::Sub": f"arn:aws:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:endpoint/{endpoint}"}
    logs = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    resources: dict[str, Any] = {
        "PredictFunctionRole": _role(
            "lambda.amazonaws.com",
            ["sagemaker:InvokeEndpoint", "sagemaker:DescribeEndpoint"],
            endpoint_arn,
            managed=[logs],
        ),
        "PredictFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": f"pravah-predict-{endpoint}",
                "Runtime": "python3.11",
                "Architectures": ["x86_64"],
                "Handler": "inference.lambda_handler.handler",
                "MemorySize": 1024,
                "Timeout": 29,
                "Role": {"Fn::GetAtt": ["PredictFunctionRole", "Arn"]},
                "Code": {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}},
                "Environment": {
                    "Variables": {
                        "PRAVAH_ENDPOINT": endpoint,
                        "LOG_LEVEL": "INFO",
                        "PRAVAH_INPUT_SCHEMA": input_description_uri(environment, endpoint),
                    }
                },
            },
        },
        "PredictApi": {
            "Type": "AWS::ApiGateway::RestApi",
            "Properties": {
                "Name": f"pravah-{endpoint}",
                "ApiKeySourceType": "HEADER",
                "EndpointConfiguration": {"Types": ["REGIONAL"]},
            },
        },
        "ProxyResource": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": "PredictApi"},
                "ParentId": {"Fn::GetAtt": ["PredictApi", "RootResourceId"]},
                "PathPart": "{proxy+}",
            },
        },
        "ProxyMethod": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "PredictApi"},
                "ResourceId": {"Ref": "ProxyResource"},
                "HttpMethod": "ANY",
                "AuthorizationType": "NONE",
                "ApiKeyRequired": True,
                "Integration": {
                    "Type": "AWS_PROXY",
                    "IntegrationHttpMethod": "POST",
                    "Uri": {
                        "Fn::Sub": "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
                        "${PredictFunction.Arn}/invocations"
                    },
                },
            },
        },
        "ApiInvokePermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": "PredictFunction"},
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {"Fn::Sub": "arn:aws:execute-api:${AWS::Region}:${AWS::AccountId}:${PredictApi}/*/*/*"},
            },
        },
        "ApiDeployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "DependsOn": ["ProxyMethod"],
            "Properties": {"RestApiId": {"Ref": "PredictApi"}},
        },
        "ApiStage": {
            "Type": "AWS::ApiGateway::Stage",
            "Properties": {
                "RestApiId": {"Ref": "PredictApi"},
                "DeploymentId": {"Ref": "ApiDeployment"},
                "StageName": "v1",
                "MethodSettings": [
                    {
                        "ResourcePath": "/*",
                        "HttpMethod": "*",
                        "ThrottlingRateLimit": rate_limit,
                        "ThrottlingBurstLimit": burst,
                        "MetricsEnabled": True,
                    }
                ],
            },
        },
        "UsagePlan": {
            "Type": "AWS::ApiGateway::UsagePlan",
            "Properties": {
                "UsagePlanName": f"pravah-{endpoint}",
                "Throttle": {"RateLimit": rate_limit, "BurstLimit": burst},
                "ApiStages": [{"ApiId": {"Ref": "PredictApi"}, "Stage": {"Ref": "ApiStage"}}],
            },
        },
        "ClientApiKey": {
            "Type": "AWS::ApiGateway::ApiKey",
            "Properties": {"Name": f"pravah-{endpoint}-client", "Enabled": True},
        },
        "UsagePlanKey": {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {"KeyId": {"Ref": "ClientApiKey"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "UsagePlan"}},
        },
    }
    for schedule in schedules:  # a backup schedule is the local folder's: the bucket is versioned instead
        if schedule.kind != "backup":
            resources.update(_schedule_resources(environment, schedule, endpoint, retrain_pipeline))
    resources.update(_observability(environment, endpoint))
    bucket, key = s3_location(input_description_uri(environment, endpoint))
    resources["PredictFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"] += [
        {
            "Effect": "Allow",
            "Action": "sagemaker:DescribeEndpointConfig",  # which version answered
            "Resource": {
                "Fn::Sub": f"arn:aws:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:endpoint-config/"
                f"{endpoint.lower()}-*"
            },
        },
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/{key}"},  # its input
    ]
    function = resources["PredictFunction"]["Properties"]
    function["TracingConfig"] = {"Mode": "Active"}  # X-Ray, from API Gateway through Lambda
    resources["PredictFunction"]["DependsOn"] = ["PredictFunctionLogs"]
    resources["PredictFunctionRole"]["Properties"]["ManagedPolicyArns"].append(
        "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess"
    )
    stage = resources["ApiStage"]["Properties"]
    stage["TracingEnabled"] = True
    stage["AccessLogSetting"] = {
        "DestinationArn": {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]},
        "Format": json.dumps(
            {
                "requestId": "$context.requestId",
                "path": "$context.path",
                "method": "$context.httpMethod",
                "status": "$context.status",
                "latencyMs": "$context.responseLatency",
            }
        ),
    }
    resources["ApiStage"]["DependsOn"] = ["ApiGatewayAccount"]
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Pravah: the predict API of endpoint {endpoint} and its schedules ({environment.region})",
        "Parameters": {
            "CodeBucket": {
                "Type": "String",
                "Default": environment.bucket,
                "Description": "the bucket of the Lambda package",
            },
            "CodeKey": {
                "Type": "String",
                "Default": "pravah/lambda/predict.zip",
                "Description": "the Lambda package: this repository's code and its requirements",
            },
        },
        "Resources": resources,
        "Outputs": {
            "ApiUrl": {"Value": {"Fn::Sub": "https://${PredictApi}.execute-api.${AWS::Region}.amazonaws.com/v1"}},
            "ClientApiKeyId": {"Value": {"Ref": "ClientApiKey"}},
        },
    }


def _observability(environment: Environment, endpoint: str) -> dict[str, Any]:
    """The design doc's section 9: logs kept for the environment's retention, alarms to an SNS topic (API 5xx
    over 10 in five minutes, Lambda error rate over 5%, endpoint latency over 2 s) and a dashboard of the API's
    requests by route, its 4xx/5xx, Lambda's p50/p95/p99 and the endpoint's invocations and model latency."""
    days = environment.observability.log_retention_days
    function, api, region = f"pravah-predict-{endpoint}", f"pravah-{endpoint}", environment.region
    topic = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": alert_topic_name(endpoint)}}
    if environment.observability.alarm_email:
        topic["Properties"]["Subscription"] = [{"Protocol": "email", "Endpoint": environment.observability.alarm_email}]
    alarm = {
        "ComparisonOperator": "GreaterThanThreshold",
        "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [{"Ref": "AlarmTopic"}],
        "OKActions": [{"Ref": "AlarmTopic"}],
    }

    def lambda_sum(name: str, ident: str) -> dict[str, Any]:
        return {
            "Id": ident,
            "ReturnData": False,
            "MetricStat": {
                "Period": 300,
                "Stat": "Sum",
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": name,
                    "Dimensions": [{"Name": "FunctionName", "Value": function}],
                },
            },
        }

    from monitoring.scheduled import NAMESPACE  # what the monitoring pipeline's job puts into CloudWatch

    endpoint_dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    resources = {
        "PredictFunctionLogs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": f"/aws/lambda/{function}", "RetentionInDays": days},
        },
        "ApiAccessLogs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": f"/pravah/{endpoint}/api-access", "RetentionInDays": days},
        },
        "ApiGatewayLogsRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": trust_policy("apigateway.amazonaws.com"),
                "ManagedPolicyArns": ["arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
            },
        },
        "ApiGatewayAccount": {
            "Type": "AWS::ApiGateway::Account",
            "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"]}},
        },
        "AlarmTopic": topic,
        "Api5xxAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                **alarm,
                "AlarmDescription": f"pravah: more than 10 5xx answers of the {endpoint} API in 5 minutes",
                "Namespace": "AWS/ApiGateway",
                "MetricName": "5XXError",
                "Statistic": "Sum",
                "Period": 300,
                "Threshold": 10,
                "Dimensions": [{"Name": "ApiName", "Value": api}, {"Name": "Stage", "Value": "v1"}],
            },
        },
        "LambdaErrorRateAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                **alarm,
                "AlarmDescription": f"pravah: more than 5% of {function}'s invocations failed in 5 minutes",
                "Threshold": 5,
                "Metrics": [
                    lambda_sum("Errors", "errors"),
                    lambda_sum("Invocations", "calls"),
                    {"Id": "rate", "Expression": "100 * errors / calls", "Label": "error %", "ReturnData": True},
                ],
            },
        },
        "EndpointLatencyAlarm": {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                **alarm,
                "AlarmDescription": f"pravah: {endpoint}'s model latency above 2 s (average over 5 minutes)",
                "Namespace": "AWS/SageMaker",
                "MetricName": "ModelLatency",
                "Statistic": "Average",
                "Period": 300,
                "Threshold": 2_000_000,
                "Dimensions": endpoint_dimensions,
            },
        },  # ModelLatency is in microseconds
    }
    api_dimensions = ["ApiName", api, "Stage", "v1"]
    endpoint_metric = ["EndpointName", endpoint, "VariantName", "AllTraffic"]
    widgets = [
        {
            "type": "log",
            "width": 12,
            "height": 6,
            "properties": {
                "region": region,
                "title": "API requests by route",
                "view": "table",
                "query": f"SOURCE '/pravah/{endpoint}/api-access' | stats count(*) as requests by path, "
                "method, status | sort requests desc",
            },
        },
        {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "region": region,
                "title": "API 4xx and 5xx",
                "stat": "Sum",
                "period": 300,
                "metrics": [
                    ["AWS/ApiGateway", "4XXError", *api_dimensions],
                    ["AWS/ApiGateway", "5XXError", *api_dimensions],
                ],
            },
        },
        {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "region": region,
                "title": "Lambda duration",
                "period": 300,
                "metrics": [
                    ["AWS/Lambda", "Duration", "FunctionName", function, {"stat": stat}]
                    for stat in ("p50", "p95", "p99")
                ],
            },
        },
        {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "region": region,
                "title": "Endpoint",
                "period": 300,
                "metrics": [
                    ["AWS/SageMaker", "Invocations", *endpoint_metric, {"stat": "Sum"}],
                    ["AWS/SageMaker", "ModelLatency", *endpoint_metric, {"stat": "p99", "yAxis": "right"}],
                ],
            },
        },
        {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "region": region,
                "title": "Monitoring",
                "period": 3600,
                "stat": "Maximum",
                "metrics": [[NAMESPACE, name, "EndpointName", endpoint] for name in ("Violations", "DriftedFeatures")]
                + [[NAMESPACE, "EstimatedAccuracy", "EndpointName", endpoint, {"yAxis": "right"}]],
            },
        },
    ]
    resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardName": f"pravah-{endpoint}", "DashboardBody": json.dumps({"widgets": widgets})},
    }
    return resources


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


def _schedule_resources(environment: Environment, schedule, endpoint: str, retrain_pipeline: str) -> dict[str, Any]:
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
        f"{name}Role": _role("events.amazonaws.com", ["sagemaker:StartPipelineExecution"], pipeline_arn),
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


def _role(service: str, actions: list[str], resource: Any, managed: list[str] | None = None) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": trust_policy(service),
            "ManagedPolicyArns": managed or [],
            "Policies": [{"PolicyName": "pravah", "PolicyDocument": _allow(actions, resource)}],
        },
    }


def trust_policy(service: str) -> dict[str, Any]:
    """A role's trust policy: `service` may assume it."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def _allow(actions: list[str] | str, resource: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}]}


def render(built: dict[str, Any]) -> str:
    """YAML for CloudFormation, which takes no YAML aliases: a value used twice is written twice."""
    import yaml

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(built, Dumper=NoAliases, sort_keys=False, allow_unicode=True)


EVENTS_ROLE = "pravah-eventbridge-start-pipeline"


def events_role_requests(environment: Environment) -> list[tuple[str, str, dict[str, Any]]]:
    """The role EventBridge assumes to start a pipeline: trusted by events.amazonaws.com (the SageMaker
    execution role is not), allowed sagemaker:StartPipelineExecution on this account's pipelines only."""
    pipelines = f"arn:aws:sagemaker:{environment.region}:{environment.account}:pipeline/*"
    allowed = _allow("sagemaker:StartPipelineExecution", pipelines)
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
    is created first (pipelines.sagemaker.monitoring.deploy_monitoring_pipeline)."""
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
