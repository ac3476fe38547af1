"""The compiled SageMaker pipeline executed offline (`pravah pipeline emulate`): from the definition JSON read
back from a moto server to a prediction served by the registered package's container, for the default text
pipeline and for a table. What this proves and what it cannot is in the README's cloud section."""

from __future__ import annotations

import json
import re

import pytest

from tests.support import REPO, run_cli

BUCKET = "pravah-dev-111111111111"  # configs/environments/dev.yaml


@pytest.mark.slow
def test_the_default_pipeline_runs_from_its_definition_to_a_served_prediction(tmp_path, mirror):
    result = run_cli(
        tmp_path / "home", "pipeline", "emulate", "text-classifier", env={"PRAVAH_DATA_MIRROR": str(mirror)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # the account starts empty: cloud bootstrap's code makes it ready, as a user would
    assert "bucket pravah-dev-111111111111 created in ap-south-1" in out, out
    assert "role arn:aws:iam::111111111111:role/pravah-sagemaker-dev created" in out, out
    for step in ("ingest", "validate", "preprocess", "train", "evaluate", "gate", "register"):
        assert f"✓ {step} succeeded" in out, out
    # the package carries the evaluation's metrics, resolved from the property file by JsonGet
    macro_f1 = float(re.search(r"macro_f1 ([0-9.]+)", out)[1])
    assert 0.6 <= macro_f1 <= 1.0, out
    labels = re.search(r"/ping 200, /invocations 200: (.*)", out)[1].split(", ")
    assert labels[0] == "sports" and len(labels) == 2, out  # the default request: a Hindi cricket sentence first
    # deployed with deploy's code, then called as a client would: the Lambda's own package from the bucket, alone
    # in an empty folder (python -I -S), through SageMaker's runtime to the container
    assert "create_endpoint emulated-endpoint: emulated-endpoint-text-classifier-v1-" in out, out
    called = "the predict Lambda, alone in an empty folder from s3://pravah-dev-111111111111/pravah/lambda/predict.zip"
    assert f"{called}: /health 200, predict 200 through the endpoint: sports (version 1), an empty text 400" in out
    assert "model-package/text-classifier/1" in out and ": Succeeded" in out
    # the prediction captured as the endpoint captures it, 60 times over (one text repeated: drifted traffic),
    # and one execution of the endpoint's monitoring pipeline, started as its EventBridge rule starts it: the
    # baseline built from the package's lineage, the monitoring image as its Dockerfile builds it, the figures in
    # CloudWatch and the alert published to the endpoint's topic, read from a queue subscribed to it
    assert "baseline of text-classifier/1 at s3://" in out, out
    assert "the rule's target is pipeline pravah-monitor-emulated-endpoint" in out, out
    assert "started arn:aws:sagemaker:ap-south-1:111111111111:pipeline/pravah-monitor-emulated-endpoint/" in out
    found = re.search(r"the monitoring job read 120 captured predictions \(0 corrupt lines, (\d+) violations\)", out)
    assert found and int(found[1]) >= 1, out
    assert "CloudWatch Pravah/Monitoring: DriftedFeatures, EstimatedAccuracy, Records, Violations" in out, out
    assert f"SNS alert: pravah: drift alert on emulated-endpoint: pravah: {found[1]} violation(s)" in out, out
    assert "MonitoringSchedule" not in out + result.stderr
    # the version scored over S3 by a Batch Transform job (pravah predict --target sagemaker's requests), run
    # around the package's container: an answer line per record, in order, an unreadable line answered in place
    assert re.search(r"✓ s3://\S+/records.jsonl.out: (.*)", out)[1].split(", ") == [*labels, "not JSON"], out


@pytest.mark.slow
def test_a_table_runs_from_its_definition_to_a_served_prediction(tmp_path):
    from sklearn.datasets import load_wine

    table = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    data = tmp_path / "wine.csv"
    table.to_csv(data, index=False)
    request = {"instances": table.drop(columns="cultivar").iloc[:2].to_dict(orient="records")}
    staged = f"s3://{BUCKET}/data/tabular-example/={data}"
    result = run_cli(
        tmp_path / "home",
        "pipeline",
        "emulate",
        "tabular-example",
        "-p",
        "target=cultivar",
        "--stage",
        staged,
        "--request",
        json.dumps(request),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ train succeeded" in result.stdout and "model-package/tabular-example/1" in result.stdout
    labels = re.search(r"/invocations 200: (.*)", result.stdout)[1].split(", ")
    assert labels == [str(c) for c in table["cultivar"].iloc[:2]], result.stdout
    assert f"predict 200 through the endpoint: {labels[0]} (version 1), an empty text 400" in result.stdout
    assert "no monitoring: " in result.stdout  # a table's model has no text profile to compare traffic with
    transformed = re.search(r"✓ s3://\S+/records.jsonl.out: (.*)", result.stdout)[1].split(", ")
    assert transformed == [*labels, "not JSON"], result.stdout


@pytest.mark.slow
def test_the_transformer_pipeline_trains_and_serves_in_the_projects_runtime_image(tmp_path, mirror):
    """text-transformer ran in no AWS framework image (their torch 2.5.1 is too old for transformers 5.24): in
    the runtime image (dev's CPU build, the lock's torch) it fine-tunes the packaged MiniLM, and its model is
    registered, served by the image's own `serve`, monitored and batch-transformed."""
    from aws.environments import load_environment
    from aws.images import image_uri

    # English at 32 tokens: the image and the contract are under test here, not the quality of a full fine-tune
    result = run_cli(
        tmp_path / "home",
        "pipeline",
        "emulate",
        "text-transformer",
        "-p",
        "max_length=32",
        "-p",
        "languages=eng_Latn",
        env={"PRAVAH_DATA_MIRROR": str(mirror)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("ingest", "validate", "preprocess", "train", "evaluate", "gate", "register"):
        assert f"✓ {step} succeeded" in out, out
    dev = load_environment("dev", REPO)
    runtime = image_uri(dev.account, dev.region, "runtime").rsplit("/", 1)[1]
    assert f"in its container ({runtime})" in out, out
    labels = re.search(r"/ping 200, /invocations 200: (.*)", out)[1].split(", ")
    assert len(labels) == 2 and "model-package/text-transformer/1" in out, out
    assert "SNS alert: pravah: drift alert on emulated-endpoint" in out, out
    assert re.search(r"✓ s3://\S+/records.jsonl.out: (.*)", out)[1].split(", ") == [*labels, "not JSON"], out


@pytest.mark.slow
def test_a_training_failure_is_the_jobs_failure_reason(tmp_path):
    """A training job that fails writes its reason to /opt/ml/output/failure (the runtime image's `train`),
    which fails the step and the execution with that reason: here a model family that does not exist."""
    import shutil

    from sklearn.datasets import load_wine

    project = tmp_path / "project"
    for folder in ("configs", "requirements"):
        shutil.copytree(REPO / folder, project / folder)
    spec = project / "configs" / "pipelines" / "tabular-example.yaml"
    spec.write_text(spec.read_text().replace("family: sklearn-tabular", "family: sklearn-tabulr", 1))
    data = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"}).to_csv(data, index=False)
    result = run_cli(
        tmp_path / "home",
        "--project",
        str(project),
        "pipeline",
        "emulate",
        "tabular-example",
        "-p",
        "target=cultivar",
        "--stage",
        f"s3://{BUCKET}/data/tabular-example/={data}",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "✗ train failed" in out and "AlgorithmError: the container exited with 2" in out, out
    assert "error: unknown model family 'sklearn-tabulr'; did you mean 'sklearn-tabular'?" in out, out
    assert ": Failed" in out and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_failed_gate_fails_the_execution_with_the_fail_steps_message(tmp_path):
    from sklearn.datasets import load_wine

    data = tmp_path / "wine.csv"
    load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"}).to_csv(data, index=False)
    result = run_cli(
        tmp_path / "home",
        "pipeline",
        "emulate",
        "tabular-example",
        "-p",
        "target=cultivar",
        "-p",
        "min_score=1.01",
        "--stage",
        f"s3://{BUCKET}/data/tabular-example/={data}",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "✓ gate succeeded" in result.stdout and "false: runs reject" in result.stdout
    assert "quality gate failed" in result.stdout and ": Failed" in result.stdout
    assert "registered" not in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_bad_emulate_arguments_are_clear_errors(tmp_path):
    result = run_cli(tmp_path / "home", "pipeline", "emulate", "text-classifier", "--request", "{not json")
    assert result.returncode == 2 and "--request is not JSON" in result.stderr, result.stderr
    result = run_cli(
        tmp_path / "home",
        "pipeline",
        "emulate",
        "tabular-example",
        "--stage",
        f"s3://{BUCKET}/data/x={tmp_path / 'missing.csv'}",
    )
    assert result.returncode == 2 and "no such file or folder" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


SEARCH = """    search:
      parameters:
        model: {type: categorical, values: [gbm, linear]}
        learning_rate: {type: continuous, min: 0.05, max: 0.5, scale: log}
      objective: {metric: training.validation.macro_f1, goal: maximize}
      strategy: random
      trials: 3
      parallel: 2
      seed: 7
"""


@pytest.mark.slow
def test_a_search_runs_as_a_tuning_job_of_training_jobs_and_registers_the_best(tmp_path):
    """tabular-example with a search on its training step: the TuningStep's request checked and sent, three
    training jobs run by the training contract, each objective read from its log by the metric definition, and
    the best job's model registered and served."""
    import shutil

    from sklearn.datasets import load_wine

    project = tmp_path / "project"
    for folder in ("configs", "requirements"):  # a project's own: its configs and its containers' requirements
        shutil.copytree(REPO / folder, project / folder)
    spec = project / "configs" / "pipelines" / "tabular-example.yaml"
    text = spec.read_text()
    spec.write_text(
        text.replace(
            "      training: {output: output, file: metrics.json}\n",
            "      training: {output: output, file: metrics.json}\n" + SEARCH,
            1,
        )
    )
    table = load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"})
    table.to_csv(data := tmp_path / "wine.csv", index=False)
    request = {"instances": table.drop(columns="cultivar").iloc[:2].to_dict(orient="records")}
    result = run_cli(
        tmp_path / "home",
        "--project",
        str(project),
        "pipeline",
        "emulate",
        "tabular-example",
        "-p",
        "target=cultivar",
        "--stage",
        f"s3://{BUCKET}/data/tabular-example/={data}",
        "--request",
        json.dumps(request),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    trials = re.findall(r"trial (\d): \{(.*)\} -> validation.macro_f1 ([0-9.]+)", out)
    assert [t[0] for t in trials] == ["1", "2", "3"] and "'model'" in trials[0][1], out
    best = max(float(t[2]) for t in trials)
    assert re.search(rf"✓ train succeeded .*: \S+: 3 trials; best \S+-00\d-\S+ \(validation.macro_f1 {best}\)", out), (
        out
    )
    assert "model-package/tabular-example/1" in out and "/invocations 200" in out, out
