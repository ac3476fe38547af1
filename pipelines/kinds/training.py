"""A training step: the user's module run with the training contract (SM_MODEL_DIR, SM_CHANNEL_NAME,
SM_OUTPUT_DATA_DIR, its hyperparameters); with a `search`, one trial per sampled set of hyperparameters and the
best trial's model as the step's (locally Optuna through pipelines/sweep.py; on SageMaker a TuningStep). Locally
the runner's code-step machinery runs it; on SageMaker a TrainingStep whose image's `train` unpacks the source
archive (its `pravah-source` channel) and runs the module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.spec import ParamRef, PathRef, StepOutput, TrainingStep

if TYPE_CHECKING:
    from pipelines.kinds.base import LocalRun, SageMakerCompiler
    from pipelines.records import Outcome, RunRecord

SPEC = TrainingStep


def run_local(run: LocalRun, name: str, step: TrainingStep, record: RunRecord) -> Outcome:
    return run.run_search(name, step, record) if step.search else run.run_code_step(name, step, record)


def compile_sagemaker(compiler: SageMakerCompiler, name: str, step: TrainingStep) -> list[Any]:
    from sagemaker.core.training.configs import Compute, InputData, OutputDataConfig
    from sagemaker.mlops.workflow import TrainingStep as SageMakerTrainingStep
    from sagemaker.train.model_trainer import ModelTrainer

    from pipelines.sagemaker.source_archive import SOURCE_CHANNEL
    from pipelines.sagemaker.tuning import tuning_step

    hyperparameters = {key: compiler.text(value) for key, value in step.hyperparameters.items()}
    channels = [InputData(channel_name=SOURCE_CHANNEL, data_source=compiler.archive_uri)]  # the code it runs
    for channel, ref in step.inputs.items():
        if isinstance(ref, StepOutput):
            channels.append(InputData(channel_name=channel, data_source=compiler.output_uri(channel, ref)))
        elif isinstance(ref, PathRef):
            channels.append(InputData(channel_name=channel, data_source=compiler.uploaded(ref)))
        elif isinstance(ref, ParamRef):
            channels.append(InputData(channel_name=channel, data_source=compiler.parameters[ref.param]))
    instance_type = compiler.instance_type(name, step, compiler.env.instance_types.training)
    trainer = ModelTrainer(
        training_image=compiler.image(instance_type),
        role=compiler.env.role_arn,
        sagemaker_session=compiler.session,
        base_job_name=f"pravah-{name}",
        hyperparameters=hyperparameters,
        compute=Compute(
            instance_type=instance_type,
            instance_count=compiler.instance_count(name, step),
            volume_size_in_gb=step.volume_size_gb,
        ),
        output_data_config=OutputDataConfig(
            s3_output_path=f"s3://{compiler.env.bucket}/models/{compiler.pipeline.name}"
        ),
    )
    options = {
        "description": step.description or None,
        "depends_on": step.depends_on or None,
        "cache_config": compiler.cache_config(step),
        "retry_policies": compiler.retry(step) or None,
    }
    if step.search:  # a TuningStep: the training job's definition, run once per trial
        return [tuning_step(name, step.search, trainer, channels, options)]
    return [SageMakerTrainingStep(name=name, step_args=trainer.train(input_data_config=channels), **options)]


def output_uri(compiler: SageMakerCompiler, producer: Any, spec: TrainingStep, output: str) -> Any:
    """The model (SM_MODEL_DIR's archive) or the output data; a search's, from its best trial's job."""
    if spec.search:
        from pipelines.sagemaker.tuning import best_trial_output

        return best_trial_output(producer, compiler.env.bucket, f"models/{compiler.pipeline.name}", output)
    if output == "model":
        return producer.properties.ModelArtifacts.S3ModelArtifacts
    return producer.properties.OutputDataConfig.S3OutputPath
