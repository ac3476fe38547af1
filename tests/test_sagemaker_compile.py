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

from aws.definition import all_steps
from aws.environments import load_environment
from aws.images import image_uri, runtime_for
from pipelines.graph import StepGraph
from pipelines.sagemaker.schema import relaxed_schema, schema_path, validate_definition
from pipelines.sagemaker.source_archive import build_source_archive
from pipelines.specfile import load_pipeline
from tests.support import REPO


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """`pravah compile` as a user runs it, with no AWS credentials or config anywhere."""
    home = tmp_path_factory.mktemp("compile")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"HOME": str(home), "PRAVAH_HOME": str(home / "pravah")}
    output = home / "definition.json"
    command = [sys.executable, "-m", "cli", "compile", "text-classifier", "--output", str(output)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(output.read_text()), done.stdout


def test_the_definition_is_valid_against_the_published_schema_with_only_the_named_relaxations(compiled):
    definition, printed = compiled
    schema = schema_path()
    assert schema == REPO / "pipelines" / "sagemaker" / "schemas" / "sagemaker-pipeline-definition.schema.json", (
        "the copy that travels with the repository: a clone alone checks its definitions"
    )
    assert "b4012b0aa4474afdc6ef3d0409d17d0049dfcd85" in (schema.parent / "SOURCE.md").read_text()
    assert validate_definition(definition, schema) == []
    assert "valid against" in printed
    _, reasons = relaxed_schema(schema)
    assert len(reasons) == 9 and all(reasons)
    broken = json.loads(json.dumps(definition))
    broken["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = "two"
    broken["Steps"][0]["Typo"] = 1
    assert len(validate_definition(broken, schema)) >= 1, "the relaxed schema still catches real mistakes"
    # the relaxations are as narrow as their reasons: a report value only in a condition (or a Join's parts),
    # and the top-level configs with their own fields only
    misplaced = json.loads(json.dumps(definition))
    report = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.evaluate.PropertyFiles.evaluation"}, "Path": "x"}}
    misplaced["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] = report
    assert validate_definition(misplaced, schema), "a JsonGet where an instance type goes"
    configs = json.loads(json.dumps(definition))
    configs["PipelineExperimentConfig"]["Typo"] = "x"
    assert validate_definition(configs, schema)


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
    local_edges = {(edge.upstream, edge.downstream) for edge in graph.edges}
    extra = cloud_edges(definition) - local_edges
    assert local_edges <= cloud_edges(definition)
    # register reads where each step upstream wrote its outputs (its lineage): edges to steps already before it
    assert extra == {(step, "register") for step in ("ingest", "validate", "preprocess")}
    assert all(up in graph.ancestors({down}) for up, down in extra)
    local = {name: (p.type.capitalize(), p.default) for name, p in pipeline.spec.parameters.items()}
    assert {p["Name"]: (p["Type"], p["DefaultValue"]) for p in definition["Parameters"]} == local
    kinds = {s["Name"]: s["Type"] for s in all_steps(definition)}
    assert kinds == {
        "ingest": "Processing",
        "validate": "Processing",
        "preprocess": "Processing",
        "train": "Training",
        "evaluate": "Processing",
        "gate": "Condition",
        "register": "RegisterModel",
        "reject": "Fail",
    }


def test_steps_carry_the_specs_contract_retries_cache_and_reports(compiled):
    definition, printed = compiled
    steps = {s["Name"]: s for s in all_steps(definition)}
    evaluate = steps["evaluate"]
    assert evaluate["Arguments"]["AppSpecification"]["ContainerArguments"][:3] == [
        "steps.evaluate",
        "--processing-root",
        "/opt/ml/processing",
    ]
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "evaluation", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    assert evaluate["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}
    train = steps["train"]
    assert train["RetryPolicies"][0]["MaxAttempts"] == 2
    hyperparameters = train["Arguments"]["HyperParameters"]
    assert hyperparameters["family"] == "sklearn-text" and not any(k.startswith("sagemaker_") for k in hyperparameters)
    [source] = [c for c in train["Arguments"]["InputDataConfig"] if c["ChannelName"] == "pravah-source"]
    assert source["DataSource"]["S3DataSource"]["S3Uri"].endswith("/source.tar.gz"), "the code, as a channel"
    gate = steps["gate"]["Arguments"]["Conditions"][0]
    assert gate["LeftValue"]["Std:JsonGet"]["Path"] == "multiclass_classification_metrics.macro_f1.value"
    assert gate["RightValue"] == {"Get": "Parameters.min_macro_f1"}
    register = steps["register"]["Arguments"]
    assert register["ModelPackageGroupName"] == {"Get": "Parameters.model_name"}
    assert register["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == {
        "Get": "Steps.train.ModelArtifacts.S3ModelArtifacts"
    }
    assert "champion" in printed and "left out on SageMaker" in printed


def test_the_source_archive_is_reproducible_and_holds_what_the_containers_run():
    first, second = build_source_archive(REPO), build_source_archive(REPO)
    assert first.sha256 == second.sha256 and first.key.startswith("pravah/source/")
    with tarfile.open(fileobj=io.BytesIO(first.data)) as archive:
        names = set(archive.getnames())
    assert {
        "steps/evaluate.py",
        "training/train.py",
        "artifact/predictor.py",
        "foundation/errors.py",
        "inference/sagemaker_handlers.py",
        "configs/pipelines/text-classifier.yaml",
    } <= names
    assert "requirements.txt" not in names, "the libraries are the runtime image's, installed when it is built"
    assert not any(name.startswith(("pipelines/", "cli/", "emulator/")) for name in names), "only what containers run"
    assert not any("__pycache__" in name for name in names)


def test_environment_mistakes_are_clear(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("account: 12\nregion: mumbai\nrole_arn: r\nbucket: B\n")
    with pytest.raises(Exception, match=r"broken.yaml:1 account") as found:
        load_environment(str(bad))
    assert "region" in str(found.value) and "bucket" in str(found.value)
    with pytest.raises(Exception, match="did you mean 'dev'"):
        load_environment("dve", Path(REPO))
    scaling = tmp_path / "scaling.yaml"
    good = (REPO / "configs" / "environments" / "dev.yaml").read_text()
    scaling.write_text(good.replace("  max_instances: 5", "  max_instances: 0"))
    with pytest.raises(Exception, match=r"scaling.yaml:\d+ endpoint_scaling.max_instances"):
        load_environment(str(scaling))
    scaling.write_text(good.replace("  min_instances: 1", "  min_instances: 6"))
    with pytest.raises(Exception, match="max_instances 5 is below min_instances 6"):
        load_environment(str(scaling))


# -- what SageMaker would refuse, by the service model, and the images' Python --------------------------------

PIPELINES = sorted(p.stem for p in (REPO / "configs" / "pipelines").glob("*.yaml"))
ENVIRONMENTS = sorted(p.stem for p in (REPO / "configs" / "environments").glob("*.yaml"))


def compile_for(pipeline: str, environment: str) -> dict:
    from pipelines.sagemaker.compiler import compile_pipeline

    return compile_pipeline(
        load_pipeline(REPO / "configs" / "pipelines" / f"{pipeline}.yaml"), load_environment(environment, REPO)
    ).definition


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_pipeline_compiles_for_every_environment_with_images_of_the_codes_python(pipeline, environment):
    """compile_pipeline refuses what the schema or the service model refuses, so compiling is the check; the
    images are read back from the requests."""
    from aws.service_model import definition_problems

    definition = compile_for(pipeline, environment)
    assert definition_problems(definition) == []
    steps = all_steps(definition)
    images = (
        {s["Arguments"].get("AppSpecification", {}).get("ImageUri") for s in steps}
        | {s["Arguments"].get("AlgorithmSpecification", {}).get("TrainingImage") for s in steps}
        | {c["Image"] for s in steps for c in s["Arguments"].get("InferenceSpecification", {}).get("Containers", [])}
        | {s["Arguments"].get("PrimaryContainer", {}).get("Image") for s in steps}  # a transform step's model
    )
    images.discard(None)
    settings = load_environment(environment, REPO)
    runtime = {image_uri(settings.account, settings.region, name) for name in ("runtime", "runtime-gpu")}
    assert images and images <= runtime, f"only the project's runtime images, at their Dockerfiles' tags: {images}"
    for register in [s for s in steps if s["Type"] == "RegisterModel"]:  # every pipeline but tabular-scoring's
        [container] = register["Arguments"]["InferenceSpecification"]["Containers"]
        assert container["Image"] == image_uri(
            settings.account, settings.region, runtime_for(settings.instance_types.endpoint)
        )
        assert register["Arguments"]["InferenceSpecification"]["SupportedTransformInstanceTypes"] == [
            settings.instance_types.transform
        ]
    processing = {
        s["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceType"]
        for s in steps
        if s["Type"] == "Processing"
    }
    assert processing == {settings.instance_types.processing}, "the environment's processing instances"


def test_the_environment_gives_cloud_defaults_and_instance_types():
    definition = compile_for("text-transformer", "prod")
    defaults = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    assert defaults["base_model"] == "ai4bharat/IndicBERTv2-MLM-only", "a multilingual Indic encoder in prod"
    [train] = [s for s in all_steps(definition) if s["Name"] == "train"]
    assert train["Arguments"]["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert "/pravah-runtime-gpu:" in train["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
    assert {p["Name"]: p["DefaultValue"] for p in compile_for("tabular-example", "dev")["Parameters"]}[
        "data"
    ].startswith("s3://pravah-dev-")
    assert compile_for("text-classifier", "dev")["Parameters"] == definition_of_spec_defaults("text-classifier")


def definition_of_spec_defaults(name: str) -> list[dict]:
    spec = load_pipeline(REPO / "configs" / "pipelines" / f"{name}.yaml").spec
    return [{"Name": n, "Type": p.type.capitalize(), "DefaultValue": p.default} for n, p in spec.parameters.items()]


def test_what_aws_would_refuse_is_found_by_the_service_model():
    """The checks are real: each defect this compiler once had is found when put back into a definition."""
    from aws.service_model import definition_problems, request_problems

    definition = compile_for("text-classifier", "dev")
    steps = {s["Name"]: s for s in all_steps(definition)}
    arguments = steps["evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    arguments[-1] = {"Get": "Parameters.champion_tolerance"}  # a Float where a string goes
    inference = steps["register"]["Arguments"]["InferenceSpecification"]
    inference["SupportedTransformInstanceTypes"] = ["ml.t2.medium"]  # not a transform instance type
    steps["evaluate"]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = 101  # over 100
    steps["train"]["Arguments"]["HyperParameters"]["x" * 300] = "1"  # a key longer than the API allows
    problems = "\n".join(definition_problems(definition))
    assert "Cannot assign property reference [Parameters.champion_tolerance] (a Float) to argument of type" in problems
    assert "SupportedTransformInstanceTypes[0]: 'ml.t2.medium' is not one of the API's values" in problems
    assert "ClusterConfig.InstanceCount: 101 is outside the API's range [1, 100]" in problems
    assert "HyperParameters key" in problems and "more than the API's 256" in problems
    tabular = compile_for("tabular-example", "dev")
    assert "data/table.csv" in "\n".join(definition_problems(tabular, {"data": "data/table.csv"})), (
        "a local path where an S3 URI goes"
    )
    assert request_problems("sagemaker", "CreateModelPackageGroup", {"ModelPackageGroupName": "bad name!"})


def test_what_createpipeline_or_the_job_start_refuses_beyond_the_service_model_is_refused_offline():
    """Nine mistakes that pass the schema and botocore's model, each made in a real compiled definition:
    every one is refused by the check that compile, upsert and the emulator run, with what and where."""
    from aws.definition_rules import rule_problems
    from foundation.errors import PravahError
    from pipelines.sagemaker.compiler import check_definition

    dev = load_environment("dev", REPO)
    definition = compile_for("text-classifier", "dev")
    assert rule_problems(definition, dev.account, dev.region) == []
    by_name = {step["Name"]: step for step in all_steps(definition)}
    image = by_name["train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]  # the project's runtime
    framework = "763104351884.dkr.ecr.ap-south-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311"  # one AWS publishes

    def refused(change, expected: str) -> None:
        broken = json.loads(json.dumps(definition))
        change({step["Name"]: step for step in all_steps(broken)})
        with pytest.raises(PravahError, match=expected):
            check_definition(broken, environment=dev)

    def set_in(step: str, *path_and_value):
        *path, value = path_and_value

        def change(steps):
            target = steps[step]
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value

        return change

    refused(
        set_in("train", "Arguments", "RoleArn", "arn:aws:iam::999999999999:role/other"),
        "step train: RoleArn arn:aws:iam::999999999999:role/other is a role of account 999999999999",
    )
    assert rule_problems(json.loads(json.dumps(definition).replace(image, framework)), dev.account, dev.region) == []
    refused(
        set_in("train", "Arguments", "AlgorithmSpecification", "TrainingImage", framework.replace("2.5.1", "2.5.9")),
        "step train: image .*SageMaker publishes no such pytorch-training image in ap-south-1",
    )
    tag = image.rsplit(":", 1)[1]
    refused(
        set_in("train", "Arguments", "AlgorithmSpecification", "TrainingImage", image.replace(tag, "0123456789abcdef")),
        f"step train: image .*: the project's pravah-runtime is tagged {tag} now .* built from other files, or never",
    )
    refused(
        set_in(
            "train", "Arguments", "AlgorithmSpecification", "TrainingImage", image.replace("pravah-runtime", "mine")
        ),
        "step train: image .*: mine is not one of the project's images",
    )
    refused(
        set_in(
            "train", "Arguments", "AlgorithmSpecification", "TrainingImage", image.replace("ap-south-1", "eu-west-1")
        ),
        "is in eu-west-1: SageMaker pulls images from the job's own region",
    )
    refused(
        set_in(
            "train",
            "Arguments",
            "AlgorithmSpecification",
            "TrainingImage",
            framework.replace(framework.split(".")[0], "222222222222"),
        ),
        "is of account 222222222222: SageMaker's pytorch-training images in ap-south-1 are in account",
    )
    refused(
        set_in("train", "DependsOn", ["validate", "preproces"]),
        "step train: DependsOn names 'preproces', which is not a step of the pipeline",
    )
    refused(
        set_in(
            "evaluate",
            "Arguments",
            "ProcessingInputs",
            1,
            "S3Input",
            "S3Uri",
            {"Get": "Steps.trian.ModelArtifacts.S3ModelArtifacts"},
        ),
        "step evaluate: the property reference Steps.trian.ModelArtifacts.S3ModelArtifacts names no step",
    )
    gate_condition = by_name["gate"]["Arguments"]["Conditions"][0]
    left = json.loads(json.dumps(gate_condition["LeftValue"]))
    left["Std:JsonGet"]["PropertyFile"]["Get"] = "Steps.evaluate.PropertyFiles.metrics"
    refused(
        set_in("gate", "Arguments", "Conditions", 0, "LeftValue", left),
        "step gate: JsonGet reads property file 'metrics', which step evaluate does not declare "
        r"\(its property files: evaluation\)",
    )


def test_a_step_on_a_gpu_instance_runs_in_the_gpu_runtime_image():
    """The runtime image is chosen by instance type: prod trains text-transformer on a GPU (ml.g5.2xlarge), the
    other steps and every other environment on CPU; both images are the project's, at their current tags."""
    prod = load_environment("prod", REPO)
    definition = compile_for("text-transformer", "prod")
    train = next(s for s in all_steps(definition) if s["Name"] == "train")
    assert train["Arguments"]["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert train["Arguments"]["AlgorithmSpecification"]["TrainingImage"] == image_uri(
        prod.account, prod.region, "runtime-gpu"
    )
    evaluate = next(s for s in all_steps(definition) if s["Name"] == "evaluate")
    assert evaluate["Arguments"]["AppSpecification"]["ImageUri"] == image_uri(prod.account, prod.region, "runtime")


def test_the_images_are_declared_by_their_dockerfiles_and_tagged_by_what_their_builds_read(tmp_path):
    """Each image's Dockerfile is one the emulator builds (its Python, requirements, files and ENTRYPOINT), the
    runtime images hold exactly steps.txt and their torch, and the tag is the digest of the build's inputs:
    a changed requirement is another tag."""
    from aws.images import IMAGES, build_inputs, image_tag
    from emulator.images import read_dockerfile

    for name, image in IMAGES.items():
        dockerfile = read_dockerfile(REPO / image.dockerfile, REPO)
        assert dockerfile.python == "3.11" and dockerfile.entrypoint[0] == "python3", name
        assert re.fullmatch(r"[0-9a-f]{16}", image.tag)
    runtime = read_dockerfile(REPO / IMAGES["runtime"].dockerfile, REPO)
    steps, cpu = ((REPO / "requirements" / name).read_bytes() for name in ("steps.txt", "runtime-cpu.txt"))
    assert runtime.requirements == steps + cpu and b"torch==2.13.0+cpu" in cpu
    assert runtime.entrypoint == ["python3", "/opt/program/program.py"]
    assert (["pipelines/sagemaker/container/program.py"], "program.py") in runtime.copies
    dockerfile = IMAGES["runtime"].dockerfile
    inputs = build_inputs(dockerfile)
    assert Path("requirements/steps.txt") in inputs and Path("pipelines/sagemaker/container/program.py") in inputs
    copy = tmp_path / "repo"
    for path in [dockerfile, *inputs]:
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        (copy / path).write_bytes((REPO / path).read_bytes())
    assert image_tag(dockerfile, copy) == IMAGES["runtime"].tag, "the same files, the same tag"
    with open(copy / "requirements" / "steps.txt", "a") as requirements:
        requirements.write("six==1.17.0\n")
    assert image_tag(dockerfile, copy) != IMAGES["runtime"].tag, "another requirement, another image"


def test_a_version_registered_by_the_cloud_pipeline_carries_lineage_digest_and_metrics():
    definition = compile_for("text-classifier", "dev")
    [register] = [s for s in all_steps(definition) if s["Type"] == "RegisterModel"]
    properties = register["Arguments"]["CustomerMetadataProperties"]
    assert properties["pravah.run_id"] == {"Get": "Execution.PipelineExecutionId"}
    assert properties["pravah.pipeline"] == "text-classifier" and len(properties["pravah.source_sha256"]) == 64
    read = {
        key: value["Std:Join"]["Values"][0]["Std:JsonGet"]["Path"]
        for key, value in properties.items()
        if isinstance(value, dict) and "Std:Join" in value
    }
    assert read == {
        "pravah.artifact_digest": "model.artifact_sha256",
        "pravah.data_sha256": "model.training_data_sha256",
        "pravah.gate_metric": "comparison.metric",  # the gate's metric by name, for any task
        "pravah.gate_value": "comparison.candidate",
    }
