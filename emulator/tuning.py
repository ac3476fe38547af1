"""A Tuning step, run as SageMaker runs a hyperparameter tuning job: the CreateHyperParameterTuningJob request
checked against the service model and sent, then a series of training jobs, each the job definition with its
static hyperparameters and one point of the ranges, run by the emulator's training contract; each trial's
objective read from its log by the job's metric definition (the last match, as SageMaker reads CloudWatch);
the best training job is the step's.

The points are drawn as SageMaker's Random strategy draws them (uniform, or log-uniform on a Logarithmic
scale; a grid's points in turn), seeded by RandomSeed; how Bayesian search picks its points is SageMaker's
own. Trials run one after another."""

from __future__ import annotations

import itertools
import math
import random
import re
from typing import Any

from aws.service_model import request_problems
from emulator.containers import JobFailed


def run_tuning(execution: Any, name: str, step: dict[str, Any]) -> str:
    """Run the step's tuning job on `execution` (emulator/execution.py's); what SageMaker would refuse, or no
    trial with an objective, is a JobFailed."""
    request = execution.resolve(step["Arguments"])
    job = f"{execution.execution_id[:12]}-{name}"[:32].rstrip("-")  # a tuning job's name: 32 characters at most
    request["HyperParameterTuningJobName"] = job
    problems = request_problems("sagemaker", "CreateHyperParameterTuningJob", request)
    if problems:
        raise JobFailed("SageMaker would refuse its CreateHyperParameterTuningJob:\n  " + "\n  ".join(problems))
    execution.aws.call("sagemaker", "create_hyper_parameter_tuning_job", **request)
    config, definition = request["HyperParameterTuningJobConfig"], request["TrainingJobDefinition"]
    (metric,) = [
        m
        for m in definition["AlgorithmSpecification"]["MetricDefinitions"]
        if m["Name"] == config["HyperParameterTuningJobObjective"]["MetricName"]
    ]
    summaries = []
    for number, point in enumerate(_points(config), start=1):
        trial = {key: value for key, value in definition.items() if key not in _NOT_TRAINING}
        trial |= {
            "TrainingJobName": f"{job}-{number:03d}-{execution.execution_id[-8:]}"[:63],
            "HyperParameters": {**definition.get("StaticHyperParameters", {}), **point},
        }
        problems = request_problems("sagemaker", "CreateTrainingJob", trial)
        if problems:
            raise JobFailed(
                f"trial {number}: SageMaker would refuse its CreateTrainingJob:\n  " + "\n  ".join(problems)
            )
        try:
            _, log = execution.train(trial)
        except JobFailed as exc:
            execution.say(f"    trial {number}: failed: {exc}")
            summaries.append(
                {
                    "TrainingJobName": trial["TrainingJobName"],
                    "TrainingJobStatus": "Failed",
                    "TunedHyperParameters": point,
                    "FailureReason": str(exc),
                }
            )
            continue
        found = re.findall(metric["Regex"], log.read_text(encoding="utf-8", errors="replace"))
        value = float(found[-1]) if found else None
        execution.say(f"    trial {number}: {point} -> {metric['Name']} {value}")
        summaries.append(
            {
                "TrainingJobName": trial["TrainingJobName"],
                "TrainingJobStatus": "Completed",
                "TunedHyperParameters": point,
                "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": metric["Name"], "Value": value},
            }
        )
    scored = [s for s in summaries if s.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value") is not None]
    if not scored:
        raise JobFailed(f"no trial of tuning job {job} reported {metric['Name']}")
    maximize = config["HyperParameterTuningJobObjective"]["Type"] == "Maximize"
    scored.sort(key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"], reverse=maximize)
    best = scored[0]
    execution.properties[name] = {
        **request,
        "HyperParameterTuningJobStatus": "Completed",
        "BestTrainingJob": best,
        "TrainingJobSummaries": scored,
    }
    return (
        f"{job}: {len(summaries)} trials; best {best['TrainingJobName']} "
        f"({metric['Name']} {best['FinalHyperParameterTuningJobObjectiveMetric']['Value']})"
    )


# what a tuning job's training definition holds that a training job's request does not
_NOT_TRAINING = {"StaticHyperParameters", "HyperParameterRanges", "TuningObjective", "DefinitionName"}


def _points(config: dict[str, Any]) -> list[dict[str, str]]:
    """Each trial's tuned hyperparameters, as strings (what a training job receives)."""
    ranges = config.get("ParameterRanges", {})
    if config["Strategy"] == "Grid":
        names = [r["Name"] for r in ranges.get("CategoricalParameterRanges", [])]
        values = [r["Values"] for r in ranges.get("CategoricalParameterRanges", [])]
        return [dict(zip(names, point, strict=True)) for point in itertools.product(*values)]
    draw = random.Random(config.get("RandomSeed", 0))
    points = []
    for _ in range(config["ResourceLimits"]["MaxNumberOfTrainingJobs"]):
        point = {r["Name"]: draw.choice(r["Values"]) for r in ranges.get("CategoricalParameterRanges", [])}
        for kind, whole in (("IntegerParameterRanges", True), ("ContinuousParameterRanges", False)):
            for given in ranges.get(kind, []):
                low, high = float(given["MinValue"]), float(given["MaxValue"])
                if given.get("ScalingType") == "Logarithmic":
                    value = math.exp(draw.uniform(math.log(low), math.log(high)))
                else:
                    value = draw.uniform(low, high)
                point[given["Name"]] = str(round(value)) if whole else f"{value:.6g}"
        points.append(point)
    return points
