"""The emulator's last part: Model Monitor on the emulated endpoint's traffic.

The prediction the emulator asked the served package for is captured as the endpoint's DataCaptureConfig
would capture it (SageMaker's capture format, under the destination `pravah deploy --target sagemaker`
sets); the package's baseline is built and uploaded by the code of `pravah schedule deploy`; the
CreateMonitoringSchedule request of that command is checked against botocore's service model (moto has no
Model Monitor) and one execution of it is run: the monitoring image as its Dockerfile builds it, with Model
Monitor's container contract (emulator.containers.run_monitoring). Its reports are read back from
S3.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aws.requests import Aws, check_request, s3_location
from emulator import containers
from pipelines.sagemaker.source_archive import CODE_ROOT

ENDPOINT = "emulated-endpoint"
VARIANT = "AllTraffic"
MONITORING_DOCKERFILE = CODE_ROOT / "pipelines" / "sagemaker" / "container" / "monitoring.Dockerfile"


def monitor_exchange(aws: Aws, url: str, package_arn: str, request: Any, response: Any, folder: Path,
                     say: Callable[[str], None]) -> dict[str, Any] | None:  # fmt: skip
    """Capture one exchange of the endpoint serving `package_arn`, deploy its monitoring as `pravah schedule
    deploy` would, run the schedule's job once over the last hour; the job's metrics.json (None for a package
    that has no monitoring baseline: a table's model)."""
    from emulator.images import built_image
    from inference.capture import capture_line
    from monitoring.config import MonitoringConfig
    from monitoring.schedules import Schedule
    from pipelines.sagemaker.monitoring import capture_destination, upload_baseline
    from pipelines.sagemaker.template import schedule_requests

    environment, s3 = aws.environment, aws.client("s3")
    now = datetime.now(UTC)
    captured = f"{capture_destination(environment, ENDPOINT)}/{ENDPOINT}/{VARIANT}/{now:%Y/%m/%d/%H}"
    bucket, key = s3_location(f"{captured}/{now:%M-%S-%f}-{secrets.token_hex(4)}.jsonl")
    line = capture_line(secrets.token_hex(16), request, response, now)
    s3.put_object(Bucket=bucket, Key=key, Body=line.encode())
    baseline = upload_baseline(aws, ENDPOINT, package_arn, MonitoringConfig().constraints())
    if baseline is None:
        say(f"  (no monitoring: {package_arn} has no text reference profile to compare its traffic with)")
        return None
    say(f"▸ monitoring {ENDPOINT}: baseline of {'/'.join(package_arn.rsplit('/', 2)[-2:])} at {baseline}")
    schedule = Schedule(name="emulated", kind="monitor", target=ENDPOINT, every_seconds=3600)
    [(_, operation, params)] = schedule_requests(environment, schedule)
    check_request(aws.client("sagemaker"), operation, params)
    image = built_image(MONITORING_DOCKERFILE, CODE_ROOT, say)
    root = folder / "monitoring"
    root.mkdir(parents=True, exist_ok=True)
    runtime = containers.Runtime(image.venv, s3, url, environment.region)
    window = (now - timedelta(hours=1), now + timedelta(seconds=1))
    log = folder / "logs" / "monitoring.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    reports = containers.run_monitoring(params, capture_destination(environment, ENDPOINT), window, root, runtime,
                                        image, log)  # fmt: skip
    bucket, prefix = s3_location(reports)
    metrics = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/metrics.json")["Body"].read())
    say(f"  ✓ the monitoring job read {metrics['records']} captured predictions ({metrics['corrupt_lines']} "
        f"corrupt lines, {metrics['violations']} violations): {reports}")  # fmt: skip
    return metrics
