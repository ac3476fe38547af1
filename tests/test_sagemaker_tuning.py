"""A training step's hyperparameter search compiled for SageMaker: a TuningStep whose metric definition reads what
the training code prints, and a registered model that is the best training job's."""

from __future__ import annotations

import re

from aws.definition import all_steps
from tests.test_sagemaker_compile import compile_for


def test_a_search_compiles_to_a_tuning_step_that_reads_what_training_prints(tmp_path, capsys):
    """The tuned pipeline's search is a TuningStep with the same ranges, strategy, limits and seed; its metric
    definition reads the line the training code prints; the registered model is the best training job's."""
    from aws.service_model import definition_problems
    from training.train import print_metrics

    definition = compile_for("text-classifier-tuned", "dev")
    tuning = next(step for step in definition["Steps"] if step["Type"] == "Tuning")
    config, job = tuning["Arguments"]["HyperParameterTuningJobConfig"], tuning["Arguments"]["TrainingJobDefinition"]
    assert config["Strategy"] == "Bayesian" and config["RandomSeed"] == 42
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 12}
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation.macro_f1"}
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "C", "MinValue": "0.5", "MaxValue": "50.0", "ScalingType": "Logarithmic"}
    ]
    assert {r["Name"] for r in ranges["IntegerParameterRanges"]} == {"char_ngram_max", "word_ngram_max"}
    assert ranges["CategoricalParameterRanges"] == [{"Name": "family", "Values": ["sklearn-text", "torch-text"]}]
    assert not {"C", "family"} & set(job["StaticHyperParameters"]), "a tuned hyperparameter is not also static"
    config["Strategy"], config["ResourceLimits"]["MaxParallelTrainingJobs"] = "Hyperbandit", 0  # as AWS checks it
    assert {p.split(": ")[0].rsplit(".", 1)[-1] for p in definition_problems(definition)} == {
        "Strategy",
        "MaxParallelTrainingJobs",
    }
    print_metrics({"validation": {"macro_f1": 0.655696, "accuracy": 0.66}, "training_seconds": 3.5})
    (regex,) = [m["Regex"] for m in job["AlgorithmSpecification"]["MetricDefinitions"]]
    assert re.search(regex, capsys.readouterr().out).group(1) == "0.655696"
    register = next(s for s in all_steps(definition) if s["Type"] == "RegisterModel")
    model = register["Arguments"]["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]["Std:Join"]["Values"]
    assert model[1] == {"Get": "Steps.train.BestTrainingJob.TrainingJobName"} and model[-1] == "model.tar.gz"
    metadata = register["Arguments"]["CustomerMetadataProperties"]  # the trial the version came from
    assert metadata["pravah.search_trial"] == {"Get": "Steps.train.BestTrainingJob.TrainingJobName"}
