"""The emulator's Batch Transform: the registered version scored over S3 as `pravah predict --target
sagemaker` asks SageMaker to, the job run around the package's own container.

The served sample's records are written as a JSON-lines object (with one line no model can read, answered
with its error in place); the CreateModel and CreateTransformJob requests are those of the command's code,
checked against botocore's service model and recorded by moto; the job is run by
emulator.containers.run_transform, and its `.out` object read back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws.requests import Aws, s3_location
from emulator import containers
from emulator.containers import BuiltImage


def transform_sample(
    aws: Aws,
    url: str,
    package_arn: str,
    sample: Any,
    images: dict[str, BuiltImage],
    folder: Path,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """The answer lines of a transform job over the sample's records and one unreadable line."""
    from cloud.transform import transform
    from inference.sagemaker_handlers import input_fn

    environment, s3 = aws.environment, aws.client("s3")
    model, version = package_arn.rsplit("/", 2)[-2:]
    records = input_fn(json.dumps(sample), "application/json")  # as the endpoint read them
    rows = records.to_dict(orient="records") if hasattr(records, "to_dict") else [{"text": t} for t in records]
    lines = [json.dumps(row, ensure_ascii=False) for row in rows] + ["{not json"]
    base = f"s3://{environment.bucket}/transform/{model}"
    bucket, key = s3_location(f"{base}/input/records.jsonl")
    s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())
    request = transform(aws, model, int(version), f"{base}/input", f"{base}/output")
    say(f"▸ transform job {request['TransformJobName']}: {len(lines)} lines of {base}/input")
    package = aws.call("sagemaker", "describe_model_package", ModelPackageName=package_arn)
    [container] = package["InferenceSpecification"]["Containers"]
    root = folder / "transform"
    root.mkdir(parents=True, exist_ok=True)
    runtime = containers.Runtime(images[container["Image"]], s3, url, environment.region)
    [written] = containers.run_transform(request, container, root, runtime, folder / "logs" / "transform.log")
    bucket, key = s3_location(written)
    answers = [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]
    shown = ", ".join(str(a.get("prediction", a.get("error"))) for a in answers)
    say(f"  ✓ {written}: {shown}")
    return answers
