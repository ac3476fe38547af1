"""The cloud path's compiler: the default spec through the SageMaker Python SDK 3.x, offline and without
credentials, checked against AWS's pipeline-definition schema and against the local step graph."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from pipelines.environments import load_environment
from pipelines.graph import StepGraph
from pipelines.sagemaker_schema import relaxed_schema, schema_path, validate_definition
from pipelines.source_archive import build_source_archive
from pipelines.spec import load_pipeline
from tests.support import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """`pravah compile` as a user runs it, with no AWS credentials or config anywhere."""
    home = tmp_path_factory.mktemp("compile")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"HOME": str(home), "PRAVAH_HOME": str(home / "pravah")}
    output = home / "definition.json"
    command = [sys.executable, "-m", "pipelines.cli", "compile", "text-classifier", "--output", str(output)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(output.read_text()), done.stdout


def test_the_definition_is_valid_against_the_published_schema_with_only_the_named_relaxations(compiled):
    definition, printed = compiled
    schema = schema_path()
    assert schema == REPO / "pipelines" / "schemas" / "sagemaker-pipeline-definition.schema.json", (
        "the copy that travels with the repository: a clone alone checks its definitions"
    )
    assert "b4012b0aa4474afdc6ef3d0409d17d0049dfcd85" in (schema.parent / "SOURCE.md").read_text()
    assert validate_definition(definition, schema) == []
    assert "valid against" in printed
    _, reasons = relaxed_schema(schema)
    assert len(reasons) == 7 and all(reasons)
    broken = json.loads(json.dumps(definition))
    broken["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "two"
    broken["Steps"][0]["Typo"] = 1
    assert len(validate_definition(broken, schema)) >= 1, "the relaxed schema still catches real mistakes"


def all_steps(definition: dict) -> list[dict]:
    found = []
    for step in definition["Steps"]:
        found.append(step)
        if step["Type"] == "Condition":
            found += step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]
    return found


def cloud_edges(definition: dict) -> set[tuple[str, str]]:
    edges = set()
    for step in all_steps(definition):
        for upstream in step.get("DependsOn", []):
            edges.add((upstream, step["Name"]))
        own = {k: v for k, v in step["Arguments"].items() if k not in {"IfSteps", "ElseSteps"}}  # branches: their own
        for upstream in re.findall(r'"Steps\.([^.\]"]+)\.', json.dumps(own)):
            if upstream != step["Name"]:
                edges.add((upstream, step["Name"]))
        if step["Type"] == "Condition":
            for branch in step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]:
                edges.add((step["Name"], branch["Name"]))
    return edges


def test_the_compiled_graph_has_the_local_steps_edges_and_parameters(compiled):
    definition, _ = compiled
    pipeline = load_pipeline(REPO / "configs" / "pipelines" / "text-classifier.yaml")
    graph = StepGraph.build(pipeline)
    assert sorted(s["Name"] for s in all_steps(definition)) == sorted(graph.steps)
    assert cloud_edges(definition) == {(edge.upstream, edge.downstream) for edge in graph.edges}
    local = {name: (p.type.capitalize(), p.default) for name, p in pipeline.spec.parameters.items()}
    assert {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]} == local
    kinds = {s["Name"]: s["Type"] for s in all_steps(definition)}
    assert kinds == {"ingest": "Processing", "validate": "Processing", "preprocess": "Processing",
                     "train": "Training", "evaluate": "Processing", "gate": "Condition", "register": "RegisterModel",
                     "reject": "Fail"}  # fmt: skip


def test_steps_carry_the_specs_contract_retries_cache_and_reports(compiled):
    definition, printed = compiled
    steps = {s["Name"]: s for s in all_steps(definition)}
    evaluate = steps["evaluate"]
    assert evaluate["Arguments"]["AppSpecification"]["ContainerArguments"][:3] == [
        "steps.evaluate", "--processing-root", "/opt/ml/processing"]  # fmt: skip
    assert evaluate["PropertyFiles"] == [{"PropertyFileName": "evaluation", "OutputName": "evaluation",
                                          "FilePath": "evaluation.json"}]  # fmt: skip
    assert evaluate["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    train = steps["train"]
    assert train["RetryPolicies"][0]["MaxAttempts"] == 2
    hyperparameters = train["Arguments"]["HyperParameters"]
    assert hyperparameters["family"] == "sklearn-text" and hyperparameters["sagemaker_program"] == "pravah_train.py"
    assert hyperparameters["sagemaker_submit_directory"].endswith("/source.tar.gz")
    gate = steps["gate"]["Arguments"]["Conditions"][0]
    assert gate["LeftValue"]["Std:JsonGet"]["Path"] == "multiclass_classification_metrics.macro_f1.value"
    assert gate["RightValue"] == {"Get": "Parameters.min_macro_f1"}
    register = steps["register"]["Arguments"]
    assert register["ModelPackageGroupName"] == {"Get": "Parameters.model_name"}
    assert register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == {
        "Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"}  # fmt: skip
    assert "champion" in printed and "left out on SageMaker" in printed


def test_the_source_archive_is_reproducible_and_holds_what_the_containers_run():
    first, second = build_source_archive(REPO), build_source_archive(REPO)
    assert first.sha256 == second.sha256 and first.key.startswith("pravah/source/")
    with tarfile.open(fileobj=io.BytesIO(first.data)) as archive:
        names = set(archive.getnames())
    assert {"pravah_train.py", "requirements.txt", "steps/evaluate.py", "training/train.py",
            "pipelines/container/processing_entry.py", "configs/pipelines/text-classifier.yaml"} <= names  # fmt: skip
    assert not any("__pycache__" in name for name in names)


def test_environment_mistakes_are_clear(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("account: 12\nregion: mumbai\nrole_arn: r\nbucket: B\n")
    with pytest.raises(Exception, match=r"broken.yaml:1 account") as found:
        load_environment(str(bad))
    assert "region" in str(found.value) and "bucket" in str(found.value)
    with pytest.raises(Exception, match="did you mean 'dev'"):
        load_environment("dve", Path(REPO))
