"""AWS requests that can be shown instead of sent: `--dry-run` on every cloud command prints each request
exactly (service, operation, parameters), after botocore has validated it against the service model, as it
would before sending."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws.environments import Environment
from foundation.errors import PravahError


class Aws:
    def __init__(self, environment: Environment, dry_run: bool = False, say: Callable[[str], None] = print):
        self.environment, self.dry_run, self.say = environment, dry_run, say
        self._clients: dict[str, Any] = {}

    def client(self, service: str):
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            retries = Config(retries={"max_attempts": 3, "mode": "standard"})
            self._clients[service] = boto3.client(service, region_name=self.environment.region, config=retries)
        return self._clients[service]

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Send one request (or, in a dry run, validate and print it); AWS's refusals become a PravahError."""
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        client = self.client(service)
        if self.dry_run:
            show_request(client, operation, params, self.say)
            return {}
        check_request(client, operation, params)
        try:
            return getattr(client, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise PravahError(f"{service} {operation}: {error.get('Code')}: {error.get('Message')}") from None
        except (BotoCoreError, ParamValidationError) as exc:
            raise PravahError(f"{service} {operation}: {exc}") from None

    def put_json(self, uri: str, content: Any) -> None:
        """A JSON document written to an S3 object (`s3://bucket/key`), as UTF-8."""
        bucket, key = s3_location(uri)
        body = json.dumps(content, ensure_ascii=False).encode()
        self.call("s3", "put_object", Bucket=bucket, Key=key, ContentType="application/json", Body=body)

    def exists(self, service: str, operation: str, **params: Any) -> bool:
        """Ask AWS whether something exists before changing it (a describe or head request)."""
        return self.read(service, operation, **params) is not None

    def read(self, service: str, operation: str, **params: Any) -> dict[str, Any] | None:
        """A describe, get or head request's answer; None when the thing is not there. A dry run that cannot ask
        (no credentials or network) says so and takes it as not there."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client(service), operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in NOT_FOUND:
                return None
            raise PravahError(f"{service} {operation}: {error.get('Code')}: {error.get('Message')}") from None
        except BotoCoreError as exc:
            if not self.dry_run:
                raise PravahError(f"{service} {operation}: cannot reach AWS: {exc}") from None
            self.say(
                f"(dry run: cannot ask {service} {operation} {params} ({type(exc).__name__}); "
                "assuming it does not exist)"
            )
            return None


def s3_location(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/or/prefix` as (bucket, key or prefix)."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def download_prefix(s3, uri: str, destination: Path, share: tuple[int, int] = (0, 1)) -> int:
    """Every object under an S3 prefix, at its path below the prefix (an object named by the whole prefix keeps
    its file name), or with `share` (index, parts) every parts-th of them in key order from the index-th; how
    many objects the prefix holds (all of them, downloaded or not)."""
    bucket, prefix = s3_location(uri)
    index, parts = share
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            count += 1
            if (count - 1) % parts != index:
                continue
            relative = item["Key"][len(prefix) :].lstrip("/") or item["Key"].rsplit("/", 1)[-1]
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
    return count


# How a missing resource answers: S3's HEAD (404), SageMaker's describe calls (ValidationException or
# ResourceNotFound, by operation), IAM's get calls (NoSuchEntity).
NOT_FOUND = {
    "404",
    "NoSuchKey",
    "NotFound",
    "ResourceNotFound",
    "ValidationException",
    "NoSuchEntity",
    "NoSuchBucket",
    "NoSuchBucketPolicy",
    "NoSuchLifecycleConfiguration",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "RepositoryNotFoundException",
    "ResourceNotFoundException",  # EventBridge's rule
}


def check_request(client, operation: str, params: dict[str, Any]) -> str:
    """Refuse a request that AWS would refuse by its service model (types and required members, as botocore
    checks them, and enums, patterns, lengths and ranges, which botocore leaves to AWS); its API name."""
    from aws.service_model import request_problems

    service = client.meta.service_model.service_name
    name = client.meta.method_to_api_mapping[operation]
    problems = request_problems(service, name, params)
    if problems:
        raise PravahError(f"{service} {operation}: AWS would refuse this request:\n  " + "\n  ".join(problems))
    return name


def show_request(client, operation: str, params: dict[str, Any], say: Callable[[str], None]) -> None:
    """Check a request as AWS would (check_request), and print it."""
    name = check_request(client, operation, params)
    service = client.meta.service_model.service_name
    say(json.dumps({"service": service, "operation": name, "parameters": _shown(params)}, indent=2, default=str))


def _shown(params: dict[str, Any]) -> dict[str, Any]:
    """Bodies as their size and digest; everything else as sent."""
    shown = {}
    for key, value in params.items():
        if isinstance(value, bytes | bytearray):
            shown[key] = f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()}>"
        else:
            shown[key] = value
    return shown
