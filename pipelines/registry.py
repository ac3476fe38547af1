"""The model registry (MLflow backend): a registered version carries its artifact, checksums, metrics and
the lineage of the run that made it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.cache import verify_output
from pipelines.errors import StepFailed
from pipelines.records import OutputRecord, RunRecord

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")


def register_version(
    client, *, model_name: str, model_output: OutputRecord, metrics: dict[str, float],
    approval_status: str, pipeline_run: RunRecord, parent_run_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Create a new version of `model_name` from a model output whose hashes still match."""
    from mlflow.exceptions import MlflowException

    if approval_status not in APPROVAL_STATUSES:
        raise StepFailed(f"approval status '{approval_status}' is not one of {', '.join(APPROVAL_STATUSES)}")
    if not Path(model_output.path).is_dir() or not verify_output(model_output):
        raise StepFailed(f"model artifact {model_output.path} is missing or was modified since it was written")
    if parent_run_id is None:
        raise StepFailed("no tracking run to attach the model to")
    client.log_artifacts(parent_run_id, model_output.path, "model")
    source = f"{client.get_run(parent_run_id).info.artifact_uri}/model"
    try:
        client.create_registered_model(model_name, tags={"pravah.pipeline": pipeline_run.pipeline})
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    existing = client.search_model_versions(
        f"name = '{model_name}' and tags.`pravah.artifact_digest` = '{model_output.digest}'"
    )
    if existing:  # the same artifact again (a fully cached run): no duplicate version
        found = existing[0]
        return {
            "name": model_name,
            "version": int(found.version),
            "approval_status": found.tags.get("approval_status", approval_status),
            "existing": True,
        }
    tags = {
        "approval_status": approval_status,
        "pravah.run_id": pipeline_run.id,
        "pravah.spec_hash": pipeline_run.spec_hash,
        "pravah.artifact_path": model_output.path,
        "pravah.artifact_digest": model_output.digest,
        **{f"metric.{name}": f"{value:.6g}" for name, value in sorted(metrics.items())[:200]},
    }
    version = client.create_model_version(model_name, source, run_id=parent_run_id, tags=tags)
    return {"name": model_name, "version": int(version.version), "approval_status": approval_status}
