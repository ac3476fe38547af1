"""The endpoint's observability in the template (the design doc's section 9): log retention, alarms to an SNS
topic and a CloudWatch dashboard."""

from __future__ import annotations

import json
from typing import Any

from aws.environments import Environment
from cloud.monitoring import alert_topic_name
from cloud.policies import trust_policy


def observability(environment: Environment, endpoint: str) -> dict[str, Any]:
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
