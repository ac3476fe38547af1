"""The local runner on a tiny project: contract, caching, retries, failure, resume and kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.errors import StepFailed
from pipelines.home import Home
from pipelines.records import RunStore
from pipelines.runner import LocalRunner
from pipelines.spec import load_pipeline

STEPS = """
import json, os, sys, time
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = dict(zip(argv[::2], argv[1::2]))
    marker = Path(os.environ["TINY_MARKERS"])
    if "--processing-root" in args:
        root = Path(args["--processing-root"])
        if args.get("--mode") == "make":
            if (marker / "slow").exists():
                (marker / "started").touch()
                time.sleep(60)
            (root / "output" / "data" / "numbers.json").write_text(json.dumps([1, 2, 3]))
        else:
            numbers = json.loads((root / "input" / "model" / "model.json").read_text())["numbers"]
            score = sum(numbers) / 100
            (root / "output" / "report" / "score.json").write_text(json.dumps({"metrics": {"score": {"value": score}}}))
    else:  # training contract
        attempts = marker / "attempts"
        attempts.write_text(str(int(attempts.read_text() or 0) + 1) if attempts.exists() else "1")
        if (marker / "fail_train").exists():
            sys.exit("training exploded")
        if (marker / "flaky").exists() and attempts.read_text() == "1":
            sys.exit("first attempt fails")
        data = Path(os.environ["SM_CHANNEL_TRAIN"])
        numbers = json.loads((data / "numbers.json").read_text())
        factor = float(args["--factor"])
        seen = {k: os.environ[k] for k in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_NUM_CPUS", "SM_HPS")}
        model = {"numbers": [n * factor for n in numbers], "env": seen}
        (Path(os.environ["SM_MODEL_DIR"]) / "model.json").write_text(json.dumps(model))


if __name__ == "__main__":
    main()
"""

SPEC = """
name: tiny
parameters:
  factor: {type: float, default: 2.0}
  threshold: {type: float, default: 0.1}
steps:
  make:
    kind: processing
    code: tinysteps
    arguments: {mode: make}
    outputs: {data: processed/data}
  train:
    kind: training
    code: tinysteps
    inputs: {train: make.data}
    hyperparameters: {factor: {param: factor}}
    retry: {max_attempts: 2, backoff_seconds: 0}
  score:
    kind: processing
    code: tinysteps
    arguments: {mode: score}
    inputs: {model: train.model}
    outputs: {report: results/score}
    reports: {score: {output: report, file: score.json}}
  gate:
    kind: condition
    conditions:
      - left: {step: score, report: score, path: metrics.score.value}
        op: ge
        right: {param: threshold}
    if_steps: [done]
    else_steps: [stop]
  done:
    kind: fail
    message: never
  stop:
    kind: fail
    message: ["score", {step: score, report: score, path: metrics.score.value}, "is below", {param: threshold}]
"""


@pytest.fixture
def tiny(project, tmp_path, monkeypatch):
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("TINY_MARKERS", str(markers))
    project("tinysteps.py", STEPS)
    return project("configs/pipelines/tiny.yaml", SPEC), markers


def run(spec: Path, home: Path, **parameters):
    pipeline = load_pipeline(spec)
    runner = LocalRunner(pipeline, Home(home), max_parallel=2)
    return runner.run(pipeline.resolve_parameters({k: str(v) for k, v in parameters.items()}))


def latest_run(home: Path):
    return RunStore(Home(home)).all()[0]


def test_steps_get_the_sagemaker_contract_and_outputs_land_in_the_home(tiny, home):
    spec, _ = tiny
    with pytest.raises(StepFailed, match="never"):  # the gate passes and routes to 'done', a fail step
        run(spec, home)
    record = latest_run(home)
    model = json.loads((Path(record.steps["train"].outputs["model"].path) / "model.json").read_text())
    assert model["numbers"] == [2.0, 4.0, 6.0]
    assert json.loads(model["env"]["SM_HPS"]) == {"factor": "2.0"}
    assert Path(model["env"]["SM_MODEL_DIR"]).name == "model"
    assert record.steps["train"].outputs["model"].path.startswith(str(home / "models" / "tiny"))
    assert record.steps["make"].outputs["data"].path.startswith(str(home / "processed" / "data" / "tiny"))
    assert record.steps["gate"].details["outcome"] is True
    assert record.steps["stop"].status == "skipped"
    assert record.steps["score"].metrics == {"metrics.score": 0.12}
    assert not (home / ".scratch" / record.id).exists()


def test_a_failing_gate_ends_in_its_fail_step_with_the_numbers(tiny, home):
    spec, _ = tiny
    with pytest.raises(StepFailed, match=r"score 0.12 is below 0.5"):
        run(spec, home, threshold=0.5)


def test_second_run_is_cached_and_a_changed_hyperparameter_reruns_only_what_follows(tiny, home):
    spec, _ = tiny
    with pytest.raises(StepFailed):
        run(spec, home)
    with pytest.raises(StepFailed):
        run(spec, home)
    second = latest_run(home)
    assert [second.steps[s].status for s in ("make", "train", "score")] == ["cached"] * 3
    with pytest.raises(StepFailed):
        run(spec, home, factor=3)
    third = latest_run(home)
    assert third.steps["make"].status == "cached"
    assert third.steps["train"].status == "succeeded"
    assert "values.factor (2.0 → 3.0)" in third.steps["train"].reason
    assert third.steps["score"].status == "succeeded"
    assert third.steps["score"].reason == "input 'model' changed"


def test_a_modified_output_is_not_taken_from_the_cache(tiny, home):
    spec, _ = tiny
    with pytest.raises(StepFailed):
        run(spec, home)
    first = latest_run(home)
    (Path(first.steps["make"].outputs["data"].path) / "numbers.json").write_text("[9]")
    with pytest.raises(StepFailed):
        run(spec, home)
    again = latest_run(home)
    assert again.steps["make"].status == "succeeded"
    assert "removed or modified" in again.steps["make"].reason


def test_retries_follow_the_policy(tiny, home):
    spec, markers = tiny
    (markers / "flaky").touch()
    with pytest.raises(StepFailed, match="never"):
        run(spec, home)
    record = latest_run(home)
    assert record.steps["train"].attempts == 2


def test_failure_stops_downstream_and_resume_runs_only_what_is_left(tiny, home):
    spec, markers = tiny
    (markers / "fail_train").touch()
    with pytest.raises(StepFailed, match="training exploded"):
        run(spec, home)
    failed = latest_run(home)
    assert failed.status == "failed"
    assert failed.steps["train"].status == "failed" and failed.steps["train"].attempts == 2
    assert failed.steps["score"].status == "not-run"
    assert not list((home / "models").glob("**/model.json")), "a failed step leaves no output in place"
    (markers / "fail_train").unlink()
    pipeline = load_pipeline(spec)
    with pytest.raises(StepFailed, match="never"):
        LocalRunner(pipeline, Home(home)).resume(failed.id)
    resumed = RunStore(Home(home)).load(failed.id)
    assert resumed.steps["make"].status == "succeeded" and resumed.resumed_at
    assert resumed.steps["train"].status == "succeeded"


def processes_writing(path: Path) -> list[int]:
    """Processes that hold `path` open (the step writes its log until it ends)."""
    holders = []
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(path) for fd in fd_dir.iterdir()):
                holders.append(int(fd_dir.parent.name))
        except OSError:
            continue
    return holders


def test_kill_9_leaves_no_partial_output_and_resume_completes(tiny, home, tmp_path):
    spec, markers = tiny
    (markers / "slow").touch()
    env = {**os.environ, "PRAVAH_HOME": str(home)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "run", str(spec), "--no-tracking"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (markers / "started").exists():
        assert time.monotonic() < deadline, "the slow step never started"
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    record = latest_run(home)
    step_log = home / "logs" / record.id / "make.log"
    deadline = time.monotonic() + 10
    while processes_writing(step_log):
        assert time.monotonic() < deadline, "the step outlived its runner"
        time.sleep(0.1)
    assert record.status == "interrupted"
    assert record.steps["make"].status == "failed"
    assert not (home / "processed").exists(), "nothing was moved into place"
    (markers / "slow").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run", "--resume", record.id, "--no-tracking"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "never" in result.stderr  # ran to the end: the gate's 'done' fail step
    resumed = RunStore(Home(home)).load(record.id)
    assert resumed.steps["make"].status == "succeeded"
    assert resumed.steps["score"].status == "succeeded"
    assert not (home / ".scratch" / record.id).exists()
