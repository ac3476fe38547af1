"""`pravah predict --target sagemaker`: a file scored by a SageMaker Batch Transform job, the cloud twin of
scoring it locally (S3 in, S3 out; the design doc's 6.3.2).

The job runs the registered package's own serving container (the same model and handlers as its endpoint)
over every object under the input prefix: JSON lines, one {"text": ...} (or, for a table's model, one
{"column": value, ...}) per line, several lines to a request; each object's answers land beside its name
with `.out` added, one JSON line per input line, in order, an {"error": ...} for a line that cannot be scored.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any

from aws.requests import Aws
from cloud.deploy import approved_package, model_of_package
from foundation.errors import PravahError
from inference.transform_job import MAX_CONCURRENT_TRANSFORMS, MODEL_CLIENT_CONFIG, PAYLOAD_LIMIT_MB

CONTENT_TYPES = ("application/jsonlines", "text/plain")  # what the serving handlers read line by line
MAX_PAYLOAD_MB = 6


def transform_request(
    aws: Aws, job_name: str, model_name: str, input_uri: str, output_uri: str, content_type: str
) -> dict[str, Any]:
    """CreateTransformJob's request, with the rules AWS adds to its service model checked here."""
    if content_type not in CONTENT_TYPES:
        raise PravahError(
            f"content type {content_type} cannot be split by line for the model's handlers "
            f"(one of: {', '.join(CONTENT_TYPES)})"
        )
    if MAX_CONCURRENT_TRANSFORMS * MAX_PAYLOAD_MB > PAYLOAD_LIMIT_MB:
        raise PravahError("MaxConcurrentTransforms x MaxPayloadInMB may not exceed 100 MB")
    return {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxConcurrentTransforms": MAX_CONCURRENT_TRANSFORMS,
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "BatchStrategy": "MultiRecord",
        "ModelClientConfig": MODEL_CLIENT_CONFIG,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
            "ContentType": content_type,
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": output_uri, "Accept": "application/jsonlines", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": aws.environment.instance_types.transform, "InstanceCount": 1},
        "Tags": [{"Key": "pravah:model", "Value": model_name}],
    }


def transform(
    aws: Aws, model: str, version: int, input_uri: str, output_uri: str, content_type: str = "application/jsonlines"
) -> dict[str, Any]:
    """Create the model of the approved version's package (once) and start a transform job with it: the request
    sent."""
    package = approved_package(aws, model, version, use="batch-transformed")
    model_name = model_of_package(aws, model, version, package)
    unique = f"-{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(2)}"
    job_name = model_name[: 63 - len(unique)] + unique
    request = transform_request(aws, job_name, model_name, input_uri, output_uri, content_type)
    aws.call("sagemaker", "create_transform_job", **request)
    return request


def wait(aws: Aws, job_name: str) -> dict[str, Any]:
    """Until the job ends; its description. A failed or stopped job raises with SageMaker's reason."""
    from botocore.exceptions import WaiterError

    with contextlib.suppress(WaiterError):  # a failed job: its reason is read below
        aws.client("sagemaker").get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName=job_name, WaiterConfig={"Delay": 30, "MaxAttempts": 480}
        )
    described = aws.client("sagemaker").describe_transform_job(TransformJobName=job_name)
    if described["TransformJobStatus"] != "Completed":
        raise PravahError(
            f"transform job {job_name} {described['TransformJobStatus'].lower()}: "
            f"{described.get('FailureReason', 'no reason given')}"
        )
    return described
