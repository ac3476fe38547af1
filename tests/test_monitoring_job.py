"""The monitoring job on made-up captures: its verdicts agree with Evidently's own tests, a batch's features
match their definitions, what it cannot use is counted, the label-free estimate matches the truth, and a
SageMaker endpoint's capture reads with Model Monitor's contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from monitoring.drift import compare
from steps.profile import Profile


def test_verdicts_match_evidentlys_own_tests():
    import numpy as np
    from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
    from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(3)
    reference = pd.DataFrame(
        {"script": rng.choice(["LATIN", "DEVANAGARI"], 3000), "text_length": rng.integers(30, 300, 3000)}
    )
    current = pd.DataFrame(
        {
            "script": rng.choice(["LATIN", "DEVANAGARI", "TAMIL"], 2000, p=[0.3, 0.3, 0.4]),
            "text_length": rng.integers(60, 400, 2000),
        }
    )
    profiles = []
    for frame in (reference, current):
        profile = Profile()
        for row in frame.to_dict("records"):
            profile.add({"script": row["script"], "text_length": int(row["text_length"])})
        profiles.append(profile)
    ours = {d.feature: d for d in compare(*profiles, {"default": 0.1})}
    theirs_js = _jensenshannon(reference["script"], current["script"], ColumnType.Categorical, 0.1)
    theirs_w = _wasserstein_distance_norm(reference["text_length"], current["text_length"], ColumnType.Numerical, 0.1)
    assert ours["script"].score == pytest.approx(theirs_js[0]) and ours["script"].drift == theirs_js[1]
    assert ours["text_length"].score == pytest.approx(theirs_w[0]) and ours["text_length"].drift == theirs_w[1]


def test_features_of_a_batch_match_the_definitions_one_text_at_a_time():
    from steps.profile import Vocabulary, text_feature_columns

    texts = ["Hello world", "भारत ने मैच जीता", "", "123 !!", "ab कख", "கல்வி 𝐀𝐁𝐂", "𐌰𐌱𐌲 x", "  Lots   OF  space  "]
    vocabulary = Vocabulary.of_texts(["hello there", "भारत जीता", "lots of"])
    found = text_feature_columns(texts, ["hi", None, "en", "xx", "", "ta", None, "mar_Deva"], vocabulary)
    assert found["script"] == ["LATIN", "DEVANAGARI", "NONE", "NONE", "LATIN", "TAMIL", "GOTHIC", "LATIN"]
    assert found["text_length"] == [len(text) for text in texts]  # code points, as Python counts them
    known = set(vocabulary.to_json())
    expected = [
        1 - sum(w in known for w in t.lower().split()) / len(t.lower().split()) if t.split() else 0.0 for t in texts
    ]
    assert found["unknown_token_rate"] == pytest.approx(expected)
    assert found["language"] == ["hin_Deva", None, "eng_Latn", "unknown", None, "tam_Taml", None, "mar_Deva"]


def test_the_job_counts_what_it_cannot_use_and_keeps_a_uniform_bounded_sample(tmp_path):
    from datetime import timedelta

    from inference.capture import capture_line
    from monitoring.window import SAMPLE_ROWS, captured_files, scan
    from steps.profile import Vocabulary

    start = datetime(2026, 11, 26, 10, tzinfo=UTC)
    folder = tmp_path / "variant" / "2026" / "11" / "26" / "10"
    folder.mkdir(parents=True)
    answer = {"predictionId": "p", "result": {"prediction": "sports", "confidence": 0.9}}
    lines = [
        capture_line(
            f"id-{i}",
            {"input": {"text": f"match {i}", "metadata": {"language": "en"}}},
            {"result": {"prediction": "sports", "confidence": i / 12_000}},
            start + timedelta(seconds=1 + i % 3000),
        )
        for i in range(12_000)
    ]
    lines += [
        capture_line("n", {"input": {"text": 7}}, answer, start + timedelta(seconds=5)),  # text not a string
        capture_line("l", {"input": {"text": "x", "metadata": {"language": ["en"]}}}, answer, start),
        capture_line("o", {"input": {"text": "late"}}, answer, start + timedelta(hours=2)),  # outside
        capture_line("e", {"input": {"text": "edge"}}, answer, start),  # the window's first instant: inside
        '{"captureData": {}}\n',
        "not json\n",
    ]
    (folder / "capture.jsonl").write_text("".join(lines), encoding="utf-8")
    files = list(captured_files(tmp_path, start, start + timedelta(hours=1)))
    window = scan(files, start, start + timedelta(hours=1), Vocabulary(["match"]), {"id-3": "sports"})
    assert (window.profile.rows, window.corrupt_lines, window.outside_window) == (12_001, 4, 1)
    assert window.labelled == 1 and window.confusion["sports", "sports"] == 1
    assert window.profile.counts["unknown_token_rate"][0.5] == 12_000
    assert len(window.sample) == SAMPLE_ROWS
    confidences = [row["confidence"] for row in window.sample if row["text_length"] > 4]  # rising line by line
    assert 0.47 < sum(confidences) / len(confidences) < 0.53  # a uniform sample of the stream, not its start


def test_performance_estimated_from_calibrated_confidences_matches_the_truth_they_imply(tmp_path):
    """Answers whose confidences are calibrated by construction (each label drawn with the probability the
    answer gives it; only the top three listed, as served): the job's estimate (monitoring/estimate.py) of
    accuracy and macro-F1 comes within sampling error of the measured ones; languages are estimated apart."""
    import numpy as np

    from inference.capture import capture_line
    from monitoring import job
    from monitoring.estimate import Estimate, probability_rows
    from monitoring.window import captured_files, scan
    from steps.profile import Vocabulary

    classes = ["entertainment", "geography", "health", "politics", "science", "sports", "travel"]
    rng = np.random.default_rng(3)
    start = datetime(2026, 11, 26, 10, tzinfo=UTC)
    folder = tmp_path / "variant" / "2026" / "11" / "26" / "10"
    folder.mkdir(parents=True)
    lines, labels = [], {}
    for i in range(6_000):
        probabilities = rng.dirichlet(np.full(len(classes), 0.4))
        order = np.argsort(-probabilities)
        result = {
            "prediction": classes[order[0]],
            "confidence": float(probabilities[order[0]]),
            "alternatives": [{"value": classes[j], "confidence": float(probabilities[j])} for j in order[1:3]],
        }
        labels[f"id-{i}"] = classes[rng.choice(len(classes), p=probabilities)]
        language = "hi" if i % 2 else "en"
        lines.append(
            capture_line(
                f"id-{i}",
                {"input": {"text": f"match {i}", "metadata": {"language": language}}},
                {"result": result},
                start + timedelta(seconds=1 + i % 3000),
            )
        )
    (folder / "capture.jsonl").write_text("".join(lines), encoding="utf-8")
    files = list(captured_files(tmp_path, start, start + timedelta(hours=1)))
    window = scan(files, start, start + timedelta(hours=1), Vocabulary(["match"]), labels, classes, workers=1)
    measured, estimated = job.quality(window.confusion), window.estimates["labelled"].scores()
    assert estimated["rows"] == window.labelled == 6_000
    assert abs(estimated["accuracy"] - measured["accuracy"]) < 0.02, (estimated, measured)
    assert abs(estimated["macro_f1"] - measured["macro_f1"]) < 0.03, (estimated, measured)
    assert {"language:hin_Deva", "language:eng_Latn"} <= window.estimates.keys()
    assert window.estimates["language:hin_Deva"].rows == 3_000
    # what an answer does not list is shared among the classes it does not name
    rows, predicted = probability_rows([[("sports", 0.5), ("travel", 0.2), ("health", 0.1)]], classes)
    assert predicted.tolist() == [5] and rows.sum() == pytest.approx(1.0) and rows[0, 0] == pytest.approx(0.05)
    parts = Estimate(classes)
    parts.add(rows, predicted)
    assert parts.merge(parts).scores() == {**parts.scores(), "rows": 2}, "sums: workers' parts add up"


def test_the_job_reads_a_sagemaker_endpoints_capture_with_model_monitors_contract(tmp_path):
    """In the cloud the job gets Model Monitor's environment and the endpoint's own capture: bodies as the
    Lambda sends them ({"inputs": [...]}, several predictions per record, base64 when not captured as JSON),
    laid out as `/{endpoint}/{variant}/yyyy/mm/dd/hh/`."""
    import base64
    import os
    import subprocess
    import sys

    from inference.capture import capture_record
    from steps.profile import Vocabulary, text_feature_columns
    from tests.support import REPO

    start = datetime(2026, 11, 26, 10, tzinfo=UTC)
    folder = tmp_path / "endpoint" / "prod" / "AllTraffic" / "2026" / "11" / "26" / "10"
    folder.mkdir(parents=True)

    def answer(*labels):
        return {"predictions": [{"prediction": label, "confidence": 0.8, "alternatives": []} for label in labels]}

    records = [
        capture_record(
            "a",
            {"inputs": ["भारत ने मैच जीता", "a cricket match"]},
            answer("sports", "sports"),
            start + timedelta(minutes=1),
        ),
        capture_record("b", {"text": "election results"}, answer("politics"), start + timedelta(minutes=2)),
        capture_record("c", {"inputs": ["one", "two"]}, answer("sports"), start + timedelta(minutes=3)),
    ]
    encoded = capture_record("d", ["science news"], answer("science"), start + timedelta(minutes=4))
    for side in encoded["captureData"].values():
        side["data"], side["encoding"] = base64.b64encode(side["data"].encode()).decode(), "BASE64"
    lines = [json.dumps(record, ensure_ascii=False) + "\n" for record in (*records, encoded)]
    (folder / "capture.jsonl").write_text("".join(lines), encoding="utf-8")
    reference = Profile()
    texts = ["a cricket match", "election results"]
    reference.add_columns(
        {
            **text_feature_columns(texts, [None, None], Vocabulary(["match"])),
            "prediction": ["sports", "politics"],
            "confidence": [0.9, 0.9],
        }
    )
    baseline = tmp_path / "statistics.json"
    baseline.write_text(json.dumps({"reference": reference.to_json(), "vocabulary": ["match"], "quality": {}}))
    env = {
        **os.environ,
        "dataset_source": str(tmp_path / "endpoint"),
        "sagemaker_endpoint_name": "prod",
        "output_path": str(tmp_path / "out"),
        "start_time": "2026-11-26T10:00:00Z",
        "end_time": "2026-11-26T11:00:00Z",
        "baseline_statistics": str(baseline),
        "baseline_constraints": str(tmp_path / "none.json"),
    }
    done = subprocess.run([sys.executable, "-m", "monitoring.job"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["records"], metrics["corrupt_lines"]) == (4, 1)  # "c": two inputs, one prediction
    assert metrics["prediction_mix"] == {"sports": 0.5, "politics": 0.25, "science": 0.25}
