"""The local runner on a tiny project: contract, caching, retries, failure, resume and kill -9."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.errors import PravahError, StepFailed
from foundation.fingerprint import hash_tree
from foundation.home import Home
from pipelines.records import RunStore
from pipelines.runner import LocalRunner
from pipelines.specfile import load_pipeline
from tests.support import markers_folder, run_cli, start_cli, wait_for

STEPS = """
import json, os, sys, time
from pathlib import Path


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = dict(zip(argv[::2], argv[1::2]))
    marker = Path(os.environ["TINY_MARKERS"])
    if "--processing-root" in args:
        root = Path(args["--processing-root"])
        with (marker / "executions").open("a") as executions:  # what actually ran, to tell a resume from a re-run
            executions.write(args["--mode"] + "\\n")
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
        factor, offset = float(args["--factor"]), float(args["--offset"])
        seen = {k: os.environ[k] for k in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_NUM_CPUS", "SM_HPS")}
        model = {"numbers": [n * factor + offset for n in numbers], "env": seen}
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
    hyperparameters: {factor: {param: factor}, offset: 0}
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
    markers = markers_folder(tmp_path, monkeypatch, "TINY_MARKERS")
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
    assert json.loads(model["env"]["SM_HPS"]) == {"factor": "2.0", "offset": "0"}
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
    compared = run_cli(home, "runs", "compare", second.id, third.id).stdout
    assert "parameters: factor 2.0 → 3.0" in compared and "spec: same" in compared, compared
    assert re.search(
        r"train +cached +succeeded +inputs, code or values \(changed values.factor \(2.0 → 3.0\)\); model "
        r"output",
        compared,
    ) and re.search(r"make +cached +cached +same", compared), compared
    assert "score.metrics.score = 0.12 → 0.18  (+0.06)" in compared, compared
    overridden = load_pipeline(spec, {"train.offset": "1"})  # the same file, one value --set for one run
    with pytest.raises(StepFailed):
        LocalRunner(overridden, Home(home), max_parallel=2).run(overridden.resolve_parameters({"factor": "3"}))
    only_set = run_cli(home, "runs", "compare", third.id, latest_run(home).id).stdout
    assert "spec: same" in only_set and "set: train.offset - → 1" in only_set, only_set
    # the gate says what each condition came to; a run that only a fail step failed gets no resume hint
    shown = run_cli(home, "runs", "show", third.id).stdout
    assert "= 0.18 >= 0.1 is true: true, runs done" in shown and "resume with" not in shown, shown


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
    from pipelines.progress import format_summary

    assert f"resume with: pravah run --resume {failed.id}" in format_summary(failed), "a failed step: resume helps"
    assert failed.steps["score"].status == "not-run"
    assert not list((home / "models").glob("**/model.json")), "a failed step leaves no output in place"
    (markers / "fail_train").unlink()
    pipeline = load_pipeline(spec)
    with pytest.raises(StepFailed, match="never"):
        LocalRunner(pipeline, Home(home)).resume(failed.id)
    resumed = RunStore(Home(home)).load(failed.id)
    assert resumed.steps["make"].status == "succeeded" and resumed.resumed_at
    assert resumed.steps["train"].status == "succeeded"
    assert executions(markers) == ["make", "score"], "make ran once, before the failure; the resume ran only score"
    assert (markers / "attempts").read_text() == "3", "two failed attempts, then one in the resume"
    assert resumed.steps["make"].outputs == failed.steps["make"].outputs, "the first run's output was kept"


def executions(markers: Path) -> list[str]:
    path = markers / "executions"
    return path.read_text().split() if path.exists() else []


def test_resume_refuses_a_succeeded_run_a_changed_spec_and_parameters(tiny, home, project):
    spec, markers = tiny
    (markers / "fail_train").touch()
    with pytest.raises(StepFailed):
        run(spec, home)
    failed = latest_run(home)
    spec.write_text(spec.read_text().replace("message: never", "message: not ever"))
    changed = run_cli(home, "run", "--resume", failed.id, "--no-tracking")
    assert changed.returncode == 2 and "changed since run" in changed.stderr and "Traceback" not in changed.stderr
    with_params = run_cli(home, "run", "--resume", failed.id, "-p", "a=1")
    assert with_params.returncode == 2 and "--resume takes no -p" in with_params.stderr

    just_make = SPEC[: SPEC.index("  train:")].replace("name: tiny", "name: one")  # a pipeline that succeeds
    one_step = project("configs/pipelines/one.yaml", just_make)
    run(one_step, home)
    succeeded = latest_run(home)
    assert succeeded.status == "succeeded"
    with pytest.raises(PravahError, match="succeeded: there is nothing to resume"):
        LocalRunner(load_pipeline(one_step), Home(home)).resume(succeeded.id)


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
    process = start_cli(home, "run", str(spec), "--no-tracking")
    wait_for(lambda: (markers / "started").exists(), "the slow step to start")
    running = latest_run(home)
    refused = subprocess.run(
        [sys.executable, "-m", "cli", "run", "--resume", running.id, "--no-tracking"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2 and f"run {running.id} is still running (pid {process.pid}" in refused.stderr
    process.send_signal(signal.SIGKILL)
    process.wait()
    record = latest_run(home)
    step_log = home / "logs" / record.id / "make.log"
    wait_for(lambda: not processes_writing(step_log), "the step to end with its runner", timeout=60)
    assert record.status == "interrupted"
    assert record.steps["make"].status == "failed"
    assert not (home / "processed").exists(), "nothing was moved into place"
    (markers / "slow").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "cli", "run", "--resume", record.id, "--no-tracking"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "never" in result.stderr  # ran to the end: the gate's 'done' fail step
    resumed = RunStore(Home(home)).load(record.id)
    assert resumed.steps["make"].status == "succeeded"
    assert resumed.steps["score"].status == "succeeded"
    assert not (home / ".scratch" / record.id).exists()


PARALLEL_STEPS = """
import os, sys, time
from pathlib import Path


def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    me, other = args["--me"], args["--other"]
    markers = Path(os.environ["TINY_MARKERS"])
    (markers / me).touch()
    deadline = time.monotonic() + 120  # far longer than it takes: only a runner that runs them one by one waits it out
    while not (markers / other).exists():
        if time.monotonic() > deadline:
            sys.exit(f"{me} ran alone: {other} never started while it ran")
        time.sleep(0.05)
    (Path(args["--processing-root"]) / "output" / "out" / "done.txt").write_text(me)


if __name__ == "__main__":
    main()
"""
PARALLEL_SPEC = """
name: fork
steps:
  left:
    kind: processing
    code: meet
    arguments: {me: left, other: right}
    outputs: {out: processed/left}
  right:
    kind: processing
    code: meet
    arguments: {me: right, other: left}
    outputs: {out: processed/right}
  join:
    kind: processing
    code: meet
    arguments: {me: join, other: join}
    inputs: {a: left.out, b: right.out}
    outputs: {out: processed/join}
"""


def test_independent_steps_run_at_the_same_time(project, home, tmp_path, monkeypatch):
    markers_folder(tmp_path, monkeypatch, "TINY_MARKERS")  # the steps meet there
    project("meet.py", PARALLEL_STEPS)
    spec = project("configs/pipelines/fork.yaml", PARALLEL_SPEC)
    record = run(spec, home)  # each of left and right finishes only once the other has started
    assert [record.steps[s].status for s in ("left", "right", "join")] == ["succeeded"] * 3


def test_no_cache_runs_every_step_again_and_runs_list_and_graph_show_the_runs(tiny, home):
    spec, markers = tiny
    for extra in ([], ["--no-cache"]):
        done = run_cli(home, "run", str(spec), "--no-tracking", *extra)
        assert done.returncode == 1 and "never" in done.stderr
    assert executions(markers) == ["make", "score", "make", "score"], "--no-cache ran them again"
    again = latest_run(home)
    assert {again.steps[s].reason for s in ("make", "train", "score")} == {"--no-cache"}
    cached = run_cli(home, "run", str(spec), "--no-tracking")
    assert executions(markers) == ["make", "score", "make", "score"], "and the cache still serves the next run"
    assert "cached" in cached.stderr
    listed = run_cli(home, "runs", "list").stdout.splitlines()
    assert listed[0].split() == ["run", "pipeline", "status", "time", "steps"] and len(listed) == 4
    assert all(" tiny " in line and " failed " in line for line in listed[1:])
    assert "3 cached, 1 succeeded" in listed[1] and "4 succeeded" in listed[2]
    assert len(run_cli(home, "runs", "list", "--limit", "1").stdout.splitlines()) == 2
    mermaid = run_cli(home, "graph", str(spec), "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TD")
    assert "s_make -->|data → train| s_train" in mermaid and 's_gate{"gate<br/><small>condition</small>"}' in mermaid


def test_a_resumed_run_keeps_its_options(tiny, home):
    spec, markers = tiny
    options = ("-p", "factor=3", "--set", "train.offset=1")
    assert run_cli(home, "run", str(spec), "--no-tracking", *options).returncode == 1  # the cache holds each step
    (markers / "fail_train").touch()
    failing = run_cli(home, "run", str(spec), "--no-tracking", "--no-cache", *options)
    assert failing.returncode == 1 and "training exploded" in failing.stderr, failing.stderr
    failed = latest_run(home)
    (markers / "fail_train").unlink()
    resumed_run = run_cli(home, "run", "--resume", failed.id, "--no-tracking")
    assert resumed_run.returncode == 1 and "never" in resumed_run.stderr, resumed_run.stderr
    resumed = RunStore(Home(home)).load(failed.id)
    assert resumed.options == {"use_cache": False, "register": True, "overrides": {"train.offset": "1"}}
    assert resumed.parameters["factor"] == 3.0
    assert {resumed.steps[s].status for s in ("train", "score")} == {"succeeded"}, "not from the cache: --no-cache"
    model = json.loads((Path(resumed.steps["train"].outputs["model"].path) / "model.json").read_text())
    assert model["numbers"] == [4.0, 7.0, 10.0], "trained with the run's -p and --set, not the spec's defaults"
    refused = run_cli(home, "run", "--resume", failed.id, "--no-cache")
    assert refused.returncode == 2 and "keeps its parameters and options" in refused.stderr


def test_an_output_folder_once_written_is_never_rewritten(tiny, home):
    spec, _ = tiny
    pipeline = load_pipeline(spec)
    with pytest.raises(StepFailed, match="never"):
        run(spec, home)
    first = latest_run(home).steps
    model, data = Path(first["train"].outputs["model"].path), Path(first["make"].outputs["data"].path)
    before = (model / "model.json").read_bytes()
    with pytest.raises(StepFailed, match="never"):
        LocalRunner(pipeline, Home(home), use_cache=False).run(pipeline.resolve_parameters({}))
    again = latest_run(home).steps
    assert again["make"].outputs["data"].path == str(data), "the same bytes again: the same folder"
    assert again["train"].outputs["model"].path != str(model), "other bytes (it records its scratch path)"
    assert (model / "model.json").read_bytes() == before, "what the first run's records name is as it was"
    assert hash_tree(model).digest == first["train"].outputs["model"].digest
