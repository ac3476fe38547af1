"""The drift job as a scheduled SageMaker processing job, AWS's replacement for Model Monitor schedules (closed
to new customers): EventBridge starts the endpoint's monitoring pipeline (`pravah schedule deploy`, or the
template), whose step runs this module in the monitoring image; on more than one instance, a scan step's
instances each count their share of the window's captured files (`--stage scan`, by the resourceconfig.json
SageMaker writes for each) and a judge step merges what they counted (`--stage judge`): the same counts, so the
same verdicts, as one instance.

It takes the window that ends when the execution started, downloads what the endpoint's Data Capture wrote in
it (`CAPTURE/ENDPOINT/VARIANT/yyyy/mm/dd/hh/`, only the hours the window touches), runs the same job as
`pravah monitor run` (monitoring/job.py) against the baseline the pipeline mounts, and then does what Model
Monitor did around it: puts the figures into CloudWatch (namespace `Pravah/Monitoring`, per endpoint: records,
violations, drifted features, estimated accuracy) for the dashboard and its alarms, publishes a violation to
the endpoint's SNS topic, and, when asked, starts the retraining pipeline. The reports are the step's output.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from steps.instances import instance_share

PROCESSING = Path("/opt/ml/processing")
NAMESPACE = "Pravah/Monitoring"


def window_of(started: datetime, seconds: int) -> tuple[datetime, datetime]:
    """The window a scheduled execution judges: the `seconds` before it started."""
    return started - timedelta(seconds=seconds), started


def captured_keys(s3, capture_uri: str, endpoint: str, start: datetime, end: datetime) -> list[str]:
    """The S3 keys of what the endpoint's Data Capture wrote in the hours [start, end) touches, in key order."""
    from monitoring.window import capture_hours  # the layout's owner (numpy and more load with it: not at import)

    bucket, _, prefix = capture_uri.removeprefix("s3://").partition("/")
    base = f"{prefix.rstrip('/')}/{endpoint}/"
    variants = s3.list_objects_v2(Bucket=bucket, Prefix=base, Delimiter="/").get("CommonPrefixes", [])
    keys = []
    for variant in (v["Prefix"] for v in variants):
        for hour in capture_hours(start, end):
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{variant}{hour}/")
            keys += [item["Key"] for page in pages for item in page.get("Contents", [])]
    return sorted(keys)


def download_capture(s3, capture_uri: str, keys: list[str], folder: Path, share: tuple[int, int] = (0, 1)) -> int:
    """The captured objects `keys` (every n-th of them, from the `share`'s index, for one instance of n) under
    `folder/ENDPOINT/VARIANT/yyyy/mm/dd/hh/`; how many."""
    bucket, _, prefix = capture_uri.removeprefix("s3://").partition("/")
    index, parts = share
    for key in keys[index::parts]:
        target = folder / key[len(prefix.rstrip("/")) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(target))
    return len(keys[index::parts])


def metric_data(endpoint: str, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The window's figures as CloudWatch datums, one set per endpoint."""
    dimensions = [{"Name": "EndpointName", "Value": endpoint}]
    figures = {
        "Records": (metrics["records"], "Count"),
        "Violations": (metrics["violations"], "Count"),
        "DriftedFeatures": (sum(1 for f in metrics.get("features", {}).values() if f.get("drift")), "Count"),
    }
    estimated = metrics.get("estimated_performance", {})
    if "accuracy" in estimated:
        figures["EstimatedAccuracy"] = (estimated["accuracy"], "None")
    return [
        {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": unit}
        for name, (value, unit) in figures.items()
    ]


def alert_message(endpoint: str, metrics: dict[str, Any], violations: list[dict[str, Any]], reports: str) -> str:
    lines = [
        f"pravah: {metrics['violations']} violation(s) on endpoint {endpoint} in the window "
        f"{metrics['window']['start']} to {metrics['window']['end']} ({metrics['records']} records)",
        *(f"- {v['feature_name']}: {v['description']}" for v in violations),
        f"reports: {reports}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m monitoring.scheduled", description=__doc__.split("\n")[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--capture", required=True, help="the endpoint's DataCaptureConfig destination (s3://...)")
    parser.add_argument("--window-seconds", type=int, required=True)
    parser.add_argument("--started", required=True, help="the execution's start (ISO 8601): the window's end")
    parser.add_argument("--region", required=True)
    parser.add_argument("--topic", required=True, help="the SNS topic that a violation is published to")
    parser.add_argument("--reports", required=True, help="where the step's output lands (named in the alert)")
    parser.add_argument("--retrain-pipeline", default="", help="a SageMaker pipeline to start on a violation")
    parser.add_argument(
        "--stage",
        choices=STAGES,
        default="whole",
        help="whole: scan the window and judge it (one instance); scan: this instance's share of the window's "
        "captured files (by /opt/ml/config/resourceconfig.json), its counts to resultdata/HOST.json; judge: "
        "merge the scanning instances' counts (in parts/) and judge them",
    )
    parser.add_argument("--root", default=str(PROCESSING), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    import boto3

    from monitoring.window import Window, merge, parse_time

    root = Path(args.root)
    start, end = window_of(parse_time(args.started), args.window_seconds)
    session = boto3.Session(region_name=args.region)
    baseline = json.loads((root / "baseline" / "statistics.json").read_text())
    output = root / "resultdata"
    if args.stage == "judge":
        parts = sorted((root / "parts").glob("*.json"))
        window = merge([Window.from_json(part.read_bytes()) for part in parts])
        print(f"merged the counts of {len(parts)} instances: {window.profile.rows} records", flush=True)
    else:
        window = _scan(session.client("s3"), args, root, start, end, baseline, scanning_only=args.stage == "scan")
        if args.stage == "scan":
            host = instance_share(root.parent / "config")[0]
            output.mkdir(parents=True, exist_ok=True)
            (output / f"{host}.json").write_bytes(window.to_json())
            print(json.dumps({"host": host, "files": window.files, "records": window.profile.rows}), flush=True)
            return 0
    return _judge_and_tell(session, args, window, output, start, end, baseline)


STAGES = ("whole", "scan", "judge")


def _scan(s3, args, root: Path, start: datetime, end: datetime, baseline: dict[str, Any], scanning_only: bool):
    """This instance's share of the window's captured files (all of them, when it is alone), scanned."""
    from monitoring.job import import_report_libraries, scan_window
    from monitoring.window import captured_files

    host, index, count = instance_share(root.parent / "config")
    source = root / "input" / "endpoint"
    keys = captured_keys(s3, args.capture, args.endpoint, start, end)
    files = download_capture(s3, args.capture, keys, source, (index, count))
    share = f" ({host}'s share, {index + 1} of {count} instances)" if count > 1 else ""
    print(f"window {start:%Y-%m-%dT%H:%M:%SZ} to {end:%Y-%m-%dT%H:%M:%SZ}: {files} captured files{share}", flush=True)
    found = list(captured_files(source / args.endpoint, start, end))
    waiting = None if scanning_only else import_report_libraries
    return scan_window(found, start, end, baseline, {}, while_waiting=waiting)


def _judge_and_tell(session, args, window, output: Path, start, end, baseline: dict[str, Any]) -> int:
    """Judge the window, then do what Model Monitor did around its job: CloudWatch, SNS, retraining."""
    from monitoring.job import judge

    constraints = json.loads((Path(args.root) / "baseline" / "constraints.json").read_text())
    metrics = judge(window, output, start, end, baseline, constraints)
    session.client("cloudwatch").put_metric_data(Namespace=NAMESPACE, MetricData=metric_data(args.endpoint, metrics))
    summary = {"records": metrics["records"], "violations": metrics["violations"], "judged": metrics["judged"]}
    if metrics["violations"]:
        violations = json.loads((output / "constraint_violations.json").read_text())["violations"]
        message = alert_message(args.endpoint, metrics, violations, args.reports)
        subject = f"pravah: drift alert on {args.endpoint}"[:100]
        session.client("sns").publish(TopicArn=args.topic, Subject=subject, Message=message)
        summary["alert"] = args.topic
        if args.retrain_pipeline:
            started = session.client("sagemaker").start_pipeline_execution(
                PipelineName=args.retrain_pipeline,
                PipelineExecutionDescription=f"retraining after drift on {args.endpoint}"[:3072],
            )
            summary["retraining"] = started["PipelineExecutionArn"]
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
