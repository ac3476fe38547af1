"""A register step: the trained model output becomes a registry version (through the registry worker) with its
metrics and lineage, under the approval status the spec gives (SageMaker's RegisterModel)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation.fingerprint import hash_json
from pipelines.records import Outcome, OutputRecord, RunRecord
from pipelines.reports import flatten_metrics
from pipelines.spec import RegisterStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun


def run_local(run: LocalRun, name: str, step: RegisterStep, record: RunRecord) -> Outcome:
    """Register the model output; the same artifact, name and status again is a cache hit, so a
    cached re-run neither duplicates the version nor waits for the registry. An experiment run (--no-register)
    skips it."""
    if not run.register:
        return Outcome(status="skipped", reason="--no-register: no version made")
    model_output = record.steps[step.model.step].outputs[step.model.output]
    evaluation = run.operand(step.evaluation, record) if step.evaluation else {}
    metrics = flatten_metrics(evaluation)
    model_name = str(run.value(step.model_name, record))
    approval_status = str(run.value(step.approval_status, record))
    components = {
        "definition": {
            "kind": "register",
            "model_name": model_name,
            "approval_status": approval_status,
            "registry": run.home.tracking_uri,
        },
        "inputs": {"model": model_output.digest, "metrics": hash_json(metrics)},
        "code": {},
        "libraries": {},
    }
    key = hash_json(components)
    params = {"model_name": model_name, "approval_status": approval_status}
    hit, reason = run.cache_check(name, key, components, cacheable=True)
    held = hit and hit[2]["registered"]
    status = held and run.registry.status_of(model_name=model_name, version=held["version"], digest=model_output.digest)
    if hit and status is None:
        hit, reason = None, f"version {held['version']} is no longer in the registry"
    if hit:
        details = {"registered": {**held, "approval_status": status}}  # as it is now, not as it was registered
        return Outcome(
            status="cached",
            cache_key=key,
            cache_hit=True,
            reason=f"from run {hit[0]}",
            details=details,
            params=params,
        )
    version = run.registry.register(
        run_id=record.id,
        model_name=model_name,
        model_output=asdict(model_output),
        metrics=metrics,
        approval_status=approval_status,
        lineage=_lineage(run, name, step, record, model_output, evaluation),
    )
    details = {"registered": version}
    run.cache.store(key, run.pipeline.name, name, record.id, {}, components, details)
    return Outcome(status="succeeded", cache_key=key, reason=reason, details=details, params=params)


def _lineage(
    run: LocalRun, name: str, step: RegisterStep, record: RunRecord, model_output: OutputRecord, evaluation: Any
) -> dict[str, str]:
    """Where a registered version comes from: the run, the data it trained on, the code that trained it, the
    metric its gate judged (`gate_metric` of a `test_metrics` report), and where each step upstream wrote its
    outputs (`output.STEP.OUTPUT`, as the SageMaker engine records them: the monitoring baseline is built from
    the `profile` and `evaluation` outputs)."""
    manifest, trained = Path(model_output.path) / "model.json", record.steps[step.model.step]
    trained_on = json.loads(manifest.read_text()).get("training_data_sha256") if manifest.is_file() else None
    outputs = {
        f"output.{upstream}.{output}": produced.path
        for upstream in sorted(run.graph.ancestors({name}) - {name})
        if upstream in record.steps
        for output, produced in record.steps[upstream].outputs.items()
    }
    return {
        "run_id": record.id,
        "pipeline": record.pipeline,
        "spec_hash": record.spec_hash,
        "data_sha256": trained_on or "unknown",
        "code_sha256": hash_json(run.code[step.model.step].files),
        "training_step_key": record.steps[step.model.step].cache_key or "",
        **({"search_trial": str(trial)} if (trial := trained.details.get("search", {}).get("best_trial")) else {}),
        **({"gate_metric": g} if (g := isinstance(evaluation, dict) and evaluation.get("gate_metric")) else {}),
        **outputs,
    }
