"""A transform step: a model scores a dataset inside a pipeline, as SageMaker's Batch Transform scores it.

The data is JSON lines (one {"text": ...}, or for a table's model one {"column": value, ...}, per line), a file or
a folder of them; the `predictions` output holds FILE.out for each, an answer line per input line, in order (an
{"error": ...} for a line no model can read). Locally the job is inference/transform_job.py in a step process
(cached, retried and committed whole as any step's code); on SageMaker a ModelStep makes a model of the trained
artifact with the project's serving image and a TransformStep runs it, so the same handlers answer both.

The model is a training step's (`train.model`), or, locally, the registered version that holds an alias
(`{model: NAME, alias: champion}`); SageMaker resolves no registry alias inside a pipeline, so a compiled
pipeline takes a trained one (a registered version is scored by `pravah predict FILE --target sagemaker`).
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from foundation.errors import PravahError, StepFailed
from foundation.typed import Check
from inference import transform_job
from pipelines.spec import (
    ModelRef,
    Output,
    ParamRef,
    PathRef,
    ProcessingStep,
    Retry,
    StepOutput,
    spec_class,
    step_kind,
)

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun, SageMakerCompiler
    from pipelines.records import Outcome, RunRecord

OUTPUT = "predictions"


@step_kind
@spec_class
class TransformStep:
    kind: Literal["transform"]
    description: str = ""
    model: StepOutput | ModelRef
    data: StepOutput | ParamRef | PathRef
    outputs: dict[str, Output] = field(default_factory=lambda: {OUTPUT: Output(area="results/predictions")})
    max_payload_mb: Annotated[int, Check(ge=1, le=transform_job.PAYLOAD_LIMIT_MB)] = 6
    instance_type: str | None = None  # on SageMaker; default: the environment's for transform jobs
    instance_count: Annotated[int, Check(ge=1)] = 1
    retry: Retry = field(default_factory=Retry)
    cache: bool = True
    depends_on: list[str] = field(default_factory=list)

    @staticmethod
    def _shorthand(value: Any) -> Any:
        """`outputs: AREA` places the one output, `predictions`."""
        if isinstance(value, dict) and isinstance(value.get("outputs"), str):
            return {**value, "outputs": {OUTPUT: value["outputs"]}}
        return value

    def __post_init__(self) -> None:
        if set(self.outputs) != {OUTPUT}:
            raise ValueError(f"a transform step has one output, '{OUTPUT}' (write outputs: AREA to place it)")


SPEC = TransformStep


def run_local(run: LocalRun, name: str, step: TransformStep, record: RunRecord) -> Outcome:
    if isinstance(step.model, ModelRef):
        model_name = str(run.value(step.model.model, record))
        if not run.registry.resolve(model_name=model_name, alias=step.model.alias):
            raise StepFailed(f"no version of model '{model_name}' holds the alias '{step.model.alias}'")
    job = ProcessingStep(
        kind="processing",
        code=transform_job.__name__,
        description=step.description,
        inputs={"model": step.model, "data": step.data},
        outputs=step.outputs,
        arguments={"max_payload_mb": step.max_payload_mb},
        retry=step.retry,
        cache=step.cache,
    )
    return run.run_code_step(name, job, record)


def compile_sagemaker(compiler: SageMakerCompiler, name: str, step: TransformStep) -> list[Any]:
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow import ModelStep
    from sagemaker.mlops.workflow import TransformStep as SageMakerTransformStep

    if isinstance(step.model, ModelRef):
        raise PravahError(
            f"step '{name}': model: SageMaker resolves no registry alias inside a pipeline; give a training "
            "step's model (e.g. train.model), or score a registered version with pravah predict FILE --target sagemaker"
        )
    instance_type = compiler.instance_type(name, step, compiler.env.instance_types.transform)
    model = ModelStep(
        name=f"{name}-model",
        step_args=compiler.model_builder(instance_type, step.model).build(),
        depends_on=step.depends_on or None,
    )
    area = f"s3://{compiler.env.bucket}/{step.outputs[OUTPUT].area}/{compiler.pipeline.name}"
    transformer = Transformer(
        model_name=model.properties.ModelName,
        instance_type=instance_type,
        instance_count=compiler.instance_count(name, step),
        output_path=Join(on="/", values=[area, ExecutionVariables.PIPELINE_EXECUTION_ID, OUTPUT]),
        accept=transform_job.ACCEPT,
        assemble_with="Line",
        strategy="MultiRecord",
        max_payload=step.max_payload_mb,
        max_concurrent_transforms=min(
            transform_job.MAX_CONCURRENT_TRANSFORMS, transform_job.PAYLOAD_LIMIT_MB // step.max_payload_mb
        ),
        sagemaker_session=compiler.session,
    )
    if isinstance(step.data, StepOutput):
        data = compiler.output_uri("data", step.data)
    elif isinstance(step.data, PathRef):
        data = compiler.uploaded(step.data)
    else:
        data = compiler.value(step.data)
    arguments = transformer.transform(
        data=data,
        content_type=transform_job.CONTENT_TYPE,
        split_type="Line",
        model_client_config=transform_job.MODEL_CLIENT_CONFIG,
    )
    transform = SageMakerTransformStep(
        name=name,
        step_args=arguments,
        description=step.description or None,
        cache_config=compiler.cache_config(step),
        retry_policies=compiler.retry(step) or None,
    )
    return [model, transform]


def output_uri(compiler: SageMakerCompiler, producer: Any, spec: TransformStep, output: str) -> Any:
    """Where the step's predictions land: the transform job's output path."""
    return producer.properties.TransformOutput.S3OutputPath
