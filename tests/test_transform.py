"""The transform step kind (pipelines/kinds/transform.py) on its three engines: a model scores a file of rows
inside a pipeline, locally through the serving handlers in a step process, compiled to SageMaker's ModelStep and
TransformStep, and emulated as a transform job around the model's serving container; the answers are the same
bytes on both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aws.environments import load_environment
from foundation.home import Home
from pipelines.records import RunStore
from pipelines.specfile import load_pipeline
from tests.support import REPO, run_cli

BUCKET = "pravah-dev-111111111111"  # configs/environments/dev.yaml


@pytest.fixture(scope="module")
def wine(tmp_path_factory) -> tuple[Path, Path, list[int]]:
    """The wine table as a CSV, and a JSON-lines file of five of its rows, a line that is not JSON and a row
    with a text where the model reads a number; the five rows' true classes."""
    from sklearn.datasets import load_wine

    folder = tmp_path_factory.mktemp("wine")
    table = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    table.to_csv(folder / "wine.csv", index=False)
    picked = table.iloc[[0, 1, 70, 71, 140]]
    lines = [json.dumps(row) for row in picked.drop(columns="cultivar").to_dict(orient="records")]
    (folder / "rows.jsonl").write_text("\n".join([*lines, "{not json", json.dumps({"alcohol": "x"})]) + "\n")
    return folder / "wine.csv", folder / "rows.jsonl", [int(c) for c in picked["cultivar"]]


def answers(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_rows_scored_in_a_pipeline_are_the_same_locally_and_on_the_emulated_transform_job(tmp_path, wine):
    data, rows, truth = wine
    home = tmp_path / "home"
    ran = run_cli(home, "run", "tabular-scoring", "-p", f"data={data}", "-p", "target=cultivar", "-p", f"rows={rows}")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    record = RunStore(Home(home)).all()[0]
    local = Path(record.steps["score"].outputs["predictions"].path) / "rows.jsonl.out"
    found = answers(local)
    assert [a.get("prediction") for a in found[:5]] == [str(c) for c in truth]  # an answer line per row, in order
    assert found[5:] == [{"error": "not JSON"}, {"error": 'alcohol: must be a number, not "x"'}]  # in place
    again = run_cli(home, "run", "tabular-scoring", "-p", f"data={data}", "-p", "target=cultivar", "-p", f"rows={rows}")
    assert again.returncode == 0 and RunStore(Home(home)).all()[0].steps["score"].status == "cached", again.stdout

    emulated = run_cli(
        home,
        "pipeline",
        "emulate",
        "tabular-scoring",
        "-p",
        "target=cultivar",
        "--stage",
        f"s3://{BUCKET}/data/tabular-scoring/={data}",
        "--stage",
        f"s3://{BUCKET}/data/tabular-scoring-rows/={rows}",
    )
    out = emulated.stdout
    assert emulated.returncode == 0, out + emulated.stderr
    assert "✓ score-model succeeded" in out and "✓ score succeeded" in out, out
    [job] = (Path(home) / "emulator" / "tabular-scoring" / "jobs").glob("pipelines-*-score")
    assert (job / "output" / "rows.jsonl.out").read_bytes() == local.read_bytes()


def test_the_transform_kind_compiles_to_a_model_and_a_transform_job_of_the_trained_artifact():
    from pipelines.sagemaker.compiler import compile_pipeline

    pipeline = load_pipeline(REPO / "configs" / "pipelines" / "tabular-scoring.yaml")
    definition = compile_pipeline(pipeline, load_environment("dev", REPO)).definition  # schema and service model
    steps = {step["Name"]: step for step in definition["Steps"]}
    model, transform = steps["score-model"], steps["score"]
    assert model["Type"] == "Model" and transform["Type"] == "Transform"
    container = model["Arguments"]["PrimaryContainer"]
    assert container["ModelDataUrl"] == {"Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"}
    assert container["Image"] == steps["train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    arguments = transform["Arguments"]
    assert arguments["ModelName"] == {"Get": "Steps.score-model.ModelName"}
    assert arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {"Get": "Parameters.rows"}
    assert (arguments["TransformInput"]["SplitType"], arguments["TransformOutput"]["AssembleWith"]) == ("Line", "Line")
    assert arguments["MaxConcurrentTransforms"] * arguments["MaxPayloadInMB"] <= 100  # AWS's limit


def test_a_transform_of_a_registered_alias_runs_locally_and_is_refused_clearly_for_sagemaker(tmp_path):
    from foundation.errors import PravahError
    from pipelines.sagemaker.compiler import compile_pipeline

    (tmp_path / "configs").mkdir()
    (tmp_path / "rows.jsonl").write_text('{"text": "hello"}\n')
    spec = tmp_path / "configs" / "champion.yaml"
    spec.write_text(
        "name: champion-scoring\nsteps:\n  score:\n    kind: transform\n"
        "    model: {model: nobody, alias: champion}\n    data: {path: rows.jsonl}\n"
    )
    result = run_cli(tmp_path / "home", "run", str(spec))
    assert result.returncode != 0
    assert "no version of model 'nobody' holds the alias 'champion'" in result.stdout + result.stderr
    with pytest.raises(PravahError, match="SageMaker resolves no registry alias inside a pipeline"):
        compile_pipeline(load_pipeline(spec), load_environment("dev", REPO))


def test_a_transform_steps_mistakes_are_spec_errors_with_their_place(tmp_path):
    from pipelines.spec import SpecError

    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: bad\nsteps:\n  score:\n    kind: transform\n    model: train.model\n    data: rows\n"
        "    outputs: {scores: results/x}\n    max_payload_mb: 101\n"
    )
    with pytest.raises(SpecError) as found:
        load_pipeline(spec)
    said = str(found.value)
    assert "bad.yaml:8 steps.score.max_payload_mb: must be at most 100" in said, said
    spec.write_text("name: bad\nsteps:\n  score:\n    kind: transform\n    model: train.model\n    data: {path: x}\n")
    with pytest.raises(SpecError, match=r"bad.yaml:5 steps.score.model: unknown step 'train'"):
        load_pipeline(spec)
