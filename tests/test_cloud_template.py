"""The cloud template: the Lambda predict API behind API Gateway and the schedules, checked by cfn-lint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from foundation.errors import PravahError
from pipelines.sagemaker.template import eventbridge_cron, eventbridge_rate, monitor_cron
from tests.support import run_cli


def test_schedules_become_eventbridge_and_model_monitor_expressions():
    assert eventbridge_cron("0 2 * * *") == "cron(0 2 * * ? *)"
    assert eventbridge_cron("30 6 * * 1-5") == "cron(30 6 ? * 2-6 *)", "Monday is 1 in cron, 2 in EventBridge"
    assert eventbridge_cron("0 0 1 * *") == "cron(0 0 1 * ? *)"
    with pytest.raises(PravahError, match="both a day of the month and a day of the week"):
        eventbridge_cron("0 0 1 * 1")
    assert eventbridge_rate(3600) == "rate(1 hour)" and eventbridge_rate(1800) == "rate(30 minutes)"
    assert monitor_cron(3600) == "cron(0 * ? * * *)" and monitor_cron(6 * 3600) == "cron(0 0/6 ? * * *)"
    with pytest.raises(PravahError, match="every 1, 2, 3"):
        monitor_cron(5 * 3600)


def cfn_lint(path) -> subprocess.CompletedProcess:
    command = Path(sys.executable).parent / "cfn-lint"  # the console script of the pinned cfn-lint
    return subprocess.run([str(command), str(path)], capture_output=True, text=True)


def test_the_template_lints_clean_and_holds_the_api_limits_and_schedules(tmp_path):
    home = tmp_path / "home"
    assert run_cli(home, "schedule", "add", "retrain", "--cron", "0 2 * * *").returncode == 0
    assert run_cli(home, "schedule", "add", "monitor", "--every", "1h", "--endpoint", "prod").returncode == 0
    output = tmp_path / "prod.yaml"
    made = run_cli(home, "template", "--endpoint", "prod", "--output", str(output))
    assert made.returncode == 0, made.stderr
    linted = cfn_lint(output)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    resources = yaml.safe_load(output.read_text())["Resources"]
    assert resources["UsagePlan"]["Properties"]["Throttle"] == {"RateLimit": 1000.0, "BurstLimit": 1000}
    assert resources["ProxyMethod"]["Properties"]["ApiKeyRequired"] is True
    assert resources["PredictFunction"]["Properties"]["Handler"] == "inference.lambda_handler.handler"
    # where the deploy describes the endpoint's input (a table's columns), and the right to read it
    described = resources["PredictFunction"]["Properties"]["Environment"]["Variables"]["PRAVAH_INPUT_SCHEMA"]
    assert described == "s3://pravah-dev-111111111111/endpoints/prod/input.json"
    granted = resources["PredictFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {"Effect": "Allow", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::pravah-dev-111111111111/endpoints/prod/input.json"} in granted  # fmt: skip
    rule = resources["RetrainRule"]["Properties"]
    assert rule["ScheduleExpression"] == "cron(0 2 * * ? *)" and "pipeline/text-classifier" in str(rule["Targets"])
    monitor = resources["MonitorMonitoringSchedule"]["Properties"]["MonitoringScheduleConfig"]
    assert monitor["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert (
        monitor["MonitoringJobDefinition"]["MonitoringAppSpecification"]["ContainerEntrypoint"][-1] == "monitoring.job"
    )
    image = yaml.safe_load(output.read_text())["Parameters"]["MonitoringImageUri"]["Default"]
    assert image == "111111111111.dkr.ecr.ap-south-1.amazonaws.com/pravah-monitoring:latest"  # make monitoring-image

    # the design doc's section 9: alarms to a topic, X-Ray, log retention, a dashboard
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) == {"Api5xxAlarm", "LambdaErrorRateAlarm", "EndpointLatencyAlarm"}
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms.values())
    assert (alarms["Api5xxAlarm"]["Threshold"], alarms["Api5xxAlarm"]["Period"]) == (10, 300)
    assert alarms["LambdaErrorRateAlarm"]["Threshold"] == 5 and alarms["EndpointLatencyAlarm"]["Threshold"] == 2e6
    assert resources["PredictFunction"]["Properties"]["TracingConfig"] == {"Mode": "Active"}
    assert resources["ApiStage"]["Properties"]["TracingEnabled"] is True
    assert resources["PredictFunctionLogs"]["Properties"]["RetentionInDays"] == 30, "dev keeps logs 30 days"
    widgets = json.loads(resources["Dashboard"]["Properties"]["DashboardBody"])["widgets"]
    assert [w["properties"]["title"] for w in widgets] == ["API requests by route", "API 4xx and 5xx",
                                                           "Lambda duration", "Endpoint"]  # fmt: skip
    prod = tmp_path / "prod-env.yaml"
    assert (
        run_cli(home, "template", "--endpoint", "prod", "--environment", "prod", "--output", str(prod)).returncode == 0
    )
    assert yaml.safe_load(prod.read_text())["Resources"]["ApiAccessLogs"]["Properties"]["RetentionInDays"] == 90

    broken = yaml.safe_load(output.read_text())
    broken["Resources"]["PredictFunction"]["Properties"]["Runtime"] = "python2.1"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert cfn_lint(tmp_path / "broken.yaml").returncode != 0, "cfn-lint catches a wrong template"


def test_schedules_deploy_as_eventbridge_rules_and_a_model_monitor_schedule(moto_server, monkeypatch, tmp_path):
    from botocore.awsrequest import AWSResponse

    from aws.environments import load_environment
    from aws.requests import Aws
    from foundation.home import Home
    from monitoring.schedules import ScheduleStore
    from pipelines.sagemaker.template import events_role_requests, schedule_requests
    from tests.support import REPO

    for key, value in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    store = ScheduleStore(Home(tmp_path / "home"))
    store.add("retrain", "text-classifier", "0 2 * * *", None, "nightly")
    store.add("monitor", "prod", None, "1h", "hourly")
    aws = Aws(load_environment("dev", REPO), say=lambda _: None)
    monitoring: list[dict] = []

    def create_monitoring_schedule(model, params, **_):  # moto lacks it; botocore validated `params` already
        monitoring.append(json.loads(params["body"]))
        return AWSResponse("http://sagemaker", 200, {}, None), {"MonitoringScheduleArn": "arn:aws:sagemaker:x"}

    aws.client("sagemaker").meta.events.register("before-call.sagemaker.CreateMonitoringSchedule",
                                                 create_monitoring_schedule)  # fmt: skip
    home = tmp_path / "home"
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    dry = run_cli(home, "schedule", "deploy", "--dry-run", env=env)
    assert dry.returncode == 0 and '"operation": "CreateRole"' in dry.stdout, dry.stderr
    assert '"operation": "PutRule"' in dry.stdout and "shown (dry run)" in dry.stdout
    assert "endpoint prod serves no model package yet: its monitoring baseline is written when" in dry.stdout
    for service, operation, params in events_role_requests(aws.environment):  # what schedule deploy does first
        aws.call(service, operation, **params)
    for schedule in store.all():
        for service, operation, params in schedule_requests(aws.environment, schedule):
            aws.call(service, operation, **params)
    role = aws.client("iam").get_role(RoleName="pravah-eventbridge-start-pipeline")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    events = aws.client("events")
    rule = events.describe_rule(Name="pravah-nightly")
    assert rule["ScheduleExpression"] == "cron(0 2 * * ? *)" and rule["State"] == "ENABLED"
    target = events.list_targets_by_rule(Rule="pravah-nightly")["Targets"][0]
    assert target["Arn"].endswith(":pipeline/text-classifier")
    # the environment's account (moto's is another): the role that trusts EventBridge, not the SageMaker one
    assert target["RoleArn"] == f"arn:aws:iam::{aws.environment.account}:role/{role['RoleName']}"
    assert len(monitoring) == 1
    config = monitoring[0]["MonitoringScheduleConfig"]
    assert config["ScheduleConfig"]["ScheduleExpression"] == "cron(0 * ? * * *)"
    assert config["MonitoringJobDefinition"]["MonitoringInputs"][0]["EndpointInput"]["EndpointName"] == "prod"
