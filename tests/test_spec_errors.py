"""Bad specs and bad command lines: one clear message each, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from cli import main
from pipelines.graph import StepGraph
from pipelines.specfile import load_pipeline

GOOD = """
name: demo
parameters:
  rate: {type: float, default: 0.5}
steps:
  prepare:
    kind: processing
    code: tinysteps
    outputs: [data]
  train:
    kind: training
    code: tinysteps
    inputs:
      train: prepare.data
    hyperparameters:
      rate: {param: rate}
"""


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


@pytest.fixture
def spec(project):
    project("tinysteps.py", "def main(argv=None):\n    pass\n")
    return lambda text: project("configs/pipelines/demo.yaml", text)


def test_a_good_spec_loads_and_builds_its_graph(spec):
    pipeline = load_pipeline(spec(GOOD))
    graph = StepGraph.build(pipeline)
    assert graph.steps == ["prepare", "train"]
    assert graph.upstream["train"] == {"prepare"}
    assert "s_prepare -->|data → train| s_train" in graph.render_mermaid(pipeline)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("train: prepare.data", "train: prepar.data"),
            "demo.yaml:13 steps.train.inputs.train: unknown step 'prepar'; did you mean 'prepare'?",
        ),
        (
            ("train: prepare.data", "train: prepare.dat"),
            "demo.yaml:13 steps.train.inputs.train: step 'prepare' has no output 'dat'; did you mean 'data'?",
        ),
        (
            ("rate: {param: rate}", "rate: {param: rat}"),
            "demo.yaml:15 steps.train.hyperparameters.rate: unknown parameter 'rat'; did you mean 'rate'?",
        ),
        (("default: 0.5", "default: fast"), "demo.yaml:3 parameters.rate: expected a float, got 'fast'"),
        (
            ("kind: training", "kind: trainnig"),
            "demo.yaml:9 steps.train: unknown step kind 'trainnig'; did you mean 'training'?",
        ),
        (
            ("    outputs: [data]", "    outputz: [data]"),
            "demo.yaml:8 steps.prepare.outputz: unknown field 'outputz'; did you mean 'outputs'?",
        ),
        (
            ("code: tinysteps\n    outputs", "code: tinystep\n    outputs"),
            "demo.yaml:7 steps.prepare.code: no Python module 'tinystep' in this project",
        ),
        (
            ("    outputs: [data]", "    outputs: [data]\n    retry: {max_attempts: lots}"),
            "demo.yaml:9 steps.prepare.retry.max_attempts: expected an integer, got 'lots'",
        ),
        (
            ("    outputs: [data]", "    outputs: [data]\n    retry: {max_attempts: 11}"),
            "demo.yaml:9 steps.prepare.retry.max_attempts: must be at most 10, got 11",
        ),
        (
            ("    outputs: [data]", "    outputs: [data]\n    retry: {max_attempts: 2, backof_rate: 2}"),
            "demo.yaml:9 steps.prepare.retry.backof_rate: unknown field 'backof_rate'; did you mean 'backoff_rate'?",
        ),
        (
            ("train: prepare.data", "train: prepare"),
            "demo.yaml:13 steps.train.inputs.train: 'prepare' is not a "
            "reference: write '<step>.<output>', {param: NAME}, {path: FILE} or {model: NAME, alias: champion}",
        ),
        (
            ("rate: {param: rate}", "rate: {parm: rate}"),
            "demo.yaml:15 steps.train.hyperparameters.rate: expected {param}, true or false, an integer, a number "
            "or a string, got {'parm': 'rate'}",
        ),
        (
            ("rate: {param: rate}", "rate: {param: rate, alias: x}"),
            "demo.yaml:15 steps.train.hyperparameters.rate.alias: unknown field 'alias'",
        ),
        (
            ("    outputs: [data]", "    outputs: [data]\n    shards: {input: raw, merge: [data]}"),
            "demo.yaml:5 steps.prepare: shards.input 'raw' is not an input of the step",
        ),
        (
            (
                "    code: tinysteps\n    outputs: [data]",
                "    code: tinysteps\n    inputs: {raw: {path: x}}\n    outputs: [data]\n"
                "    shards: {input: raw, merge: [dta]}",
            ),
            "demo.yaml:5 steps.prepare: shards: 'dta' is not an output of the step",
        ),
        (("name: demo", "name: de mo"), "demo.yaml:1 name: 'de mo' is not a valid name"),
        (("kind: training", "knd: training"), "demo.yaml:9 steps.train: a step needs 'kind' (processing, training,"),
    ],
)
def test_spec_mistakes_name_file_line_and_field(spec, capsys, change, expected):
    path = spec(GOOD.replace(*change))
    code, output = run_cli(capsys, "check", str(path))
    assert code == 2
    assert expected in output
    assert "Traceback" not in output


def test_a_cycle_is_rejected_with_its_path(spec, capsys):
    text = GOOD.replace("    outputs: [data]", "    outputs: [data]\n    depends_on: [train]")
    code, output = run_cli(capsys, "graph", str(spec(text)))
    assert code == 2
    assert "the steps form a cycle: " in output
    assert "prepare -> train -> prepare" in output or "train -> prepare -> train" in output


def test_invalid_yaml_names_the_line(spec, capsys):
    code, output = run_cli(capsys, "check", str(spec(GOOD + "  oops: [unclosed\n")))
    assert code == 2 and "invalid YAML" in output and "demo.yaml:" in output


def test_duplicate_step_names_are_rejected(spec, capsys):
    text = GOOD + "  prepare:\n    kind: fail\n    message: x\n"
    code, output = run_cli(capsys, "check", str(spec(text)))
    assert code == 2 and "duplicate key 'prepare'" in output


def test_unknown_and_mistyped_parameters_on_the_command_line(spec, capsys, home):
    path = spec(GOOD)
    code, output = run_cli(capsys, "--home", str(home), "run", str(path), "-p", "rat=1", "--no-tracking")
    assert code == 2 and "-p rat: unknown parameter of pipeline 'demo'; did you mean 'rate'?" in output
    code, output = run_cli(capsys, "--home", str(home), "run", str(path), "-p", "rate=fast", "--no-tracking")
    assert code == 2 and "-p rate=fast: expected a float, got 'fast'" in output
    assert not (home / "runs").exists(), "a refused command starts no run"


def test_unknown_pipeline_name_suggests_the_nearest(spec, capsys, monkeypatch):
    path = spec(GOOD)
    monkeypatch.chdir(path.parents[2])
    code, output = run_cli(capsys, "graph", "dem")
    assert code == 2 and "did you mean 'demo'?" in output


def test_every_shipped_pipeline_is_valid():
    from pathlib import Path

    for path in sorted((Path(__file__).parents[1] / "configs" / "pipelines").glob("*.yaml")):
        pipeline = load_pipeline(path)
        assert StepGraph.build(pipeline).steps


def test_set_overrides_a_steps_values_typed_as_the_spec_and_names_every_mistake():
    from pipelines.spec import SpecError

    base = load_pipeline("text-classifier")
    changed = load_pipeline("text-classifier", {"train.C": "1", "train.word_ngram_max": "3"})
    assert (
        changed.steps["train"].hyperparameters["C"] == 1.0
        and changed.steps["train"].hyperparameters["word_ngram_max"] == 3
    )
    assert changed.source_hash != base.source_hash, "a run with --set is recorded as a spec of its own"
    assert changed.overrides == {"train.C": "1", "train.word_ngram_max": "3"}
    with pytest.raises(SpecError) as refused:
        load_pipeline(
            "text-classifier",
            {"trian.C": "1", "train.CC": "1", "train.seed": "1.5", "evaluate.champion_tolerance": "0.1"},
        )
    text = "\n".join(refused.value.problems)
    assert "--set trian.C=1: no step 'trian'; did you mean 'train'?" in text
    assert "--set train.CC=1: step 'train' has no hyperparameter or argument 'CC'; did you mean 'C'?" in text
    assert "--set train.seed=1.5: expected an integer, got '1.5'" in text
    assert "is the pipeline parameter 'champion_tolerance': use -p champion_tolerance=0.1" in text


def test_a_project_of_ones_own_runs_from_anywhere_in_it_or_with_project(project, tmp_path):
    """The README's own-project layout: configs/pipelines/ and a step module beside it, outside the repository;
    found from a subfolder (the nearest folder upward with configs/) or named with --project from elsewhere,
    its records in its own .pravah."""
    import json
    import os
    import subprocess
    import sys

    from tests.support import REPO

    project("mysteps/__init__.py", "")
    project(
        "mysteps/count.py",
        '''
        """Count the lines of the input files."""
        import json

        from steps.io import processing_parser, run_entry


        def main(argv=None):
            root = processing_parser(__doc__).parse_args(argv).processing_root
            lines = sum(len(p.read_text().splitlines()) for p in (root / "input" / "raw").rglob("*") if p.is_file())
            (root / "output" / "result" / "count.json").write_text(json.dumps({"lines": lines}))


        if __name__ == "__main__":
            run_entry(main)
    ''',
    )
    project("data/lines.txt", "one\ntwo\nthree\n")
    project(
        "configs/pipelines/mine.yaml",
        """
        name: mine
        steps:
          count:
            kind: processing
            code: mysteps.count
            inputs: {raw: {path: data}}
            outputs: {result: results/count}
    """,
    )
    root, elsewhere = project.root, tmp_path / "elsewhere"
    (root / "notebooks").mkdir()
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PRAVAH_HOME", "PRAVAH_PROJECT"}}
    env["PYTHONPATH"] = str(REPO)
    for cwd, args in ((root / "notebooks", ["run", "mine"]), (elsewhere, ["--project", str(root), "run", "mine"])):
        done = subprocess.run(
            [sys.executable, "-m", "cli", *args, "--no-tracking"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    counts = [json.loads(p.read_text()) for p in (root / ".pravah" / "results").rglob("count.json")]
    assert counts and all(c == {"lines": 3} for c in counts)
    assert not (elsewhere / ".pravah").exists() and not (root / "notebooks" / ".pravah").exists()
    missing = subprocess.run(
        [sys.executable, "-m", "cli", "run", "mine"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert missing.returncode != 0 and "no file" in missing.stderr and "Traceback" not in missing.stderr


def test_output_piped_into_a_reader_that_goes_away_ends_quietly(tmp_path):
    """`pravah ... | head`: the reader closes the pipe; the command stops without a BrokenPipeError traceback."""
    import os
    import subprocess
    import sys

    from tests.support import REPO

    command = [sys.executable, "-m", "cli", "--home", str(tmp_path / "home"), "graph", "text-classifier"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PRAVAH_HOME": str(tmp_path / "home")},
    )
    process.stdout.close()  # gone before the command writes anything
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141 and "Traceback" not in errors and "BrokenPipe" not in errors, errors
