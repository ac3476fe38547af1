"""Processing sharded over a SageMaker job's instances, emulated: each instance's container run with its own
/opt/ml and resourceconfig.json, as SageMaker runs them, and what they counted merged into the same answer as
one instance's. The drift job (the endpoint's monitoring pipeline) and preprocessing (text-classifier's
definition up to it), each over one instance and over four."""

from __future__ import annotations

import json
import math
import random
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from aws.environments import load_environment
from tests.support import ensure_bucket

ENDPOINT = "sharded-endpoint"
LABELS = ["entertainment", "geography", "health", "politics", "science", "sports", "travel"]
WORDS = {
    "eng": "the match was played in the city and the team won the cup after a long season",
    "hin": "टीम ने शहर में मैच जीता और खिलाड़ियों ने लंबे सत्र के बाद कप उठाया",
    "tam": "அணி நகரத்தில் போட்டியை வென்றது நீண்ட பருவத்திற்குப் பிறகு கோப்பையை வென்றது",
}


def own_bucket(environment):
    """The environment with a bucket of this test's own: moto's state outlives a server in this process, and
    another test may hold the environment's bucket (under another account)."""
    return environment.model_copy(update={"bucket": f"pravah-scale-out-{secrets.token_hex(6)}"})


def _texts(rng: random.Random, languages: list[str], count: int) -> list[tuple[str, str]]:
    found = []
    for _ in range(count):
        language = rng.choice(languages)
        found.append((" ".join(rng.choices(WORDS[language].split(), k=rng.randint(4, 14))), language))
    return found


def _answer(rng: random.Random) -> dict:
    """A SageMaker endpoint's answer to one text: a prediction, its confidence and two alternatives."""
    first, second, third = rng.sample(LABELS, 3)
    confidence = round(rng.uniform(0.4, 0.95), 4)
    rest = 1 - confidence
    return {
        "prediction": first,
        "confidence": confidence,
        "alternatives": [
            {"value": second, "confidence": round(rest * 0.6, 4)},
            {"value": third, "confidence": round(rest * 0.3, 4)},
        ],
    }


def _baseline(rng: random.Random) -> dict:
    """What upload_baseline writes from a package's lineage: the reference profile (English and Hindi texts
    and the model's answers to them), its vocabulary and the test scores."""
    from steps.profile import Profile, Vocabulary, text_feature_columns

    texts = _texts(rng, ["eng", "hin"], 600)
    vocabulary = Vocabulary.of_texts([text for text, _ in texts])
    columns = text_feature_columns([t for t, _ in texts], [lang for _, lang in texts], vocabulary)
    answers = [_answer(rng) for _ in texts]
    columns["prediction"] = [a["prediction"] for a in answers]
    columns["confidence"] = [a["confidence"] for a in answers]
    profile = Profile()
    profile.add_columns(columns)
    return {
        "reference": profile.to_json(),
        "vocabulary": vocabulary.to_json(),
        "quality": {"accuracy": 0.8, "macro_f1": 0.78},
    }


def _capture(aws, rng: random.Random, now: datetime) -> int:
    """Twelve captured files of the last hour (traffic that adds Tamil, which the reference never saw), as a
    SageMaker endpoint's Data Capture writes them, one corrupt line among them; how many files."""
    from cloud.monitoring import capture_destination
    from inference.capture import capture_line

    s3 = aws.client("s3")
    bucket = aws.environment.bucket
    prefix = capture_destination(aws.environment, ENDPOINT).removeprefix(f"s3://{bucket}/")
    for number in range(12):
        at = now - timedelta(minutes=55 - 4 * number)
        lines = [
            capture_line(f"event-{number}-{i}", {"inputs": [text]}, {"predictions": [_answer(rng)]}, at)
            for i, (text, _) in enumerate(_texts(rng, ["eng", "hin", "tam"], 40))
        ]
        if number == 5:
            lines.insert(3, "{not json\n")
        key = f"{prefix}/{ENDPOINT}/AllTraffic/{at:%Y/%m/%d/%H}/{at:%M-%S}-{number:02d}.jsonl"
        s3.put_object(Bucket=bucket, Key=key, Body="".join(lines).encode())
    return 12


def _close(a, b, path: str = "") -> list[str]:
    """Where two JSON values differ: numbers by more than 1e-9, anything else at all."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [problem for key in a for problem in _close(a[key], b[key], f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [problem for i, (x, y) in enumerate(zip(a, b, strict=True)) for problem in _close(x, y, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool):
        return [] if math.isclose(a, b, rel_tol=0, abs_tol=1e-9) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.slow
def test_the_drift_job_over_four_instances_gives_one_instances_verdicts(tmp_path):
    from aws.requests import Aws, s3_location
    from cloud.monitoring import deploy_monitoring_pipeline, monitoring_prefix
    from emulator.containers import check_namespaces
    from emulator.execution import moto_server
    from emulator.scheduled_monitoring import run_monitoring_pipeline
    from monitoring.config import MonitoringConfig

    check_namespaces()
    rng, said = random.Random(11), []
    dev = own_bucket(load_environment("dev"))
    with moto_server(dev.account) as url:
        aws = Aws(dev, say=said.append)
        ensure_bucket(aws.client("s3"), dev.bucket, dev.region)
        folder = monitoring_prefix(dev, ENDPOINT)
        aws.put_json(f"{folder}/baseline/statistics.json", _baseline(rng))
        aws.put_json(f"{folder}/baseline/constraints.json", MonitoringConfig().constraints())
        files = _capture(aws, rng, datetime.now(UTC))
        judged = {}
        for instances in (1, 4):
            environment = dev.model_copy(update={"monitoring_instances": instances})
            aws = Aws(environment, say=said.append)
            pipeline = deploy_monitoring_pipeline(aws, ENDPOINT, 3600)
            steps = [
                s["Name"]
                for s in json.loads(
                    aws.call("sagemaker", "describe_pipeline", PipelineName=pipeline)["PipelineDefinition"]
                )["Steps"]
            ]
            assert steps == (["monitor"] if instances == 1 else ["scan", "judge"]), steps
            reports, metrics = run_monitoring_pipeline(aws, url, pipeline, tmp_path / str(instances), said.append)
            bucket, prefix = s3_location(reports)
            s3 = aws.client("s3")
            read = {
                name: json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read())
                for name in ("statistics.json", "constraint_violations.json")
            }
            judged[instances] = {"metrics": metrics, **read}
            listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")["Contents"]
            assert f"{prefix}/drift_report.html" in {item["Key"] for item in listed}
        # the four instances each read their own share of the files, and together every file once
        parts = sorted(item["Key"] for item in listed if "/parts/" in item["Key"])
        assert [key.rsplit("/", 1)[-1] for key in parts] == [f"algo-{i}.json" for i in range(1, 5)], parts
        shares = [json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())["files"] for key in parts]
        assert shares == [3, 3, 3, 3], shares
        logs = sorted(p.name for p in (tmp_path / "4" / "logs").glob("*scan*.log"))
        assert len(logs) == 4, logs  # a log per instance, as CloudWatch keeps a stream per host
    one, four = judged[1], judged[4]
    for report in (one, four):
        report["metrics"].pop("window")  # each execution's own hour
    assert one["metrics"]["records"] == 12 * 40 and one["metrics"]["files"] == files
    assert one["metrics"]["corrupt_lines"] == 1 and one["metrics"]["judged"]
    assert one["metrics"]["violations"] >= 1, one["metrics"]  # Tamil, unseen in the reference: drift
    assert _close(one, four) == [], _close(one, four)


def test_an_environments_instance_counts_shard_a_step_that_says_how():
    """preprocess declares how its work splits: on three instances it becomes preprocess-shards (its table's
    files ShardedByS3Key) and the merge, preprocess, on one; what reads its splits reads the instances' parts,
    what reads its profile reads the merge's. A step without `shards` just gets its instances. A count for no
    step of the pipeline is named."""
    from aws.definition import all_steps
    from foundation.errors import PravahError
    from pipelines.sagemaker.compiler import compile_pipeline
    from pipelines.specfile import load_pipeline
    from tests.support import REPO

    dev = load_environment("dev", REPO)
    counts = {"preprocess": 3, "evaluate": 2}
    settings = dev.for_pipeline("text-classifier").model_copy(update={"instance_counts": counts})
    environment = dev.model_copy(update={"pipelines": {**dev.pipelines, "text-classifier": settings}})
    pipeline = load_pipeline(REPO / "configs" / "pipelines" / "text-classifier.yaml")
    steps = {s["Name"]: s for s in all_steps(compile_pipeline(pipeline, environment).definition)}
    shards, merge = steps["preprocess-shards"]["Arguments"], steps["preprocess"]["Arguments"]
    assert shards["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 3
    distribution = {i["InputName"]: i["S3Input"]["S3DataDistributionType"] for i in shards["ProcessingInputs"]}
    assert distribution["raw"] == "ShardedByS3Key" and distribution["pravah-source"] == "FullyReplicated"
    assert merge["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 1
    assert merge["AppSpecification"]["ContainerArguments"][-2:] == ["--merge", "true"]
    assert sorted(i["InputName"] for i in merge["ProcessingInputs"]) == [
        "code",
        "pravah-source",
        "profile",
        "validation",
    ]
    assert [o["OutputName"] for o in merge["ProcessingOutputConfig"]["Outputs"]] == ["profile"]
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"]
        for c in steps["train"]["Arguments"]["InputDataConfig"]
    }
    assert channels["train"] == {
        "Get": "Steps.preprocess-shards.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"
    }
    metadata = json.dumps(steps["register"]["Arguments"].get("CustomerMetadataProperties", {}))
    assert "Steps.preprocess.ProcessingOutputConfig.Outputs['profile']" in metadata, "the baseline: the merge's"
    assert steps["evaluate"]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
    wrong = settings.model_copy(update={"instance_counts": {"preprocesss": 3}})
    environment = dev.model_copy(update={"pipelines": {**dev.pipelines, "text-classifier": wrong}})
    with pytest.raises(PravahError, match="instance_counts names no step of the pipeline: preprocesss"):
        compile_pipeline(pipeline, environment)


def _emulated_preprocess(tmp_path, instances: int, said: list[str]) -> dict[str, dict]:
    """text-classifier's definition up to its preprocessing, compiled for `instances` instances of preprocess
    and run in the emulator: each split's rows and the profile's files, read back from S3."""
    import pandas as pd

    from aws.requests import Aws, download_prefix
    from aws.service_model import typed_value
    from emulator.engine import Emulation, Execution
    from emulator.execution import moto_server
    from emulator.images import declared_image
    from pipelines.sagemaker.compiler import compile_pipeline
    from pipelines.sagemaker.pipeline import start, upsert
    from pipelines.specfile import load_pipeline

    dev = own_bucket(load_environment("dev"))
    settings = dev.for_pipeline("text-classifier").model_copy(update={"instance_counts": {"preprocess": instances}})
    environment = dev.model_copy(update={"pipelines": {**dev.pipelines, "text-classifier": settings}})
    pipeline = load_pipeline("text-classifier")
    compiled = compile_pipeline(pipeline, environment)
    with moto_server(environment.account) as url:
        aws = Aws(environment, say=said.append)
        ensure_bucket(aws.client("s3"), environment.bucket, environment.region)
        upsert(aws, pipeline, compiled)
        arn = start(aws, pipeline, {})
        definition = json.loads(
            aws.call("sagemaker", "describe_pipeline", PipelineName=pipeline.name)["PipelineDefinition"]
        )
        kept = {"ingest", "validate", "preprocess-shards", "preprocess"}
        definition["Steps"] = [step for step in definition["Steps"] if step["Name"] in kept]
        values = {p["Name"]: typed_value(p["DefaultValue"], p["Type"]) for p in definition["Parameters"]}
        [image] = {
            s["Arguments"]["AppSpecification"]["ImageUri"] for s in definition["Steps"] if s["Type"] == "Processing"
        }
        folder = tmp_path / f"emulated-{instances}"
        execution = Execution(
            definition,
            values,
            Emulation(arn, folder=folder),
            aws,
            url,
            {image: declared_image(image)},
            folder,
            said.append,
        )
        execution.run()
        names = [step["Name"] for step in definition["Steps"]]
        producer = "preprocess-shards" if instances > 1 else "preprocess"
        outputs = execution.properties[producer]["ProcessingOutputConfig"]["Outputs"]
        uri = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in outputs}
        uri["profile"] = {
            o["OutputName"]: o["S3Output"]["S3Uri"]
            for o in execution.properties["preprocess"]["ProcessingOutputConfig"]["Outputs"]
        }["profile"]
        found = {"steps": names, "splits": {}, "profile": {}, "files": {}}
        s3 = aws.client("s3")
        for split in ("train", "validation", "test"):
            download_prefix(s3, uri[split], folder / "read" / split)
            files = sorted(p.name for p in (folder / "read" / split).iterdir())
            rows = pd.concat([pd.read_parquet(folder / "read" / split / name) for name in files])
            found["files"][split] = files
            found["splits"][split] = sorted(map(tuple, rows[["id", "text", "label", "language"]].to_numpy()))
        download_prefix(s3, uri["profile"], folder / "read" / "profile")
        for name in ("baseline.json", "reference.json", "vocabulary.json"):
            found["profile"][name] = json.loads((folder / "read" / "profile" / name).read_text())
        found["logs"] = sorted(p.name for p in (folder / "logs").glob("*shards*.log"))
    return found


@pytest.mark.slow
def test_preprocessing_over_four_instances_gives_one_instances_splits_and_profile(tmp_path, mirror, monkeypatch):
    from emulator.containers import check_namespaces

    check_namespaces()
    monkeypatch.setenv("PRAVAH_DATA_MIRROR", str(mirror))  # the containers' internet
    said: list[str] = []
    one = _emulated_preprocess(tmp_path, 1, said)
    four = _emulated_preprocess(tmp_path, 4, said)
    assert sorted(one["steps"]) == ["ingest", "preprocess", "validate"], one["steps"]
    assert sorted(four["steps"]) == ["ingest", "preprocess", "preprocess-shards", "validate"], four["steps"]
    # the ingested folder's nine objects (a manifest, each language's labels.txt and train/dev/test.tsv) shared
    # round the four instances: algo-2's share holds no table file, so it writes an empty part of the profile and
    # no split; the others their parts of each split
    assert four["files"]["train"] == [f"data-algo-{i}.parquet" for i in (1, 3, 4)], four["files"]
    assert len(four["logs"]) == 4, four["logs"]
    for split in ("train", "validation", "test"):
        assert len(one["splits"][split]) > 100 and one["splits"][split] == four["splits"][split], split
    assert _close(one["profile"], four["profile"]) == [], _close(one["profile"], four["profile"])
