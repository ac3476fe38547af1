"""A new user's own project, from `pravah init`: it runs as it is, its step's own test passes, and each way of
breaking the step's code gets one clear line (the user's file and line), a failed run record and no traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from foundation.home import Home
from pipelines.records import RunStore

STEP = "mysteps/count_words.py"


def pravah(project: Path, *args: str) -> subprocess.CompletedProcess:
    """`pravah ARGS` in the project's folder, as its user runs it (the project's own .pravah, no PRAVAH_HOME)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PRAVAH_HOME", "PRAVAH_PROJECT"}}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def project(tmp_path) -> Path:
    made = subprocess.run(
        [sys.executable, "-m", "cli", "init", str(tmp_path / "mine")], capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    return tmp_path / "mine"


def test_an_initialised_project_runs_as_it_is_and_keeps_its_results_when_piped(project):
    ran = pravah(project, "run", "starter", "-p", "min_words=3", "--no-tracking")
    assert ran.returncode == 0, ran.stderr
    # the result on stdout (`> out.txt`, `| tee`, `| grep` keep it), the progress on stderr
    assert re.search(r"^run \S+  pipeline starter  SUCCEEDED", ran.stdout, re.M), ran.stdout
    assert "✓ count succeeded" in ran.stderr and "SUCCEEDED" not in ran.stderr
    record = RunStore(Home(project / ".pravah")).all()[0]
    counts = Path(record.steps["count"].outputs["counts"].path) / "counts.json"
    assert json.loads(counts.read_text()) == {
        "negative": {"reviews": 3, "words": 22},
        "positive": {"reviews": 3, "words": 34},
    }
    shown = pravah(project, "runs", "show", "latest", "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == record.id
    assert pravah(project, "runs", "show", record.id[:17]).stdout.startswith(f"run {record.id}")  # a unique start
    own_tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert own_tests.returncode == 0 and "1 passed" in own_tests.stdout, own_tests.stdout + own_tests.stderr
    again = subprocess.run(
        [sys.executable, "-m", "cli", "init", str(project)], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2 and "already holds a project" in again.stderr, again.stderr


def _line(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _replace(path: Path, old: str, new: str) -> None:
    source = path.read_text()
    assert old in source, old
    path.write_text(source.replace(old, new))


# How the user breaks the project, and the line that must tell them: (what `check` says or None when only
# running shows it, what the failed step says). {line:TEXT} is the number of the line of STEP holding TEXT.
BROKEN = {
    "syntax error": (
        lambda p: _replace(p / STEP, "min_words: int) -> dict", "min_words: int) -> dict["),
        r"mysteps/count_words\.py:{line:def count_words}: SyntaxError: ",
    ),
    "misspelt step module": (
        lambda p: _replace(
            p / "configs/pipelines/starter.yaml", "code: mysteps.count_words", "code: mysteps.count_word"
        ),
        r"configs/pipelines/starter\.yaml:8 steps\.count\.code: no Python module 'mysteps\.count_word' in this "
        r"project; did you mean 'mysteps\.count_words'\?",
    ),
    "misspelt project import": (
        lambda p: (
            p.joinpath("mysteps/helpers.py").write_text("X = 1\n"),
            _replace(p / STEP, "import csv\n", "import csv\nimport mysteps.helpres\n"),
        ),
        r"mysteps/count_words\.py:{line:import mysteps.helpres}: no Python module "
        r"'mysteps\.helpres' in this project; did you mean 'mysteps\.helpers'\?",
    ),
    "misspelt library": (
        lambda p: _replace(p / STEP, "import json\n", "import json\nimport pandsa\n"),
        r"mysteps/count_words\.py:{line:import pandsa}: no module named 'pandsa'; did you mean "
        r"'pandas'\?",
    ),
    "no main": (lambda p: _replace(p / STEP, "def main(", "def run("), r"mysteps/count_words\.py: no main function"),
    "main never called": (
        lambda p: _replace(p / STEP, 'if __name__ == "__main__":\n    run_entry(main)', ""),
        r"mysteps/count_words\.py: main is never called",
    ),
    "an exception": (lambda p: _replace(p / STEP, "size = len(", "size = 1 / 0 + len("), None),
    "an empty output": (lambda p: _replace(p / STEP, '(output / "counts.json").write_text(', "dict(text="), None),
}
AT_RUN_TIME = {
    "an exception": r"exit code 1: mysteps/count_words\.py:{line:size = 1 / 0}: ZeroDivisionError: division by zero",
    "an empty output": r"output 'counts' is empty: the step ended with exit code 0 and wrote no file to it",
}


@pytest.mark.parametrize("broken", list(BROKEN))
def test_each_way_of_breaking_the_step_is_one_clear_line_and_a_failed_run(project, broken):
    breaks, told = BROKEN[broken]
    breaks(project)
    expected = told or AT_RUN_TIME[broken]
    expected = re.sub(r"\{line:(.+?)\}", lambda m: str(_line(project / STEP, m.group(1))), expected)
    checked = pravah(project, "check", "starter")
    if told:
        assert checked.returncode == 2 and re.search(expected, checked.stderr), checked.stderr
        assert checked.stderr.count("\n") == 1, "one line"
    else:
        assert checked.returncode == 0, checked.stderr
    ran = pravah(project, "run", "starter", "--no-tracking")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert re.search(r"^error: step 'count' failed: " + expected, ran.stderr, re.M), ran.stderr
    if told:
        assert "Traceback" not in ran.stderr + ran.stdout
    # at most the user's own traceback, from their file on: none of the runner's or the step server's frames
    assert "pipelines/processes.py" not in ran.stderr and "runpy" not in ran.stderr
    [record] = RunStore(Home(project / ".pravah")).all()
    assert record.status == "failed" and re.search(expected, record.steps["count"].error)


CLIENT_SCRIPT = """
import json, sys
import pravah

project = pravah.Project(sys.argv[1])
run = project.run("starter", params={"min_words": 2}, register=False)
print(json.dumps({
    "id": run.id, "status": run.status, "steps": run.steps, "parameters": run.parameters,
    "counts": json.loads((run.outputs["count"]["counts"] / "counts.json").read_text()),
    "latest": project.get_run("latest").id, "listed": [r.id for r in project.runs()],
    "models": project.models(), "endpoints": project.endpoints(), "tracking_uri": project.tracking_uri,
}))
try:
    pravah.Project(sys.argv[1] + "/data")
except pravah.PravahError as exc:
    print(exc, file=sys.stderr)
"""


def test_the_python_client_runs_and_reads_what_the_command_line_does(project):
    """`import pravah` in a user's script: a run with a parameter and no registration, its outputs as folders, the
    same records the command line reads; a folder that is not a project is refused with a clear message."""
    env = {k: v for k, v in os.environ.items() if k not in {"PRAVAH_HOME", "PRAVAH_PROJECT"}}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, str(project)],
        cwd=project.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert said["status"] == "succeeded" and said["steps"] == {"count": "succeeded"}
    assert said["parameters"] == {"min_words": 2}
    assert said["counts"] == {"negative": {"reviews": 4, "words": 24}, "positive": {"reviews": 4, "words": 36}}
    assert said["latest"] == said["id"] == said["listed"][0] and said["models"] == [] and said["endpoints"] == []
    assert said["tracking_uri"].startswith("sqlite:///") and str(project / ".pravah") in said["tracking_uri"]
    shown = json.loads(pravah(project, "runs", "show", "latest", "--json").stdout)
    assert shown["id"] == said["id"] and shown["options"]["register"] is False
    assert "not a project folder (no configs/ in it)" in done.stderr


def test_the_client_reads_the_registry_and_endpoints_and_predicts_as_the_api_answers(tmp_path):
    import pravah
    from tests.support import deploy_small_model

    home, _ = deploy_small_model(tmp_path, "api", metrics={"macro_f1": 0.8})
    project = pravah.Project(home=home.root)
    [version] = project.models("topics")
    assert (version.version, version.status, version.gate_score()) == (1, "Approved", ("macro_f1", 0.8))
    [endpoint] = project.endpoints()
    assert endpoint.name == "api" and project.endpoint("api").deployment.target.name == "topics-v1"
    sports, politics = project.predict("topics", 1, ["api goal match team", "api vote law party"])
    assert (sports["prediction"], politics["prediction"]) == ("sports", "politics")
    assert 0.5 < sports["confidence"] <= 1 and len(sports["alternatives"]) == 1
    assert project.create_api_key("app") != project.create_api_key("other")
    with pytest.raises(pravah.PravahError, match="already Approved"):
        project.approve("topics", 1, reason="again")
