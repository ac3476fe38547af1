"""The SageMaker Model Registry backend: a model package group per model, a model package per version.

Lineage, the artifact digest and headline metrics go to CustomerMetadataProperties (values of at most
256 characters); the last status change to ApprovalDescription and metadata; aliases are tags on the
group (`pravah:alias:champion` = version), since SageMaker has no aliases of its own.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from foundation.errors import did_you_mean
from registry.versions import APPROVAL_STATUSES, PENDING, ModelVersion, RegistryError, now, prefixed, who

ALIAS_TAG = "pravah:alias:"
GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # CreateModelPackageGroup's rule
MAX_METADATA = 50  # SageMaker's limit on CustomerMetadataProperties entries


def _fit(value: Any) -> str:
    return str(value)[:256]


class SageMakerRegistry:
    def __init__(self, client, dry_run: bool = False, say=print):
        self.client, self.dry_run, self.say = client, dry_run, say

    @classmethod
    def from_environment(cls, region: str | None = None, dry_run: bool = False) -> SageMakerRegistry:
        import boto3

        region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")
        if not region:
            raise RegistryError("--target sagemaker needs a region: --region or AWS_DEFAULT_REGION")
        return cls(boto3.client("sagemaker", region_name=region), dry_run=dry_run)

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One request. In a dry run, what would change something is validated and printed, not sent; reads
        still run, so that the requests shown are the ones that would follow."""
        from botocore.exceptions import BotoCoreError, ClientError

        from aws.requests import check_request, show_request

        if self.dry_run and not operation.startswith(("describe_", "list_", "get_")):
            show_request(self.client, operation, kwargs, self.say)
            return {}
        check_request(self.client, operation, kwargs)
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise RegistryError(f"SageMaker {operation}: {error.get('Code')}: {error.get('Message')}") from None
        except BotoCoreError as exc:
            raise RegistryError(f"SageMaker {operation}: {exc}") from None

    def _ensure_group(self, name: str) -> None:
        groups = self._call("list_model_package_groups", NameContains=name).get("ModelPackageGroupSummaryList", [])
        if not any(g["ModelPackageGroupName"] == name for g in groups):
            self._call(
                "create_model_package_group",
                ModelPackageGroupName=name,
                ModelPackageGroupDescription=f"pravah model {name}",
            )

    def _packages(self, name: str, status: str | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"ModelPackageGroupName": name, "MaxResults": 100}
        if status:
            kwargs["ModelApprovalStatus"] = status
        summaries: list[dict[str, Any]] = []
        while True:
            page = self._call("list_model_packages", **kwargs)
            summaries += page.get("ModelPackageSummaryList", [])
            if not page.get("NextToken"):
                return summaries
            kwargs["NextToken"] = page["NextToken"]

    def register(
        self,
        *,
        name: str,
        artifact: Path | str,
        digest: str,
        files: dict[str, str],
        metrics: dict[str, float],
        lineage: dict[str, str],
        status: str,
        image_uri: str | None = None,
    ) -> ModelVersion:
        """Register an artifact already in S3 (model.tar.gz). The same digest again returns its version."""
        if status not in APPROVAL_STATUSES:
            raise RegistryError(f"approval status '{status}' is not one of {', '.join(APPROVAL_STATUSES)}")
        if not str(artifact).startswith("s3://"):
            raise RegistryError(f"SageMaker registers an artifact in S3 (s3://.../model.tar.gz), not {artifact}")
        if not image_uri:
            raise RegistryError("SageMaker needs the inference image URI of the model")
        if not GROUP_NAME.match(name):
            raise RegistryError(
                f"'{name}' is not a valid SageMaker model package group name (letters, digits and '-', at most 63)"
            )
        self._ensure_group(name)
        for summary in self._packages(name):
            existing = self._describe(summary["ModelPackageArn"])
            if existing.get("CustomerMetadataProperties", {}).get("pravah.artifact_digest") == digest:
                return self._to_version(existing)
        change = {"status": status, "by": who(), "at": now(), "reason": "registered"}
        metadata = {
            "pravah.artifact_digest": digest,
            "pravah.files": _fit(json.dumps(files)),
            "pravah.status_change": _fit(json.dumps(change)),
            **{f"pravah.{key}": _fit(value) for key, value in lineage.items()},
        }
        headline = {key: value for key, value in sorted(metrics.items()) if "." not in key}
        for key, value in headline.items():
            if len(metadata) < MAX_METADATA:
                metadata[f"metric.{key}"] = f"{value:.6g}"
        created = self._call(
            "create_model_package",
            ModelPackageGroupName=name,
            ModelPackageDescription=_fit(f"registered by pravah run {lineage.get('run_id', '-')}"),
            InferenceSpecification={
                "Containers": [{"Image": image_uri, "ModelDataUrl": str(artifact)}],
                "SupportedContentTypes": ["application/json"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus=status,
            CustomerMetadataProperties=metadata,
            ClientToken=digest[:32],
        )
        return self._to_version(self._describe(created["ModelPackageArn"]))

    def _describe(self, arn: str) -> dict[str, Any]:
        return self._call("describe_model_package", ModelPackageName=arn)

    def package_arn(self, name: str, version: int) -> str:
        for summary in self._packages(name):
            if summary.get("ModelPackageVersion") == version:
                return summary["ModelPackageArn"]
        known = sorted(s.get("ModelPackageVersion") for s in self._packages(name))
        have = f"; versions: {', '.join(map(str, known))}" if known else "; it has no versions"
        raise RegistryError(f"no version {version} of model package group '{name}'{have}")

    def get(self, name: str, version: int) -> ModelVersion:
        model = self._to_version(self._describe(self.package_arn(name, version)))
        model.aliases = [alias for alias, v in self._aliases(name).items() if v == version]
        return model

    def list(self, name: str | None = None, status: str | None = None) -> list[ModelVersion]:
        if status and status not in APPROVAL_STATUSES:
            raise RegistryError(f"'{status}' is not an approval status{did_you_mean(status, APPROVAL_STATUSES)}")
        if name:
            names = [name]
        else:
            groups = self._call("list_model_package_groups", MaxResults=100).get("ModelPackageGroupSummaryList", [])
            names = [g["ModelPackageGroupName"] for g in groups]
        versions = []
        for group in names:
            aliases = self._aliases(group)
            for summary in self._packages(group, status):
                model = self._to_version(self._describe(summary["ModelPackageArn"]))
                model.aliases = [alias for alias, v in aliases.items() if v == model.version]
                versions.append(model)
        return sorted(versions, key=lambda v: (v.name, v.version))

    def set_status(self, name: str, version: int, status: str, reason: str) -> ModelVersion:
        change = {"status": status, "by": who(), "at": now(), "reason": reason}
        arn = self.package_arn(name, version)
        # the whole metadata, with the change: AWS merges what it is sent into the package's metadata, but an
        # implementation that replaces it (moto's) would otherwise lose the lineage that deploy and monitoring read
        metadata = self._describe(arn).get("CustomerMetadataProperties", {})
        self._call(
            "update_model_package",
            ModelPackageArn=arn,
            ModelApprovalStatus=status,
            ApprovalDescription=_fit(f"{reason} (by {change['by']} at {change['at']})"),
            CustomerMetadataProperties={**metadata, "pravah.status_change": _fit(json.dumps(change))},
        )
        return self.get(name, version)

    def card_sources(self, version: ModelVersion) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """What a version's model card is made of: the manifest of its model.tar.gz (unpacked, checksums
        verified) and the evaluation report its package names as model quality statistics (None if none)."""
        import tempfile

        import boto3

        from artifact.contract import open_artifact, unpack_model_archive
        from aws.requests import s3_location

        s3 = boto3.client("s3", region_name=self.client.meta.region_name)
        with tempfile.TemporaryDirectory(prefix="pravah-card-") as folder:
            archive = Path(folder) / "model.tar.gz"
            s3.download_file(*s3_location(version.source), str(archive))
            manifest = open_artifact(unpack_model_archive(archive, Path(folder) / "model"))
        package = self._describe(self.package_arn(version.name, version.version))
        report = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
        if not report:
            return manifest, None
        bucket, key = s3_location(report)
        return manifest, json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def save_card(self, version: ModelVersion, card: dict[str, Any], files: dict[str, str]) -> str:
        """The card as a SageMaker Model Card named after the version (created, or updated: SageMaker keeps
        each content as a new card version), its content checked against the model card schema first; its ARN
        (in a dry run, its name)."""
        from registry.model_card import check_sagemaker_content, sagemaker_content

        content = sagemaker_content(card)
        check_sagemaker_content(content)
        suffix = f"-v{version.version}"
        name = version.name[: 63 - len(suffix)].rstrip("-") + suffix
        if self._card_exists(name):
            answer = self._call("update_model_card", ModelCardName=name, Content=json.dumps(content))
        else:
            answer = self._call(
                "create_model_card", ModelCardName=name, Content=json.dumps(content), ModelCardStatus="Draft"
            )
        return answer.get("ModelCardArn", name)

    def _card_exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.describe_model_card(ModelCardName=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"ResourceNotFound", "ValidationException"}:
                return False
            raise RegistryError(f"SageMaker describe_model_card: {exc}") from None
        return True

    def _group_arn(self, name: str) -> str:
        return self._call("describe_model_package_group", ModelPackageGroupName=name)["ModelPackageGroupArn"]

    def _aliases(self, name: str) -> dict[str, int]:
        tags = self._call("list_tags", ResourceArn=self._group_arn(name)).get("Tags", [])
        return {t["Key"].removeprefix(ALIAS_TAG): int(t["Value"]) for t in tags if t["Key"].startswith(ALIAS_TAG)}

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.package_arn(name, version)  # the version must exist
        self._call(
            "add_tags", ResourceArn=self._group_arn(name), Tags=[{"Key": ALIAS_TAG + alias, "Value": str(version)}]
        )

    @staticmethod
    def _to_version(package: dict[str, Any]) -> ModelVersion:
        metadata = package.get("CustomerMetadataProperties", {}) or {}
        containers = package.get("InferenceSpecification", {}).get("Containers", [{}])
        history = []
        if "pravah.status_change" in metadata:
            history.append(json.loads(metadata["pravah.status_change"]))
        elif package.get("ApprovalDescription"):
            history.append({"status": package.get("ModelApprovalStatus"), "reason": package["ApprovalDescription"]})
        created = package.get("CreationTime")
        return ModelVersion(
            name=package["ModelPackageGroupName"],
            version=int(package["ModelPackageVersion"]),
            status=package.get("ModelApprovalStatus", PENDING),
            source=containers[0].get("ModelDataUrl", ""),
            digest=metadata.get("pravah.artifact_digest"),
            metrics={**prefixed(metadata, "metric.", float), **_gate(metadata)},
            lineage=prefixed(
                metadata, "pravah.", str, skip={"artifact_digest", "files", "status_change", "gate_value"}
            ),
            history=history,
            created_at=created.isoformat() if hasattr(created, "isoformat") else created,
        )


def _gate(metadata: dict[str, str]) -> dict[str, float]:
    """The metric the pipeline's gate judged, by its name (the compiled pipeline records its name and value,
    whatever the task's other metrics)."""
    try:
        return {metadata["pravah.gate_metric"]: float(metadata["pravah.gate_value"])}
    except (KeyError, ValueError):
        return {}
