"""A register step: the trained model output becomes a registry version (through the registry worker) with its
metrics and lineage, under the approval status the spec gives; on SageMaker a ModelStep that registers a model
package with the same metadata (the CLI reads it)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation.fingerprint import hash_json
from pipelines.records import Outcome, OutputRecord, RunRecord
from pipelines.reports import flatten_metrics
from pipelines.spec import ProcessingStep, RegisterStep, ReportRef, StepOutput, TrainingStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun, SageMakerCompiler

SPEC = RegisterStep

OUTPUT_PROPERTY = "pravah.output."  # a registered package's metadata: where an upstream step wrote an output


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


def compile_sagemaker(compiler: SageMakerCompiler, name: str, step: RegisterStep) -> list[Any]:
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ModelStep

    endpoint = compiler.env.instance_types.endpoint
    builder = compiler.model_builder(endpoint, step.model)
    metrics = None
    if step.evaluation:
        report = compiler.pipeline.steps[step.evaluation.step].reports[step.evaluation.report]
        folder = compiler.output_uri(report.output, StepOutput(step=step.evaluation.step, output=report.output))
        metrics = ModelMetrics(
            model_statistics=MetricsSource(
                content_type="application/json", s3_uri=Join(on="/", values=[folder, report.file])
            )
        )
    properties = _registered_metadata(compiler, name, step)
    approval = compiler.value(step.approval_status)
    if compiler.env.approval.auto_approve and approval == "PendingManualApproval":
        approval = "Approved"
    arguments = builder.register(
        model_package_group_name=compiler.value(step.model_name),
        content_types=["application/json"],
        response_types=["application/json"],
        inference_instances=[endpoint],
        transform_instances=[compiler.env.instance_types.transform],
        approval_status=approval,
        model_metrics=metrics,
        customer_metadata_properties=properties,
        description=step.description or None,
    )
    return [ModelStep(name=name, step_args=arguments, depends_on=step.depends_on or None)]


def _registered_metadata(compiler: SageMakerCompiler, name: str, step: RegisterStep) -> dict[str, Any]:
    """What the local registry records of a version, for the SageMaker one to carry too (the CLI reads it):
    lineage (the execution, pipeline, spec and code, and where each processing step upstream wrote its
    outputs: `pravah.output.STEP.OUTPUT`, from which `schedule deploy` and `deploy` build the monitoring
    baseline), and, from the evaluation report, the artifact's digest, the training data's hash and the
    headline metrics."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables

    from steps.evaluate import HEADLINE_METRICS

    properties: dict[str, Any] = {
        "pravah.run_id": ExecutionVariables.PIPELINE_EXECUTION_ID,
        "pravah.pipeline": compiler.pipeline.name,
        "pravah.spec_hash": compiler.pipeline.source_hash,
        "pravah.source_sha256": compiler.source_sha256,
    }
    trained = compiler.pipeline.steps[step.model.step]
    if isinstance(trained, TrainingStep) and trained.search:  # the trial it came from: the best training job
        properties["pravah.search_trial"] = compiler.steps[step.model.step].properties.BestTrainingJob.TrainingJobName
    for upstream in sorted(compiler.graph.ancestors({name})):
        if isinstance(compiler.pipeline.steps[upstream], ProcessingStep):
            for output in compiler.pipeline.steps[upstream].outputs:
                produced = StepOutput(step=upstream, output=output)
                properties[f"{OUTPUT_PROPERTY}{upstream}.{output}"] = compiler.output_uri(output, produced)
    if step.evaluation:  # report values, as text (one-part Std:Joins); the gate's in every report, any task
        reads = {
            "pravah.artifact_digest": "model.artifact_sha256",
            "pravah.data_sha256": "model.training_data_sha256",
            "pravah.gate_metric": "comparison.metric",
            "pravah.gate_value": "comparison.candidate",
            **{
                f"metric.{metric}": f"{step.evaluation.path}.{metric}.value"
                for metric in HEADLINE_METRICS.get(step.evaluation.path, ())
            },
        }
        for key, path in reads.items():
            properties[key] = compiler.text(
                ReportRef(step=step.evaluation.step, report=step.evaluation.report, path=path)
            )
    return properties
