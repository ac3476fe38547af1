"""`pravah cloud bootstrap`: what a first deploy needs in an empty account, created once and kept right.

- The bucket: public access blocked, encrypted at rest (SSE-S3), versioned (every object the
  pipelines write stays recoverable), and a lifecycle that expires Data Capture and the monitoring reports
  after the environment's `capture_retention_days` and old versions after 30 days.
- The SageMaker execution role (`role_arn`), trusted by sagemaker.amazonaws.com, with least privilege: the
  bucket, ECR pulls of the project's and SageMaker's images, its own logs, the jobs and packages a pipeline
  creates in this account and region, passing itself to SageMaker, Pravah's CloudWatch namespace, the alert
  topics, starting pipelines (retraining on drift).
- The ECR repositories of the project's images (`make images` pushes there), scanned on push.
- The alert topic of each endpoint named (`--endpoint`; `schedule deploy` creates its own endpoints' too).
- The events topic: SageMaker's events (a run failed or stopped, a version awaits approval) routed to it by
  EventBridge rules, in the local feed's words (cloud/events.py).
- The predict Lambda's package at the key the template points to (`pravah package lambda`'s zip).

Every step asks first and changes only what is missing or different, so a second run changes nothing; with
`--dry-run` every request is printed (validated against botocore's service model) and none is sent.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aws.definition_rules import ECR_IMAGE
from aws.environments import Environment
from aws.requests import Aws
from cloud.events import route_events
from cloud.monitoring import alert_topic_name, ensure_alert_topic
from cloud.policies import trust_policy
from foundation.errors import PravahError

LAMBDA_KEY = "pravah/lambda/predict.zip"  # the template's CodeKey
OLD_VERSIONS_DAYS = 30
FRAMEWORK_IMAGES_ACCOUNT = "763104351884"  # AWS's deep learning containers (PyTorch, Hugging Face) in most regions


def bootstrap(
    aws: Aws, endpoints: list[str], lambda_package: Callable[[Path], Path] | None, say: Callable[[str], None] = print
) -> None:
    """Create or correct each resource; `lambda_package(folder)` builds the Lambda zip (None: left out)."""
    check_account(aws)
    bucket(aws, say)
    execution_role(aws, say)
    for repository in own_repositories(aws.environment):
        ecr_repository(aws, repository, say)
    for endpoint in endpoints:
        say(f"alert topic of {endpoint}: {ensure_alert_topic(aws, endpoint)}")
    route_events(aws, say)
    if lambda_package is not None:
        with tempfile.TemporaryDirectory(prefix="pravah-lambda-") as folder:
            lambda_code(aws, lambda_package(Path(folder)).read_bytes(), say)


def lambda_code(aws: Aws, package: bytes, say: Callable[[str], None]) -> None:
    """The zip at the template's key, uploaded when its content differs (its SHA-256 is kept as metadata)."""
    digest = hashlib.sha256(package).hexdigest()
    found = aws.read("s3", "head_object", Bucket=aws.environment.bucket, Key=LAMBDA_KEY) or {}
    if found.get("Metadata", {}).get("sha256") != digest:
        aws.call(
            "s3", "put_object", Bucket=aws.environment.bucket, Key=LAMBDA_KEY, Body=package, Metadata={"sha256": digest}
        )
    say(f"the predict Lambda's package: s3://{aws.environment.bucket}/{LAMBDA_KEY} (sha256 {digest[:12]})")


def check_account(aws: Aws) -> None:
    """Refuse credentials of another account than the environment's (a placeholder left in its file)."""
    identity = aws.read("sts", "get_caller_identity")
    if identity and identity["Account"] != aws.environment.account:
        raise PravahError(
            f"these AWS credentials are for account {identity['Account']}, and the environment names account "
            f"{aws.environment.account}: put your account, role and bucket into its configs/environments file"
        )


def bucket(aws: Aws, say: Callable[[str], None]) -> None:
    env = aws.environment
    name = env.bucket
    if not aws.exists("s3", "head_bucket", Bucket=name):
        location = (
            {} if env.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": env.region}}
        )
        aws.call("s3", "create_bucket", Bucket=name, **location)
        say(f"bucket {name} {'would be ' if aws.dry_run else ''}created in {env.region}")
    blocked = {
        key: True for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    }
    _put_unless(
        aws,
        ("get_public_access_block", "PublicAccessBlockConfiguration"),
        blocked,
        "put_public_access_block",
        {"Bucket": name, "PublicAccessBlockConfiguration": blocked},
    )
    encryption = {
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]
    }
    _put_unless(
        aws,
        ("get_bucket_encryption", "ServerSideEncryptionConfiguration"),
        encryption,
        "put_bucket_encryption",
        {"Bucket": name, "ServerSideEncryptionConfiguration": encryption},
    )
    if (aws.read("s3", "get_bucket_versioning", Bucket=name) or {}).get("Status") != "Enabled":
        aws.call("s3", "put_bucket_versioning", Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    rules = lifecycle_rules(env)
    if (aws.read("s3", "get_bucket_lifecycle_configuration", Bucket=name) or {}).get("Rules") != rules:
        aws.call("s3", "put_bucket_lifecycle_configuration", Bucket=name, LifecycleConfiguration={"Rules": rules})
    state = "would be" if aws.dry_run else "is"
    say(
        f"bucket {name} {state}: public access blocked, encrypted, versioned, capture kept "
        f"{env.observability.capture_retention_days} days"
    )


def _put_unless(aws: Aws, read: tuple[str, str], wanted: dict[str, Any], operation: str, params: dict) -> None:
    """Send `operation` unless the read's member already holds `wanted`."""
    reader, member = read
    found = (aws.read("s3", reader, Bucket=params["Bucket"]) or {}).get(member)
    if found != wanted:
        aws.call("s3", operation, **params)


def lifecycle_rules(env: Environment) -> list[dict[str, Any]]:
    days = env.observability.capture_retention_days
    expire = [
        {
            "ID": f"expire-{prefix.rstrip('/')}",
            "Filter": {"Prefix": prefix},
            "Status": "Enabled",
            "Expiration": {"Days": days},
        }
        for prefix in ("capture/", "monitoring/")
    ]
    versions = {
        "ID": "expire-old-versions",
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": OLD_VERSIONS_DAYS},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    return [*expire, versions]


def role_name(env: Environment) -> str:
    return env.role_arn.rsplit("/", 1)[-1]


def execution_role(aws: Aws, say: Callable[[str], None]) -> None:
    env = aws.environment
    name = role_name(env)
    if not aws.exists("iam", "get_role", RoleName=name):
        path = env.role_arn.split(":role", 1)[1].rsplit("/", 1)[0] + "/"
        aws.call(
            "iam",
            "create_role",
            RoleName=name,
            Path=path,
            AssumeRolePolicyDocument=json.dumps(trust_policy("sagemaker.amazonaws.com")),
            Description="pravah: SageMaker pipelines, jobs, endpoints and monitoring",
        )
        say(f"role {env.role_arn} {'would be ' if aws.dry_run else ''}created (trusted by sagemaker.amazonaws.com)")
    policy = role_policy(env)
    found = aws.read("iam", "get_role_policy", RoleName=name, PolicyName="pravah")
    document = found and found["PolicyDocument"]
    if (json.loads(unquote(document)) if isinstance(document, str) else document) != policy:
        aws.call("iam", "put_role_policy", RoleName=name, PolicyName="pravah", PolicyDocument=json.dumps(policy))
    say(f"role {name}: least-privilege policy 'pravah' {'would be ' if aws.dry_run else ''}in place")


def role_policy(env: Environment) -> dict[str, Any]:
    """What the pipelines' jobs, endpoints and monitoring pipelines do with this role, and nothing else."""
    region, account, bucket_name = env.region, env.account, env.bucket
    sagemaker = f"arn:aws:sagemaker:{region}:{account}"
    repositories = [f"arn:aws:ecr:{region}:{account}:repository/{name}" for name in own_repositories(env)]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Bucket",
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
                "Resource": f"arn:aws:s3:::{bucket_name}",
            },
            {
                "Sid": "Objects",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{bucket_name}/*",
            },
            {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Sid": "Images",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                "Resource": [*repositories, f"arn:aws:ecr:{region}:{FRAMEWORK_IMAGES_ACCOUNT}:repository/*"],
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                "Resource": f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/*",
            },
            {
                "Sid": "PipelineJobs",
                "Effect": "Allow",
                "Action": [
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:CreateModelPackage",
                    "sagemaker:CreateModelPackageGroup",
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:AddTags",
                    "sagemaker:StartPipelineExecution",
                ],
                "Resource": [
                    f"{sagemaker}:{kind}/*"
                    for kind in (
                        "processing-job",
                        "training-job",
                        "hyper-parameter-tuning-job",
                        "model-package",
                        "model-package-group",
                        "pipeline",
                    )
                ],
            },
            {
                "Sid": "PassItself",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": env.role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
            {
                "Sid": "MonitoringMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "Pravah/Monitoring"}},
            },
            {
                "Sid": "Alerts",
                "Effect": "Allow",
                "Action": "sns:Publish",
                "Resource": f"arn:aws:sns:{region}:{account}:{alert_topic_name('*')}",
            },
        ],
    }


def own_repositories(env: Environment) -> list[str]:
    """The ECR repositories of this account that the project's images live in (aws/images.py), and the
    environment's own monitoring image's when it names another one here."""
    from aws.images import IMAGES

    names = [image.repository for image in IMAGES.values()]
    found = ECR_IMAGE.match(env.monitoring_image_uri)
    if found and found["account"] == env.account and found["region"] == env.region and found["repository"] not in names:
        names.append(found["repository"])
    return names


def ecr_repository(aws: Aws, repository: str, say: Callable[[str], None]) -> None:
    if aws.exists("ecr", "describe_repositories", repositoryNames=[repository]):
        return
    aws.call(
        "ecr",
        "create_repository",
        repositoryName=repository,
        imageTagMutability="MUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "AES256"},
    )
    say(f"ECR repository {repository} {'would be ' if aws.dry_run else ''}created (make images pushes there)")
