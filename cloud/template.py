"""`pravah template`: the cloud side as one CloudFormation template — the predict API (the FastAPI app on
Lambda behind API Gateway, with API keys, a usage plan and throttling), and the project's schedules as an
EventBridge rule that starts a SageMaker pipeline: the one to retrain (retrain), or the endpoint's monitoring
pipeline (monitor: the drift job as a processing job, AWS's replacement for Model Monitor schedules)."""

from __future__ import annotations

import json
from typing import Any

from aws.environments import Environment
from aws.requests import s3_location
from cloud.deploy import input_description_uri
from cloud.observability import observability
from cloud.policies import role
from cloud.schedules import schedule_resources


def template(
    environment: Environment, endpoint: str, schedules: list, rate_limit: float, burst: int, retrain_pipeline: str = ""
) -> dict[str, Any]:
    """`retrain_pipeline`: what a monitoring pipeline starts on a violation (configs/monitoring.yaml)."""
    endpoint_arn = {"Fn::Sub": f"arn:aws:sagemaker:${{AWS::Region}}:${{AWS::AccountId}}:endpoint/{endpoint}"}
    logs = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    resources: dict[str, Any] = {
        "PredictFunctionRole": role(
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
    for schedule in schedules:  # backup and notify are the local folder's (the bucket is versioned; alerts go to SNS)
        if schedule.kind in ("retrain", "monitor"):
            resources.update(schedule_resources(environment, schedule, endpoint, retrain_pipeline))
    resources.update(observability(environment, endpoint))
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


def render(built: dict[str, Any]) -> str:
    """YAML for CloudFormation, which takes no YAML aliases: a value used twice is written twice."""
    import yaml

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(built, Dumper=NoAliases, sort_keys=False, allow_unicode=True)
