"""`pravah pipeline upsert|start|status|executions`: the compiled pipeline on SageMaker, with boto3."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aws.requests import Aws
from foundation.errors import PravahError
from pipelines.sagemaker.compiler import Compiled
from pipelines.spec import Pipeline, convert_value


def upsert(aws: Aws, pipeline: Pipeline, compiled: Compiled) -> str:
    """Version the bucket (and replicate it, when the environment says so), upload what the definition refers
    to (objects already there under their content-hash keys are kept), then create the pipeline, or update it
    when it exists. Returns its ARN (empty in a dry run)."""
    protect_bucket(aws)
    for upload in compiled.uploads:
        for key, body in upload.objects():
            if aws.exists("s3", "head_object", Bucket=aws.environment.bucket, Key=key):
                aws.say(f"kept s3://{aws.environment.bucket}/{key} (same content)")
                continue
            aws.call("s3", "put_object", Bucket=aws.environment.bucket, Key=key, Body=body)
    return put_pipeline(aws, pipeline.name, compiled.definition, pipeline.spec.description or pipeline.name)


def put_pipeline(aws: Aws, name: str, definition: dict[str, Any], description: str) -> str:
    """Create the pipeline, or update it when it exists; its ARN (empty in a dry run). The same definition is
    the same create request: a retried create makes one pipeline."""
    request = {
        "PipelineName": name,
        "PipelineDefinition": json.dumps(definition),
        "RoleArn": aws.environment.role_arn,
        "PipelineDescription": description[:3072],
    }
    if aws.exists("sagemaker", "describe_pipeline", PipelineName=name):
        return aws.call("sagemaker", "update_pipeline", **request).get("PipelineArn", "")
    return aws.call("sagemaker", "create_pipeline", **request, ClientRequestToken=_token(definition)).get(
        "PipelineArn", ""
    )


def start(aws: Aws, pipeline: Pipeline, overrides: dict[str, str]) -> str:
    parameters = []
    for name, raw in overrides.items():
        if name not in pipeline.spec.parameters:
            raise PravahError(f"pipeline {pipeline.name} has no parameter '{name}'")
        try:
            value = convert_value(raw, pipeline.spec.parameters[name].type)
        except ValueError as exc:
            raise PravahError(f"-p {name}={raw}: {exc}") from None
        parameters.append({"Name": name, "Value": str(value).lower() if isinstance(value, bool) else str(value)})
    token = uuid.uuid4().hex  # one start, even if the request is retried
    answer = aws.call(
        "sagemaker",
        "start_pipeline_execution",
        PipelineName=pipeline.name,
        PipelineParameters=parameters,
        ClientRequestToken=token,
    )
    return answer.get("PipelineExecutionArn", "")


def status(aws: Aws, execution_arn: str) -> dict[str, Any]:
    return aws.call("sagemaker", "describe_pipeline_execution", PipelineExecutionArn=execution_arn)


def executions(aws: Aws, pipeline_name: str, newest: int | None = None) -> list[dict[str, Any]]:
    """The pipeline's executions, newest first (the `newest` of them, when given)."""
    limit = {} if newest is None else {"SortBy": "CreationTime", "MaxResults": newest}
    answer = aws.call(
        "sagemaker", "list_pipeline_executions", PipelineName=pipeline_name, SortOrder="Descending", **limit
    )
    return answer.get("PipelineExecutionSummaries", [])


def _token(definition: dict[str, Any]) -> str:
    """The same definition is the same request: a retried create never makes two pipelines."""
    import hashlib

    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:64]


def protect_bucket(aws: Aws) -> None:
    """Every object the pipeline writes stays recoverable: the bucket is versioned, and replicated to another
    bucket when the environment names one."""
    bucket, replication = aws.environment.bucket, aws.environment.replication
    if (aws.read("s3", "get_bucket_versioning", Bucket=bucket) or {}).get("Status") != "Enabled":
        aws.call("s3", "put_bucket_versioning", Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if replication is not None:
        aws.call(
            "s3",
            "put_bucket_replication",
            Bucket=bucket,
            ReplicationConfiguration={
                "Role": replication.role_arn,
                "Rules": [
                    {
                        "ID": "pravah",
                        "Status": "Enabled",
                        "Priority": 1,
                        "Filter": {"Prefix": ""},
                        "DeleteMarkerReplication": {"Status": "Enabled"},
                        "Destination": {"Bucket": f"arn:aws:s3:::{replication.destination_bucket}"},
                    }
                ],
            },
        )
