"""The cloud template: the Lambda predict API behind API Gateway and the schedules, checked by cfn-lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aws.images import image_uri
from cloud.schedules import eventbridge_cron, eventbridge_rate
from foundation.errors import PravahError
from tests.support import run_cli


def test_schedules_become_eventbridge_expressions():
    assert eventbridge_cron("0 2 * * *") == "cron(0 2 * * ? *)"
    assert eventbridge_cron("30 6 * * 1-5") == "cron(30 6 ? * 2-6 *)", "Monday is 1 in cron, 2 in EventBridge"
    assert eventbridge_cron("0 0 1 * *") == "cron(0 0 1 * ? *)"
    with pytest.raises(PravahError, match="both a day of the month and a day of the week"):
        eventbridge_cron("0 0 1 * 1")
    assert eventbridge_rate(3600) == "rate(1 hour)" and eventbridge_rate(1800) == "rate(30 minutes)"


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
    assert {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::pravah-dev-111111111111/endpoints/prod/input.json",
    } in granted
    rule = resources["RetrainRule"]["Properties"]
    assert rule["ScheduleExpression"] == "cron(0 2 * * ? *)" and "pipeline/text-classifier" in str(rule["Targets"])
    # monitoring without Model Monitor (closed to new customers): the endpoint's monitoring pipeline, started by
    # an EventBridge rule, runs the drift job on the monitoring image and alerts through the endpoint's topic
    assert "MonitoringSchedule" not in output.read_text()
    pipeline = resources["MonitorMonitoringPipeline"]
    assert pipeline["Type"] == "AWS::SageMaker::Pipeline"
    assert pipeline["Properties"]["PipelineName"] == "pravah-monitor-prod"
    definition = json.loads(pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"])
    [step] = definition["Steps"]
    app = step["Arguments"]["AppSpecification"]
    assert app["ContainerEntrypoint"] == ["python3", "-m", "monitoring.scheduled"]
    # the image `make images` pushes, at the digest of what its build reads
    assert app["ImageUri"] == image_uri("111111111111", "ap-south-1", "monitoring")
    assert re.fullmatch(
        r"111111111111\.dkr\.ecr\.ap-south-1\.amazonaws\.com/pravah-monitoring:[0-9a-f]{16}", app["ImageUri"]
    )
    arguments = app["ContainerArguments"]
    assert arguments[arguments.index("--topic") + 1] == "arn:aws:sns:ap-south-1:111111111111:pravah-prod-alarms"
    assert arguments[arguments.index("--window-seconds") + 1] == "3600"
    monitor_rule = resources["MonitorRule"]["Properties"]
    assert monitor_rule["ScheduleExpression"] == "rate(1 hour)"
    assert "pipeline/pravah-monitor-prod" in str(monitor_rule["Targets"])
    assert resources["AlarmTopic"]["Properties"]["TopicName"] == "pravah-prod-alarms"

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
    assert [w["properties"]["title"] for w in widgets] == [
        "API requests by route",
        "API 4xx and 5xx",
        "Lambda duration",
        "Endpoint",
        "Monitoring",
    ]
    assert ["Pravah/Monitoring", "Violations", "EndpointName", "prod"] in widgets[-1]["properties"]["metrics"]
    prod = tmp_path / "prod-env.yaml"
    assert (
        run_cli(home, "template", "--endpoint", "prod", "--environment", "prod", "--output", str(prod)).returncode == 0
    )
    assert yaml.safe_load(prod.read_text())["Resources"]["ApiAccessLogs"]["Properties"]["RetentionInDays"] == 90

    broken = yaml.safe_load(output.read_text())
    broken["Resources"]["PredictFunction"]["Properties"]["Runtime"] = "python2.1"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(broken))
    assert cfn_lint(tmp_path / "broken.yaml").returncode != 0, "cfn-lint catches a wrong template"


def test_schedules_deploy_as_eventbridge_rules_starting_pipelines(empty_account, tmp_path):
    """`pravah schedule deploy` on moto's server over HTTP, an account of its own (no endpoint `prod` that another
    module made): the role EventBridge assumes, a rule per schedule, and for a monitor the endpoint's alert topic
    and monitoring pipeline (no Model Monitor request)."""
    moto_server = empty_account
    import boto3

    from foundation.home import Home
    from monitoring.schedules import ScheduleStore

    store = ScheduleStore(Home(tmp_path / "home"))
    store.add("retrain", "text-classifier", "0 2 * * *", None, "nightly")
    store.add("monitor", "prod", None, "1h", "hourly")
    home = tmp_path / "home"
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    dry = run_cli(home, "schedule", "deploy", "--dry-run", env=env)
    assert dry.returncode == 0 and '"operation": "CreateRole"' in dry.stdout, dry.stderr
    assert '"operation": "PutRule"' in dry.stdout and "shown (dry run)" in dry.stdout
    assert '"operation": "CreatePipeline"' in dry.stdout and '"operation": "CreateTopic"' in dry.stdout
    assert "MonitoringSchedule" not in dry.stdout
    assert "endpoint prod serves no model package yet: its monitoring baseline is written when" in dry.stdout
    clients = {
        service: boto3.client(
            service,
            region_name="ap-south-1",
            endpoint_url=moto_server,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        for service in ("iam", "events", "sagemaker", "sns")
    }
    assert not clients["sagemaker"].list_pipelines()["PipelineSummaries"], "a dry run changes nothing"
    done = run_cli(home, "schedule", "deploy", env=env)
    assert done.returncode == 0, done.stderr
    assert "monitoring pipeline pravah-monitor-prod: the drift job over 3600s of captures" in done.stdout
    role = clients["iam"].get_role(RoleName="pravah-eventbridge-start-pipeline")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    events = clients["events"]
    rule = events.describe_rule(Name="pravah-nightly")
    assert rule["ScheduleExpression"] == "cron(0 2 * * ? *)" and rule["State"] == "ENABLED"
    target = events.list_targets_by_rule(Rule="pravah-nightly")["Targets"][0]
    assert target["Arn"].endswith(":pipeline/text-classifier")
    # the environment's account: the role that trusts EventBridge, not the SageMaker one
    assert target["RoleArn"] == f"arn:aws:iam::111111111111:role/{role['RoleName']}"
    assert events.describe_rule(Name="pravah-hourly")["ScheduleExpression"] == "rate(1 hour)"
    [monitor] = events.list_targets_by_rule(Rule="pravah-hourly")["Targets"]
    assert monitor["Arn"].endswith(":pipeline/pravah-monitor-prod")
    pipeline = clients["sagemaker"].describe_pipeline(PipelineName="pravah-monitor-prod")
    [step] = json.loads(pipeline["PipelineDefinition"])["Steps"]
    assert step["Arguments"]["AppSpecification"]["ContainerEntrypoint"][-1] == "monitoring.scheduled"
    topics = [t["TopicArn"] for t in clients["sns"].list_topics()["Topics"]]
    assert any(t.endswith(":pravah-prod-alarms") for t in topics), topics
    again = run_cli(home, "schedule", "deploy", env=env)
    assert again.returncode == 0, again.stderr  # idempotent: the pipeline is updated, the topic kept
    assert len(clients["sagemaker"].list_pipelines()["PipelineSummaries"]) == 1


def test_the_scheduled_job_downloads_only_its_windows_capture(moto_server, tmp_path):
    """monitoring.scheduled reads Data Capture's hour folders that its window touches, of every variant, and
    nothing before the window (the folders of an hour earlier stay in S3)."""
    from datetime import UTC, datetime

    import boto3

    from monitoring.scheduled import captured_keys, download_capture, window_of

    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="pravah-window")
    for key in (
        "capture/prod/prod/AllTraffic/2026/12/07/09/a.jsonl",
        "capture/prod/prod/AllTraffic/2026/12/07/10/b.jsonl",
        "capture/prod/prod/Canary/2026/12/07/10/c.jsonl",
        "capture/prod/prod/AllTraffic/2026/12/07/08/old.jsonl",
        "capture/prod/other/AllTraffic/2026/12/07/10/d.jsonl",
    ):
        s3.put_object(Bucket="pravah-window", Key=key, Body=b"{}\n")
    start, end = window_of(datetime(2026, 12, 7, 10, 20, tzinfo=UTC), 3600)
    assert (start.hour, start.minute, end.hour) == (9, 20, 10)
    keys = captured_keys(s3, "s3://pravah-window/capture/prod", "prod", start, end)
    count = download_capture(s3, "s3://pravah-window/capture/prod", keys, tmp_path / "alone")
    found = sorted(str(p.relative_to(tmp_path / "alone")) for p in (tmp_path / "alone").rglob("*.jsonl"))
    assert count == 3 and found == [
        "prod/AllTraffic/2026/12/07/09/a.jsonl",
        "prod/AllTraffic/2026/12/07/10/b.jsonl",
        "prod/Canary/2026/12/07/10/c.jsonl",
    ], found
    # the second of two instances takes every second file of the same list: together they read each once
    assert download_capture(s3, "s3://pravah-window/capture/prod", keys, tmp_path / "second", (1, 2)) == 1
    assert [p.name for p in (tmp_path / "second").rglob("*.jsonl")] == ["b.jsonl"]


def test_no_model_monitor_api_is_left_in_the_code():
    """Model Monitor is closed to new customers: nothing the project sends or templates names it."""
    from tests.support import REPO

    sources = [
        p
        for folder in ("aws", "cli", "emulator", "inference", "monitoring", "pipelines", "registry")
        for p in (REPO / folder).rglob("*.py")
    ]
    named = [
        str(p.relative_to(REPO)) for p in sources if re.search(r"MonitoringSchedule|monitoring_schedule", p.read_text())
    ]
    assert sources and named == []
