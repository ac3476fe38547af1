"""A processing step: the user's module run as `python -m MODULE` with the processing contract (its inputs in
`<root>/input/NAME`, its outputs written to `<root>/output/NAME`). Locally the runner's code-step machinery runs
it (a step process, the cache, retries, outputs committed whole); on SageMaker a ProcessingStep in the project's
runtime image, started through `pipelines/sagemaker/container/processing_entry.py`, its reports PropertyFiles.

A `{model: NAME, alias: ...}` input (the registry's champion) is left out on SageMaker, which resolves no
registry alias inside a pipeline (the compiler's notes say so)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.contract import PROCESSING_ROOT
from pipelines.spec import ModelRef, ParamRef, PathRef, ProcessingStep, StepOutput

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun, SageMakerCompiler
    from pipelines.records import Outcome, RunRecord

SPEC = ProcessingStep


def run_local(run: LocalRun, name: str, step: ProcessingStep, record: RunRecord) -> Outcome:
    return run.run_code_step(name, step, record)


def compile_sagemaker(compiler: SageMakerCompiler, name: str, step: ProcessingStep) -> list[Any]:
    """A ProcessingStep; for a step with `shards` on more than one instance, two: `NAME-shards` on every
    instance, its `shards.input` shared among them by S3 key, then `NAME`, the merge, on one."""
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow import ProcessingStep as SageMakerProcessingStep

    from pipelines.sagemaker.source_archive import SOURCE_CHANNEL

    instances = compiler.instance_count(name, step)
    sharded = step.shards is not None and instances > 1

    def s3_input(input_name: str, uri: Any) -> ProcessingInput:
        split = sharded and step.shards.input == input_name
        return ProcessingInput(
            input_name=input_name,
            s3_input={
                "s3_uri": uri,
                "local_path": f"{PROCESSING_ROOT}/input/{input_name}",
                "s3_data_type": "S3Prefix",
                "s3_input_mode": "File",
                "s3_data_distribution_type": "ShardedByS3Key" if split else "FullyReplicated",
            },
        )

    def s3_output(output_name: str, folder: str) -> ProcessingOutput:
        area = step.outputs[output_name].area
        return ProcessingOutput(
            output_name=output_name,
            s3_output={
                "s3_uri": Join(
                    on="/",
                    values=[
                        f"s3://{compiler.env.bucket}/{area}/{compiler.pipeline.name}",
                        ExecutionVariables.PIPELINE_EXECUTION_ID,
                        folder,
                    ],
                ),
                "local_path": f"{PROCESSING_ROOT}/output/{output_name}",
                "s3_upload_mode": "EndOfJob",
            },
        )

    def processing_step(step_name: str, count: int, inputs: list, outputs: list, arguments: list, reports: dict):
        instance_type = compiler.instance_type(name, step, compiler.env.instance_types.processing)
        processor = ScriptProcessor(
            role=compiler.env.role_arn,
            image_uri=compiler.image(instance_type),
            command=["python3"],
            instance_type=instance_type,
            instance_count=count,
            volume_size_in_gb=step.volume_size_gb,
            sagemaker_session=compiler.session,
            base_job_name=f"pravah-{step_name}",
        )
        files = []
        for report_name, report in reports.items():
            compiler.property_files[name, report_name] = PropertyFile(
                name=report_name, output_name=report.output, path=report.file
            )
            files.append(compiler.property_files[name, report_name])
        return SageMakerProcessingStep(
            name=step_name,
            step_args=processor.run(code=compiler.entry_uri, inputs=inputs, outputs=outputs, arguments=arguments),
            description=step.description or None,
            property_files=files or None,
            depends_on=step.depends_on or None,
            cache_config=compiler.cache_config(step),
            retry_policies=compiler.retry(step) or None,
        )

    inputs = [s3_input(SOURCE_CHANNEL, compiler.archive_uri)]
    for input_name, ref in step.inputs.items():
        if isinstance(ref, StepOutput):
            inputs.append(s3_input(input_name, compiler.output_uri(input_name, ref)))
        elif isinstance(ref, PathRef):
            inputs.append(s3_input(input_name, compiler.uploaded(ref)))
        elif isinstance(ref, ParamRef):
            inputs.append(s3_input(input_name, compiler.parameters[ref.param]))
        elif isinstance(ref, ModelRef):
            compiler.notes.append(
                f"step '{name}': input '{input_name}' (the registry's {ref.alias}) is left out "
                "on SageMaker, which resolves no registry alias inside a pipeline"
            )
    arguments = [step.code, "--processing-root", PROCESSING_ROOT]
    for key, value in step.arguments.items():
        arguments += [f"--{key}", compiler.text(value)]
    if not sharded:
        outputs = [s3_output(output_name, output_name) for output_name in step.outputs]
        return [processing_step(name, instances, inputs, outputs, arguments, step.reports)]
    merge_outputs = step.shards.merge
    outputs = [  # the instances' parts of a merged output in a folder of their own: the merge writes the output
        s3_output(output_name, f"{output_name}-parts" if output_name in merge_outputs else output_name)
        for output_name in step.outputs
    ]
    shards = processing_step(shards_step_name(name), instances, inputs, outputs, arguments, {})
    parts = [
        s3_input(output_name, shards.properties.ProcessingOutputConfig.Outputs[output_name].S3Output.S3Uri)
        for output_name in [*merge_outputs, *step.shards.merge_reads]
    ]
    merged = [s3_output(output_name, output_name) for output_name in merge_outputs]
    merge = processing_step(name, 1, [inputs[0], *parts], merged, [*arguments, "--merge", "true"], step.reports)
    return [shards, merge]


def shards_step_name(name: str) -> str:
    """The step of a sharded processing step that runs on every instance (the step's own name is its merge)."""
    return f"{name}-shards"


def output_uri(compiler: SageMakerCompiler, producer: Any, spec: ProcessingStep, output: str) -> Any:
    if spec.shards and output not in spec.shards.merge:  # written by the instances, when there are several
        shards = next((h for h in compiler.helpers if h.name == shards_step_name(producer.name)), None)
        producer = shards or producer
    return producer.properties.ProcessingOutputConfig.Outputs[output].S3Output.S3Uri
