"""A training step's hyperparameter search, locally: trials in parallel, each cached; the best trial's model
continues downstream; a re-run takes every trial from the cache; a killed search resumes without running its
finished trials again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.home import Home
from pipelines.records import RunStore
from pipelines.runner import LocalRunner
from pipelines.specfile import load_pipeline
from pipelines.sweep import ranked
from tests.support import markers_folder, run_cli, start_cli, wait_for

pytestmark = pytest.mark.slow

# The objective peaks at x = 3 (y adds a little); a trial can be made slow by a marker, to be killed mid-search.
STEPS = """
import json, os, sys, time
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = dict(zip(argv[::2], argv[1::2]))
    markers = Path(os.environ["SWEEP_MARKERS"])
    with (markers / "trials").open("a") as trials:
        trials.write(json.dumps(args) + "\\n")
    number = 1  # this trial's place, claimed atomically: two trials started together count apart
    while True:
        try:
            (markers / f"trial-{number}").touch(exist_ok=False)
            break
        except FileExistsError:
            number += 1
    if (markers / "slow").exists() and number > 5:
        (markers / "started").touch()
        time.sleep(120)
    x, y = float(args["--x"]), {"small": 0.0, "large": 0.5}[args["--y"]]
    score = 10 - (x - 3) ** 2 + y
    (Path(os.environ["SM_MODEL_DIR"]) / "model.json").write_text(json.dumps({"x": x, "y": args["--y"]}))
    (Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "metrics.json").write_text(json.dumps({"validation": {"score": score}}))
    print(f"validation score={score}")
    with (markers / "finished").open("a") as finished:
        finished.write("1\\n")


if __name__ == "__main__":
    main()
"""

SPEC = """
name: sweep
steps:
  train:
    kind: training
    code: sweepsteps
    hyperparameters: {x: 1.0, y: small, fixed: 7}
    reports: {training: {output: output, file: metrics.json}}
    search:
      parameters:
        x: {type: continuous, min: 0.1, max: 10, scale: log}
        y: {type: categorical, values: [small, large]}
      objective: {metric: training.validation.score, goal: maximize}
      strategy: bayesian
      trials: 12
      parallel: 2
"""


@pytest.fixture
def sweep(project, tmp_path, monkeypatch):
    markers = markers_folder(tmp_path, monkeypatch, "SWEEP_MARKERS")
    project("sweepsteps.py", STEPS)
    return project("configs/pipelines/sweep.yaml", SPEC), markers


def trials_run(markers: Path) -> list[dict]:
    return [json.loads(line) for line in (markers / "trials").read_text().splitlines()]


def test_a_search_runs_its_trials_and_the_best_model_is_the_steps(sweep, home):
    spec, markers = sweep
    record = LocalRunner(load_pipeline(spec), Home(home), max_parallel=2).run({})
    step = record.steps["train"]
    search = step.details["search"]
    assert step.status == "succeeded" and len(search["trials"]) == 12 and len(trials_run(markers)) == 12
    assert all(t["--fixed"] == "7" for t in trials_run(markers)), "the step's other hyperparameters are kept"
    best = ranked(search["trials"], "maximize")[0]
    assert search["best_trial"] == best["trial"] and step.metrics["search.best_value"] == best["value"]
    assert best["value"] == max(t["value"] for t in search["trials"])
    model = json.loads((Path(step.outputs["model"].path) / "model.json").read_text())
    assert model == {"x": best["params"]["x"], "y": best["params"]["y"]}, "the best trial's model is the step's"
    assert len({json.dumps(t["params"]) for t in search["trials"]}) == 12, "every trial tried something new"
    assert step.params["search.trial"] == best["trial"]
    assert (home / "logs" / record.id / f"train.trial-{best['trial']}.log").is_file()

    again = LocalRunner(load_pipeline(spec), Home(home), max_parallel=2).run({})
    assert again.steps["train"].status == "cached" and len(trials_run(markers)) == 12, "every trial from the cache"
    assert again.steps["train"].details["search"]["best_trial"] == best["trial"]


def test_runs_show_ranks_the_trials(sweep, home):
    spec, _ = sweep
    record = LocalRunner(load_pipeline(spec), Home(home), max_parallel=2).run({})
    shown = subprocess.run(
        [sys.executable, "-m", "cli", "--home", str(home), "runs", "show", record.id],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "trials of train (bayesian, maximize training.validation.score):" in shown
    rows = [line for line in shown.splitlines() if " trial " in line and "->" not in line][1:]
    values = [float(row.split()[-3]) for row in rows]
    assert len(rows) == 12 and values == sorted(values, reverse=True) and rows[0].lstrip().startswith("*")


def test_a_killed_search_resumes_without_running_its_finished_trials(sweep, home):
    spec, markers = sweep
    (markers / "slow").touch()  # the trials after the fifth hang until killed
    env = {**os.environ, "PRAVAH_HOME": str(home)}
    process = start_cli(home, "run", str(spec), "--no-tracking", start_new_session=True)
    ended, entries = markers / "finished", home / "cache" / "entries"

    def kept() -> int:  # trials whose outputs the runner has cached (an entry is written whole, by a rename)
        return len(list(entries.glob("*.json"))) if entries.is_dir() else 0

    # killed once a trial hangs and every finished trial is kept in the cache: killed before that, a finished
    # trial would never have been cached (which of the fifth batch's two trials hangs is the order they start in)
    def ready() -> bool:
        return (markers / "started").exists() and ended.exists() and kept() == len(ended.read_text().split()) >= 5

    wait_for(ready, "a trial to hang and five to be kept")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    started, finished = len(trials_run(markers)), len((markers / "finished").read_text().splitlines())
    (markers / "slow").unlink()
    record = RunStore(Home(home)).all()[0]
    done = subprocess.run(
        [sys.executable, "-m", "cli", "run", "--resume", record.id, "--no-tracking"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    resumed = RunStore(Home(home)).load(record.id)
    trials = resumed.steps["train"].details["search"]["trials"]
    assert len(trials) == 12 and all(t["status"] in ("succeeded", "cached") for t in trials)
    cached = [t for t in trials if t["status"] == "cached"]
    assert len(cached) == finished >= 4, f"the same trials proposed again, the finished ones from the cache: {cached}"
    assert len(trials_run(markers)) == started + 12 - len(cached), "only the trials that had not finished ran"


def test_each_trial_is_a_nested_mlflow_run_under_the_steps_run(sweep, home):
    """MLflow shows the search: under the step's run, a run per trial with its hyperparameters and objective."""
    import mlflow

    from pipelines.tracking import sync_run

    spec, _ = sweep
    record = LocalRunner(load_pipeline(spec), Home(home), max_parallel=2).run({})
    parent = sync_run(Home(home), record.id)
    client = mlflow.MlflowClient(Home(home).tracking_uri)
    experiment = client.get_run(parent).info.experiment_id
    (step_run,) = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent}'")
    trials = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{step_run.info.run_id}'")
    assert len(trials) == 12 and {tuple(sorted(t.data.params)) for t in trials} == {("x", "y")}
    best = record.steps["train"].details["search"]["best_trial"]
    (chosen,) = [t for t in trials if t.data.tags["pravah.best_trial"] == "true"]
    assert chosen.data.tags["pravah.trial"] == str(best)
    assert chosen.data.metrics["training.validation.score"] == max(
        t.data.metrics["training.validation.score"] for t in trials
    )


def test_a_search_from_the_command_line_and_its_mistakes(sweep, home, project):
    """`--set STEP.search.KEY=VALUE` tries a space without editing the spec (ranges typed by the spec's values);
    every mistake, on the command line or in a spec's search, is one line naming it."""
    spec, _ = sweep
    plain = project("configs/pipelines/plain.yaml", SPEC.split("    search:")[0].replace("name: sweep", "name: plain"))
    sets = [
        "--set",
        "train.search.x=0.5..5:log",
        "--set",
        "train.search.y=small,large",
        "--set",
        "train.search.objective=training.validation.score",
        "--set",
        "train.search.trials=4",
    ]
    done = run_cli(home, "run", str(plain), "--no-tracking", *sets)
    assert done.returncode == 0 and "train trial 4/4: x=" in done.stderr, done.stderr
    record = RunStore(Home(home)).all()[0]
    assert (
        record.options["overrides"]["train.search.x"] == "0.5..5:log"
        and len(record.steps["train"].details["search"]["trials"]) == 4
    )
    mistakes = {
        "train.search.fixed=a,b": "expected an integer, got 'a' (the spec's value of fixed is 7)",
        "train.search.trials=many": "trials is a whole number",
        "train.search.y=1..2": "a range LOW..HIGH is for a hyperparameter whose value in the spec is a number",
        "train.search.x=5..1": "min (5) must be below max (1)",
        "train.search.strategy=grid": "a grid search takes categorical ranges only",
        "train.search.objective=metrics.score": "starts with 'metrics', not one of the step's reports",
    }
    for given, said in mistakes.items():
        refused = run_cli(home, "run", str(spec), "--no-tracking", "--set", given)
        assert refused.returncode == 2 and said in refused.stderr and "Traceback" not in refused.stderr, (
            given,
            refused.stderr,
        )


def as_from_a_terminal() -> None:
    """In the child before it runs: Ctrl-C deliverable and not ignored, as a terminal starts a command (a test run
    started in the background of a non-interactive shell ignores SIGINT and SIGQUIT, and its children inherit
    that: `pravah run` then rightly ignores Ctrl-C, as any background job does)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_stops_a_search_without_starting_more_trials(sweep, home):
    """An interrupt stops the running trials and starts no other (no next batch, no retry): the run ends at
    once, interrupted, and resumes later like any."""
    spec, markers = sweep
    (markers / "slow").touch()  # the trials after the fifth hang until stopped
    process = start_cli(home, "run", str(spec), "--no-tracking", start_new_session=True, preexec_fn=as_from_a_terminal)
    wait_for(lambda: (markers / "started").exists(), "a trial to hang")
    started = len(trials_run(markers))
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C: to the run's whole process group, its steps too
    try:
        assert process.wait(timeout=60) == 130
    except subprocess.TimeoutExpired:  # what was still running, and the run's record as it stood (seen once)
        group = subprocess.run(["ps", "-o", "pid,ppid,stat,etime,args", "-g", str(process.pid)], capture_output=True)
        pids = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True).stdout.decode().split()
        masks = {
            pid: [line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Sig")]
            for pid in pids
            if Path(f"/proc/{pid}/status").exists()
        }
        records = sorted((home / "runs").glob("*.json"))
        os.killpg(process.pid, signal.SIGKILL)
        raise AssertionError(
            f"the run did not stop:\n{group.stdout.decode()}\n{masks}\n{records[-1].read_text()[:4000]}"
        ) from None
    assert len(trials_run(markers)) == started, "no trial started after the interrupt"
    assert RunStore(Home(home)).all()[0].status == "interrupted"


@pytest.mark.parametrize(("early_stopping", "ran"), [("auto", 4), ("off", 12)])
def test_early_stopping_auto_stops_after_a_quarter_of_the_trials_without_a_better_objective(early_stopping, ran):
    """The README's rule: max(3, trials/4) trials in a row that do not beat the best end the search."""
    from types import SimpleNamespace

    from pipelines.spec import Objective, Search, SearchRange
    from pipelines.sweep import run_search

    search = Search(
        parameters={"x": SearchRange(type="continuous", min=0.0, max=1.0)},
        trials=12,
        parallel=1,
        objective=Objective(metric="report.value"),
        early_stopping=early_stopping,
    )
    values = iter([0.9] + [0.5] * 11)  # the first trial is the best, and stays so
    found = run_search(
        search,
        1,
        lambda number, params: SimpleNamespace(status="succeeded"),
        lambda outcome: next(values),
        lambda *event: None,
    )
    assert len(found.trials) == ran and found.stopped_early == (early_stopping == "auto")
    assert found.best.number == 1
