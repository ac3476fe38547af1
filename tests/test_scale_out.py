"""Processing sharded over a SageMaker job's instances, emulated: each instance's container run with its own
/opt/ml and resourceconfig.json, as SageMaker runs them, and what they counted merged into the same answer as
one instance's. The drift job: the endpoint's monitoring pipeline over one instance and over four."""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta

import pytest

ENDPOINT = "sharded-endpoint"
LABELS = ["entertainment", "geography", "health", "politics", "science", "sports", "travel"]
WORDS = {
    "eng": "the match was played in the city and the team won the cup after a long season",
    "hin": "टीम ने शहर में मैच जीता और खिलाड़ियों ने लंबे सत्र के बाद कप उठाया",
    "tam": "அணி நகரத்தில் போட்டியை வென்றது நீண்ட பருவத்திற்குப் பிறகு கோப்பையை வென்றது",
}


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
    from aws.environments import load_environment
    from aws.requests import Aws, s3_location
    from cloud.monitoring import deploy_monitoring_pipeline, monitoring_prefix
    from emulator.containers import check_namespaces
    from emulator.execution import moto_server
    from emulator.scheduled_monitoring import run_monitoring_pipeline
    from monitoring.config import MonitoringConfig

    check_namespaces()
    rng, said = random.Random(11), []
    dev = load_environment("dev")
    with moto_server(dev.account) as url:
        aws = Aws(dev, say=said.append)
        aws.call("s3", "create_bucket", Bucket=dev.bucket, CreateBucketConfiguration={"LocationConstraint": dev.region})
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
