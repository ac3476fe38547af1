"""`pravah compile`: the same YAML spec as a SageMaker Pipeline, built with the SageMaker Python SDK 3.x.

Offline and without credentials: nothing is uploaded while compiling. What the pipeline needs in S3 (the
source archive, the processing entry script, files named by `{path: ...}` inputs) is listed as uploads, under
content-hash keys, for `pravah pipeline upsert` to send first. Every step and model runs in the project's own
runtime image (aws/images.py: CPU or GPU by instance type, tagged with the digest of what its build reads).
Processing steps run `python -m MODULE` through `pipelines/sagemaker/container/processing_entry.py`; the
training step is the image's `train` (container/program.py), with the source archive as its `pravah-source`
channel; a registered model is served by the image's `serve`.

Not carried to the cloud: a `{model: ..., alias: ...}` input (the registry's champion) — SageMaker resolves no
registry alias inside a pipeline, so the cloud's evaluate step scores the candidate alone.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from aws.environments import Environment
from aws.images import image_uri, runtime_for
from foundation.errors import PravahError
from pipelines import kinds
from pipelines.graph import StepGraph
from pipelines.sagemaker.source_archive import CONTAINER, Upload, build_source_archive
from pipelines.spec import ParamRef, PathRef, Pipeline, ReportRef, StepOutput, branches, convert_value

CACHE_EXPIRY = "P30D"


@dataclass
class Compiled:
    pipeline: Any  # sagemaker.mlops.workflow.Pipeline
    definition: dict[str, Any]
    uploads: list[Upload] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def offline(environment: Environment) -> None:
    """What the SDK needs to compile with no network: a region for its image look-ups and clients created at
    import, and no IAM call to check the role."""
    os.environ.setdefault("AWS_DEFAULT_REGION", environment.region)
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")


def compile_pipeline(pipeline: Pipeline, environment: Environment) -> Compiled:
    """The SDK's notes while it compiles (fields SageMaker fills in at run time, "no jobs are started") are
    silenced: what matters is returned, and an error still raises. A step whose code cannot run is refused
    first: its containers would fail it after the upload, far from the user's line."""
    import logging
    import warnings

    from pipelines.stepcode import refuse_broken_step_code

    refuse_broken_step_code(pipeline)
    offline(environment)
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compiled = _Compiler(pipeline, environment).build()
    finally:
        logging.disable(logging.NOTSET)
    check_definition(compiled.definition, environment=environment)
    return compiled


def check_definition(
    definition: dict[str, Any], values: dict[str, Any] | None = None, environment: Environment | None = None
) -> None:
    """What SageMaker would refuse is an error here: the published pipeline-definition schema (with its named
    relaxations), each step's request against the SageMaker service model, with `values` (else the defaults)
    for the parameters, and what CreatePipeline and the job start refuse beyond both (references to missing
    steps or undeclared property files; with `environment`, roles of another account and images that cannot
    be pulled in its region)."""
    from aws.definition_rules import rule_problems
    from aws.service_model import definition_problems
    from pipelines.sagemaker.schema import schema_path, validate_definition

    problems = [f"schema: {problem}" for problem in validate_definition(definition, schema_path())]
    problems += definition_problems(definition, values)
    if environment is not None:
        problems += rule_problems(definition, environment.account, environment.region)
    if problems:
        raise PravahError("SageMaker would refuse this pipeline:\n  " + "\n  ".join(problems))


class _Compiler:
    def __init__(self, pipeline: Pipeline, environment: Environment):
        import boto3
        from sagemaker.core.workflow.pipeline_context import PipelineSession

        self.pipeline, self.env = pipeline, environment
        self.settings = environment.for_pipeline(pipeline.name)
        for setting in ("instance_types", "instance_counts"):
            unknown = set(getattr(self.settings, setting)) - set(pipeline.steps)
            if unknown:
                raise PravahError(
                    f"environment: pipelines.{pipeline.name}.{setting} names no step of the pipeline: "
                    f"{', '.join(sorted(unknown))} (steps: {', '.join(pipeline.steps)})"
                )
        self.session = PipelineSession(
            boto_session=boto3.Session(region_name=environment.region), default_bucket=environment.bucket
        )
        archive = build_source_archive(pipeline.project_root)
        self.source = f"s3://{environment.bucket}/{archive.key}"
        self.source_sha256 = archive.sha256  # the code archive the containers run
        self.archive_uri = f"{self.source}/source.tar.gz"
        self.entry_uri = f"{self.source}/processing_entry.py"
        entry = (CONTAINER / "processing_entry.py").read_bytes()
        self.uploads = [Upload(self.archive_uri, archive.data), Upload(self.entry_uri, entry)]
        self.notes: list[str] = []
        self.parameters = self._parameters()
        self.steps: dict[str, Any] = {}
        self.property_files: dict[tuple[str, str], Any] = {}
        self.helpers: list[Any] = []  # SageMaker steps a kind needs besides its own (a transform's model)

    def build(self) -> Compiled:
        from sagemaker.mlops.workflow import Pipeline as SageMakerPipeline

        self.graph = graph = StepGraph.build(self.pipeline)
        branching = {name for name, step in self.pipeline.steps.items() if any(branches(step))}
        branch_steps = {target for step in self.pipeline.steps.values() for _, _, target, _ in branches(step)}
        for name in sorted(graph.steps, key=lambda name: name in branching):  # branching steps last: their
            self.steps[name] = self._step(name, self.pipeline.steps[name])  # branches must exist as objects first
        top = [*self.helpers, *(self.steps[name] for name in graph.steps if name not in branch_steps)]
        compiled = SageMakerPipeline(
            name=self.pipeline.name,
            parameters=list(self.parameters.values()),
            steps=top,
            sagemaker_session=self.session,
        )
        return Compiled(compiled, json.loads(compiled.definition()), self.uploads, self.notes)

    # -- values ---------------------------------------------------------------------------------------------
    def _parameters(self) -> dict[str, Any]:
        from sagemaker.core.workflow.parameters import (
            ParameterBoolean,
            ParameterFloat,
            ParameterInteger,
            ParameterString,
        )

        types = {
            "string": ParameterString,
            "integer": ParameterInteger,
            "float": ParameterFloat,
            "boolean": ParameterBoolean,
        }
        declared = self.pipeline.spec.parameters
        unknown = set(self.settings.parameters) - set(declared)
        if unknown:
            raise PravahError(
                f"environment: pipelines.{self.pipeline.name}.parameters names no parameter of it: "
                f"{', '.join(sorted(unknown))} (parameters: {', '.join(declared)})"
            )
        defaults = {name: p.default for name, p in declared.items()}
        for name, value in self.settings.parameters.items():
            try:
                defaults[name] = convert_value(str(value), declared[name].type)
            except ValueError as exc:
                raise PravahError(f"environment: pipelines.{self.pipeline.name}.parameters.{name}: {exc}") from None
        return {name: types[p.type](name=name, default_value=defaults[name]) for name, p in declared.items()}

    def value(self, value: Any) -> Any:
        if isinstance(value, ParamRef):
            return self.parameters[value.param]
        if isinstance(value, ReportRef):
            from sagemaker.core.workflow.functions import JsonGet

            return JsonGet(step_name=value.step, property_file=self._property_file(value), json_path=value.path)
        return value

    def text(self, value: Any) -> Any:
        """A value as a command-line argument or hyperparameter (strings only): a string parameter stays itself,
        any other parameter becomes a one-part Std:Join, which SageMaker resolves to its text (a reference to a
        Float in a string field is refused at CreatePipeline); literals become text."""
        from sagemaker.core.workflow.functions import Join
        from sagemaker.core.workflow.parameters import ParameterString

        value = self.value(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, str | ParameterString):
            return value
        return Join(on="", values=[value])

    def _property_file(self, ref: ReportRef):
        found = self.property_files.get((ref.step, ref.report))
        if found is None:
            raise PravahError(
                f"step '{ref.step}' report '{ref.report}': only a processing step's reports can be read "
                "by a SageMaker condition (a PropertyFile)"
            )
        return found

    def output_uri(self, name: str, step_output: StepOutput) -> Any:
        spec = self.pipeline.steps[step_output.step]
        return kinds.BY_SPEC[type(spec)].output_uri(self, self.steps[step_output.step], spec, step_output.output)

    def uploaded(self, ref: PathRef) -> str:
        path = self.pipeline.project_root / ref.path
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        digest = hashlib.sha256()
        for file in files:
            digest.update(str(file.relative_to(path.parent)).encode() + b"\0" + file.read_bytes())
        uri = f"s3://{self.env.bucket}/pravah/inputs/{digest.hexdigest()[:16]}"
        self.uploads.append(Upload(uri, path=path))
        return uri

    def retry(self, step) -> list:
        from sagemaker.mlops.workflow.retry import StepExceptionTypeEnum, StepRetryPolicy

        if step.retry.max_attempts <= 1:
            return []
        faults = [StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING]
        return [
            StepRetryPolicy(
                exception_types=faults,
                max_attempts=step.retry.max_attempts,
                interval_seconds=max(1, int(step.retry.backoff_seconds)),
                backoff_rate=step.retry.backoff_rate,
            )
        ]

    def model_builder(self, instance_type: str, model: StepOutput) -> Any:
        """The SDK's ModelBuilder of a trained model output in the project's serving image for `instance_type`:
        what a register step registers and a transform step creates a model of."""
        from sagemaker.serve.model_builder import ModelBuilder

        return ModelBuilder(
            image_uri=self.image(instance_type),
            role_arn=self.env.role_arn,
            s3_model_data_url=self.output_uri("model", model),
            sagemaker_session=self.session,
            dependencies=None,
        )

    def cache_config(self, step) -> Any:
        from sagemaker.mlops.workflow import CacheConfig

        return CacheConfig(enable_caching=step.cache, expire_after=CACHE_EXPIRY)

    def instance_type(self, name: str, step, default: str) -> str:
        """This environment's for the step, else the step's own, else `default` (the environment's for its kind)."""
        return self.settings.instance_types.get(name) or step.instance_type or default

    def instance_count(self, name: str, step) -> int:
        """This environment's for the step, else the step's own."""
        return self.settings.instance_counts.get(name) or step.instance_count

    def image(self, instance_type: str) -> str:
        """The project's runtime image for an instance type (its GPU build on a GPU instance), in this
        environment's account and region."""
        return image_uri(self.env.account, self.env.region, runtime_for(instance_type))

    # -- steps ----------------------------------------------------------------------------------------------
    def _step(self, name: str, step) -> Any:
        """The kind's SageMaker steps (pipelines/kinds/): its own last, after any it needs."""
        *helpers, compiled = kinds.SAGEMAKER[type(step)](self, name, step)
        self.helpers += helpers
        return compiled
