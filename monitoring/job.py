"""The monitoring job, with SageMaker Model Monitor's bring-your-own-container contract: it reads the
environment (`dataset_source`, `output_path`, `start_time`, `end_time`, `baseline_statistics`,
`baseline_constraints`, and `ground_truth` for labels), and writes `statistics.json`, `metrics.json`,
`constraint_violations.json` and `drift_report.html` to `output_path`. `pravah monitor run` runs it
locally on an endpoint's capture folder; SageMaker runs the same code on a schedule.

It streams: captured files are read line by line into a `Profile` (counts) and a bounded reservoir sample
for the HTML report, so memory does not grow with the number of records. Unreadable files and corrupt lines
are counted and skipped, with a warning.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from monitoring.drift import compare
from monitoring.profile import CATEGORICAL, NUMERIC, Profile, text_features

SAMPLE_ROWS = 5_000  # rows of the window kept for the HTML report
WORKERS = min(4, os.cpu_count() or 1)  # processes reading the captured files


@dataclass
class Window:
    profile: Profile = field(default_factory=Profile)
    sample: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    unreadable_files: int = 0
    corrupt_lines: int = 0
    outside_window: int = 0
    labelled: int = 0
    confusion: Counter = field(default_factory=Counter)  # (truth, predicted) -> count


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def captured_files(source: Path, start: datetime, end: datetime) -> Iterator[Path]:
    """Files under `<source>/<variant>/yyyy/mm/dd/hh/` whose hour overlaps [start, end)."""
    first = start.replace(minute=0, second=0, microsecond=0)
    for variant in sorted(p for p in source.iterdir() if p.is_dir()) if source.is_dir() else []:
        hour = first
        while hour < end:
            folder = variant / hour.strftime("%Y/%m/%d/%H")
            if folder.is_dir():
                yield from sorted(folder.glob("*.jsonl"))
            hour += timedelta(hours=1)


def scan(files: list[Path], start: datetime, end: datetime, vocabulary: frozenset[str], labels: dict[str, str],
         workers: int = 1, while_waiting: Callable[[], object] | None = None) -> Window:  # fmt: skip
    """The window's counts, sample and quality from `files`: split among `workers` processes, then merged;
    `while_waiting` runs in this process meanwhile."""
    if workers <= 1 or len(files) < 2:
        return _scan_files(files, start, end, vocabulary, labels)
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        parts = [pool.submit(_scan_files, files[i::workers], start, end, vocabulary, labels, i) for i in range(workers)]
        if while_waiting:
            while_waiting()
        return merge([part.result() for part in parts])


def _scan_files(files: list[Path], start: datetime, end: datetime, vocabulary: frozenset[str],
                labels: dict[str, str], seed: int = 7) -> Window:  # fmt: skip
    window, rng = Window(), random.Random(seed)
    for path in files:
        window.files += 1
        bad_before = window.corrupt_lines
        try:
            with path.open("rb") as handle:
                for line in handle:
                    _take(line, window, start, end, vocabulary, labels, rng)
        except OSError as exc:
            window.unreadable_files += 1
            print(f"warning: skipped unreadable capture file {path}: {exc}", file=sys.stderr)
            continue
        if window.corrupt_lines > bad_before:
            print(f"warning: {path}: skipped {window.corrupt_lines - bad_before} corrupt lines", file=sys.stderr)
    return window


def merge(windows: list[Window]) -> Window:
    merged, rng = Window(), random.Random(7)
    for window in windows:
        merged.profile = merged.profile.merge(window.profile)
        for name in ("files", "unreadable_files", "corrupt_lines", "outside_window", "labelled"):
            setattr(merged, name, getattr(merged, name) + getattr(window, name))
        merged.confusion.update(window.confusion)
    for window in windows:  # each part's sample in proportion to the rows it saw
        share = round(SAMPLE_ROWS * window.profile.rows / max(merged.profile.rows, 1))
        merged.sample += rng.sample(window.sample, min(share, len(window.sample)))
    return merged


def _take(line: bytes, window: Window, start: datetime, end: datetime, vocabulary: frozenset[str],
          labels: dict[str, str], rng: random.Random) -> None:  # fmt: skip
    try:
        record = orjson.loads(line)
        if not _within(record["eventMetadata"]["inferenceTime"], start, end):
            window.outside_window += 1
            return
        request = orjson.loads(record["captureData"]["endpointInput"]["data"])["input"]
        answer = orjson.loads(record["captureData"]["endpointOutput"]["data"])
        text, result = request["text"], answer["result"]
        row = text_features(text, (request.get("metadata") or {}).get("language"), vocabulary)
        row["prediction"], row["confidence"] = str(result["prediction"]), float(result["confidence"])
    except (ValueError, KeyError, TypeError, AttributeError):
        window.corrupt_lines += 1
        return
    window.profile.add(row)
    if len(window.sample) < SAMPLE_ROWS:
        window.sample.append(row)
    elif (slot := rng.randrange(window.profile.rows)) < SAMPLE_ROWS:  # reservoir sampling: every row equally likely
        window.sample[slot] = row
    truth = labels.get(record["eventMetadata"].get("eventId", ""))
    if truth is not None:
        window.labelled += 1
        window.confusion[truth, row["prediction"]] += 1


def _within(inference_time: str, start: datetime, end: datetime) -> bool:
    """start <= time < end. A UTC time with a `Z` (as captured) is compared as text to the second, and parsed
    only when it falls in the first or the last second of the window."""
    if inference_time.endswith("Z") and len(inference_time) >= 20:
        second, first, last = inference_time[:19], _second(start), _second(end)
        if first < second < last:
            return True
        if second < first or second > last:
            return False
    return start <= parse_time(inference_time) < end


@lru_cache(maxsize=16)
def _second(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def quality(confusion: Counter) -> dict[str, float]:
    total = sum(confusion.values())
    classes = sorted({c for pair in confusion for c in pair})
    f1s = []
    for label in classes:
        tp = confusion[label, label]
        fp = sum(n for (truth, predicted), n in confusion.items() if predicted == label and truth != label)
        fn = sum(n for (truth, predicted), n in confusion.items() if truth == label and predicted != label)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"accuracy": sum(confusion[c, c] for c in classes) / total, "macro_f1": sum(f1s) / len(f1s)}


def run(source: Path, output: Path, start: datetime, end: datetime, baseline: dict[str, Any],
        constraints: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    reference = Profile.from_json(baseline["reference"])
    vocabulary = frozenset(baseline.get("vocabulary", []))
    files = list(captured_files(source, start, end))
    window = scan(files, start, end, vocabulary, labels, workers=min(WORKERS, len(files)),
                  while_waiting=_import_report_libraries)  # fmt: skip
    min_records = int(constraints.get("min_records", 100))
    judged = window.profile.rows >= min_records
    drift = compare(reference, window.profile, constraints.get("thresholds", {})) if judged else []
    violations = [{"feature_name": d.feature, "constraint_check_type": "baseline_drift_check",
                   "description": f"{d.method} {d.score:.4f} >= {d.threshold:g} against the training baseline"}
                  for d in drift if d.drift]  # fmt: skip
    metrics: dict[str, Any] = {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "records": window.profile.rows, "files": window.files, "unreadable_files": window.unreadable_files,
        "corrupt_lines": window.corrupt_lines, "outside_window": window.outside_window,
        "judged": judged, "min_records": min_records,
        "features": {d.feature: d.to_json() for d in drift},
        "language_mix": window.profile.shares("language"), "prediction_mix": window.profile.shares("prediction"),
        "unknown_token_rate": window.profile.mean("unknown_token_rate"),
        "confidence_shift": _shift(reference, window.profile, "confidence"),
        "text_length_shift": _shift(reference, window.profile, "text_length"),
    }  # fmt: skip
    if window.labelled:
        found = quality(window.confusion)
        expected = baseline.get("quality", {})
        metrics["model_quality"] = {"labelled": window.labelled, **found, "baseline": expected}
        drop = expected.get("accuracy", found["accuracy"]) - found["accuracy"]
        if drop > float(constraints.get("max_accuracy_drop", 0.05)):
            violations.append({"feature_name": "accuracy", "constraint_check_type": "model_quality_check",
                               "description": f"accuracy {found['accuracy']:.4f} is {drop:.4f} below the baseline "
                               f"{expected['accuracy']:.4f} over {window.labelled} labelled predictions"})  # fmt: skip
    metrics["violations"] = len(violations)
    output.mkdir(parents=True, exist_ok=True)
    window.profile.save(output / "statistics.json")
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False))
    (output / "constraint_violations.json").write_text(json.dumps({"violations": violations}, indent=2))
    if judged:
        _html_report(reference, window.sample, constraints, output / "drift_report.html")
    return metrics


def _shift(reference: Profile, current: Profile, feature: str) -> float | None:
    before, now = reference.mean(feature), current.mean(feature)
    return None if before is None or now is None else round(now - before, 6)


def _import_report_libraries() -> None:
    import evidently.presets  # noqa: F401 - a few seconds of imports, taken while the files are read


def _html_report(reference: Profile, sample: list[dict[str, Any]], constraints: dict[str, Any], path: Path) -> None:
    """Evidently's data-drift report on the window's sample against a sample of the reference, with the same
    tests and thresholds as the verdicts in metrics.json."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    current = pd.DataFrame(sample)
    columns = [c for c in current.columns if reference.has(c)]
    definition = DataDefinition(numerical_columns=[c for c in NUMERIC if c in columns],
                                categorical_columns=[c for c in CATEGORICAL if c in columns])  # fmt: skip
    threshold = constraints.get("thresholds", {}).get("default", 0.1)
    preset = DataDriftPreset(columns=columns, cat_method="jensenshannon", num_method="wasserstein",
                             cat_threshold=threshold, num_threshold=threshold)  # fmt: skip
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference.frame()[columns], data_definition=definition),
    )
    snapshot.save_html(str(path))


def read_labels(path: Path | None) -> dict[str, str]:
    if not path or not path.is_file():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            found[item["predictionId"]] = str(item["label"])
    return found


def main() -> None:
    env = os.environ
    end = parse_time(env["end_time"]) if env.get("end_time") else datetime.now(UTC)
    start = parse_time(env["start_time"]) if env.get("start_time") else end - timedelta(hours=1)
    baseline = json.loads(Path(env["baseline_statistics"]).read_text())
    constraints = json.loads(Path(env["baseline_constraints"]).read_text()) if env.get("baseline_constraints") else {}
    labels = read_labels(Path(env["ground_truth"]) if env.get("ground_truth") else None)
    metrics = run(Path(env.get("dataset_source", "/opt/ml/processing/input/endpoint")),
                  Path(env.get("output_path", "/opt/ml/processing/resultdata")), start, end, baseline, constraints,
                  labels)  # fmt: skip
    print(json.dumps({"records": metrics["records"], "violations": metrics["violations"]}))


if __name__ == "__main__":
    main()
