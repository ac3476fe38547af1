"""A training step's search as a SageMaker TuningStep (CreateHyperParameterTuningJob): the same ranges,
objective, strategy, trial count, parallelism, early stopping and seed as the local search (pipelines/sweep.py).

SageMaker reads a trial's objective from its log: the training code prints `metric NAME=VALUE` for every
number of its report (training/train.py `print_metrics`), and the tuning job's metric definition reads that
line. The best trial's model is `s3://BUCKET/PREFIX/{best training job}/output/model.tar.gz`."""

from __future__ import annotations

from typing import Any

from pipelines.spec import Search

STRATEGIES = {"bayesian": "Bayesian", "random": "Random", "grid": "Grid"}
SCALES = {"linear": "Linear", "log": "Logarithmic"}
ARCHIVES = {"model": "model.tar.gz", "output": "output.tar.gz"}  # SM_MODEL_DIR and SM_OUTPUT_DATA_DIR, as uploaded


def objective_metric(search: Search) -> tuple[str, str]:
    """The tuning job's objective metric name and the regex that reads it from a trial's log: the objective
    without its report's name (`training.validation.macro_f1` -> `validation.macro_f1`)."""
    from training.train import metric_regex

    name = search.objective.metric.split(".", 1)[1]
    return name, metric_regex(name)


def tuning_step(name: str, search: Search, trainer: Any, channels: list, options: dict[str, Any]) -> Any:
    from sagemaker.core.parameter import CategoricalParameter, ContinuousParameter, IntegerParameter
    from sagemaker.mlops.workflow import TuningStep
    from sagemaker.train.tuner import HyperparameterTuner

    ranges: dict[str, Any] = {}
    for key, given in search.parameters.items():
        if given.type == "categorical":
            ranges[key] = CategoricalParameter([str(value) for value in given.values])
        elif given.type == "integer":
            ranges[key] = IntegerParameter(int(given.min), int(given.max), scaling_type=SCALES[given.scale])
        else:
            ranges[key] = ContinuousParameter(given.min, given.max, scaling_type=SCALES[given.scale])
    metric, regex = objective_metric(search)
    tuner = HyperparameterTuner(
        model_trainer=trainer,
        objective_metric_name=metric,
        hyperparameter_ranges=ranges,
        metric_definitions=[{"Name": metric, "Regex": regex}],
        strategy=STRATEGIES[search.strategy],
        objective_type=search.objective.goal.capitalize(),
        max_parallel_jobs=search.parallel,
        max_jobs=None if search.strategy == "grid" else search.trials,  # a grid runs each of its points once
        early_stopping_type="Off" if search.strategy == "grid" else search.early_stopping.capitalize(),
        random_seed=search.seed,
        base_tuning_job_name=f"pravah-{name}"[:20],
    )
    return TuningStep(name=name, step_args=tuner.tune(inputs=channels), **options)


def best_trial_output(step: Any, bucket: str, prefix: str, output: str) -> Any:
    """Where the best trial's `model` or `output` lands (the training jobs' OutputDataConfig is
    s3://BUCKET/PREFIX)."""
    from sagemaker.core.workflow.functions import Join

    best = step.properties.BestTrainingJob.TrainingJobName
    return Join(on="/", values=[f"s3://{bucket}/{prefix}", best, "output", ARCHIVES[output]])
