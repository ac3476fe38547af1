"""A training step's hyperparameter search, run locally. Optuna proposes each trial's hyperparameters (TPE for
`bayesian`, or random, or grid); a trial is the training step with those values, run as any step is (its own
cache key, log and retries); `parallel` trials run at once; the best trial's model is the step's.

Trials are proposed in batches of `parallel` and their results told in trial order, never in the order they
finish: the same search on the same data then proposes the same trials, so a re-run, or a run resumed after a
kill, takes every finished trial from the cache and goes on from the first that did not finish."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import StepFailed
from pipelines.reports import read_report_value
from pipelines.spec import Search, TrainingStep

FINISHED = ("succeeded", "cached")


@dataclass
class Trial:
    number: int
    params: dict[str, Any]
    outcome: Any  # the runner's Outcome of the trial's training
    value: float | None = None  # the objective; None when the trial failed

    def summary(self) -> dict[str, Any]:
        """What the run record keeps of a trial."""
        outcome = self.outcome
        return {
            "trial": self.number,
            "params": self.params,
            "value": self.value,
            "status": outcome.status,
            "cache_key": outcome.cache_key,
            "log": outcome.log,
            "error": outcome.error,
        }


@dataclass
class SearchResult:
    trials: list[Trial] = field(default_factory=list)
    best: Trial | None = None
    stopped_early: bool = False

    def details(self, search: Search) -> dict[str, Any]:
        """What the run record keeps of the search (`pravah runs show` ranks the trials, tracking logs them)."""
        return {
            "objective": search.objective.metric,
            "goal": search.objective.goal,
            "strategy": search.strategy,
            "stopped_early": self.stopped_early,
            "best_trial": self.best and self.best.number,
            "trials": [trial.summary() for trial in self.trials],
        }


def objective_reader(step: TrainingStep) -> Callable[[Any], float]:
    """How to read a finished trial's objective: a number in one of the step's reports."""
    metric = step.search.objective.metric
    report_name, _, path = metric.partition(".")
    report = step.reports[report_name]

    def read(outcome: Any) -> float:
        value = read_report_value(Path(outcome.outputs[report.output].path) / report.file, path)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise StepFailed(f"search objective {metric} is {value!r}, not a number")
        return float(value)

    return read


def total_trials(search: Search) -> int:
    """A grid has as many trials as points; other strategies as many as the spec says."""
    return search.grid_size() if search.strategy == "grid" else search.trials


def _sampler(search: Search) -> Any:
    import optuna

    if search.strategy == "grid":
        space = {name: list(r.values) for name, r in search.parameters.items()}
        return optuna.samplers.GridSampler(space, seed=search.seed)
    if search.strategy == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    # TPE after a third of the trials (at least one batch) sampled at random
    return optuna.samplers.TPESampler(seed=search.seed, n_startup_trials=max(search.parallel, search.trials // 3))


def _suggest(trial: Any, search: Search) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, given in search.parameters.items():
        if given.type == "categorical":
            values[name] = trial.suggest_categorical(name, given.values)
        elif given.type == "integer":
            values[name] = trial.suggest_int(name, int(given.min), int(given.max), log=given.scale == "log")
        else:  # six significant digits: readable in logs, runs and the registry, and the same on every run
            values[name] = float(f"{trial.suggest_float(name, given.min, given.max, log=given.scale == 'log'):.6g}")
    return values


def run_search(
    search: Search,
    parallel: int,
    run_trial: Callable[[int, dict[str, Any]], Any],
    objective: Callable[[Any], float],
    on_trial: Callable[[Trial, Trial | None, int], None],
) -> SearchResult:
    """Run the search's trials, `parallel` at a time: `run_trial(number, params)` runs one and returns its
    outcome, `objective(outcome)` reads its objective, `on_trial(trial, best, total)` hears of each."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction=search.objective.goal, sampler=_sampler(search))
    total, result = total_trials(search), SearchResult()
    patience = max(3, total // 4)  # early stopping: this many trials in a row without a better objective
    stale = 0
    with ThreadPoolExecutor(parallel, thread_name_prefix="trial") as pool:
        while len(result.trials) < total and not result.stopped_early:
            batch = []
            for _ in range(min(parallel, total - len(result.trials))):
                asked = study.ask()
                number, params = len(result.trials) + len(batch) + 1, _suggest(asked, search)
                batch.append((asked, number, params, pool.submit(run_trial, number, params)))
            for asked, number, params, future in batch:
                trial = Trial(number, params, future.result())
                if trial.outcome.status in FINISHED:
                    trial.value = objective(trial.outcome)
                    study.tell(asked, trial.value)
                else:
                    study.tell(asked, state=optuna.trial.TrialState.FAIL)
                if trial.value is not None and _better(search, trial.value, result.best and result.best.value):
                    result.best, stale = trial, 0
                else:
                    stale += 1
                result.trials.append(trial)
                on_trial(trial, result.best, total)
            result.stopped_early = search.early_stopping == "auto" and stale >= patience
    return result


def _better(search: Search, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if search.objective.goal == "maximize" else value < best


def ranked(trials: list[dict[str, Any]], goal: str) -> list[dict[str, Any]]:
    """Trials as the run record keeps them, best first (failed ones last)."""
    sign = -1 if goal == "maximize" else 1
    return sorted(trials, key=lambda t: (t["value"] is None, sign * (t["value"] or 0), t["trial"]))
