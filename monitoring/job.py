"""The monitoring job. Its contract keeps the names of Model Monitor's bring-your-own-container one: it reads
the environment (`dataset_source`, `output_path`, `start_time`, `end_time`, `baseline_statistics`,
`baseline_constraints`, and `ground_truth` for labels), and writes `statistics.json`, `metrics.json`,
`constraint_violations.json` and `drift_report.html` to `output_path`. `pravah monitor run` runs it
locally on an endpoint's capture folder; in the cloud, the endpoint's monitoring pipeline runs the same code
(`monitoring/scheduled.py`), since Model Monitor is closed to new customers.

`dataset_source` holds `<endpoint>/<variant>/yyyy/mm/dd/hh/*.jsonl`, as Model Monitor lays out what an
endpoint captured; a record is the predict API's exchange (locally) or a SageMaker endpoint's (in the cloud).

It streams the window (monitoring/window.py), so memory does not grow with the number of records.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitoring.drift import compare
from monitoring.estimate import estimated_performance
from monitoring.window import WORKERS, Window, captured_files, parse_time, scan
from steps.profile import CATEGORICAL, NUMERIC, Profile, Vocabulary

# where Model Monitor puts a schedule's BaselineConfig resources when it sets no path in the environment
BASELINE_STATISTICS = "/opt/ml/processing/baseline/stats/statistics.json"
BASELINE_CONSTRAINTS = "/opt/ml/processing/baseline/constraints/constraints.json"


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


def run(
    source: Path,
    output: Path,
    start: datetime,
    end: datetime,
    baseline: dict[str, Any],
    constraints: dict[str, Any],
    labels: dict[str, str],
) -> dict[str, Any]:
    """Scan the window's captured files under `source` and judge them: the reports in `output`; metrics.json's
    figures."""
    files = list(captured_files(source, start, end))
    window = scan_window(files, start, end, baseline, labels, while_waiting=import_report_libraries)
    return judge(window, output, start, end, baseline, constraints)


def scan_window(
    files: list[Path],
    start: datetime,
    end: datetime,
    baseline: dict[str, Any],
    labels: dict[str, str],
    while_waiting: Callable[[], object] | None = None,
) -> Window:
    """What the window's `files` hold, counted against the baseline's vocabulary and classes, on every core:
    the part of the job a sharded run does on each instance (monitoring.scheduled)."""
    reference = Profile.from_json(baseline["reference"])
    classes = sorted(reference.shares("prediction"))  # what the model predicted on its test split
    vocabulary = Vocabulary(baseline.get("vocabulary", []))
    workers = min(WORKERS, len(files))
    return scan(files, start, end, vocabulary, labels, classes, workers, while_waiting)


def judge(
    window: Window,
    output: Path,
    start: datetime,
    end: datetime,
    baseline: dict[str, Any],
    constraints: dict[str, Any],
) -> dict[str, Any]:
    """The window's verdicts against the baseline under the constraints: statistics.json, metrics.json,
    constraint_violations.json and (when there were enough records) drift_report.html in `output`."""
    reference = Profile.from_json(baseline["reference"])
    min_records = int(constraints.get("min_records", 100))
    judged = window.profile.rows >= min_records
    drift = compare(reference, window.profile, constraints.get("thresholds", {})) if judged else []
    violations = [
        {
            "feature_name": d.feature,
            "constraint_check_type": "baseline_drift_check",
            "description": f"{d.method} {d.score:.4f} >= {d.threshold:g} against the training baseline",
        }
        for d in drift
        if d.drift
    ]
    metrics: dict[str, Any] = {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "records": window.profile.rows,
        "files": window.files,
        "unreadable_files": window.unreadable_files,
        "corrupt_lines": window.corrupt_lines,
        "outside_window": window.outside_window,
        "judged": judged,
        "min_records": min_records,
        "features": {d.feature: d.to_json() for d in drift},
        "language_mix": window.profile.shares("language"),
        "prediction_mix": window.profile.shares("prediction"),
        "unknown_token_rate": window.profile.mean("unknown_token_rate"),
        "confidence_shift": _shift(reference, window.profile, "confidence"),
        "text_length_shift": _shift(reference, window.profile, "text_length"),
    }
    expected = baseline.get("quality", {})
    if window.estimates:
        metrics["estimated_performance"], dropped = estimated_performance(
            window.estimates, expected, min_records, float(constraints.get("max_estimated_accuracy_drop", 0.1))
        )
        violations += dropped
    if window.labelled:
        found = quality(window.confusion)
        metrics["model_quality"] = {"labelled": window.labelled, **found, "baseline": expected}
        if "labelled" in window.estimates:  # the estimate against the truth, over the same predictions
            estimated = window.estimates["labelled"].scores()
            metrics["model_quality"]["estimated"] = estimated
            metrics["model_quality"]["estimate_error"] = round(estimated["accuracy"] - found["accuracy"], 4)
        drop = expected.get("accuracy", found["accuracy"]) - found["accuracy"]
        if drop > float(constraints.get("max_accuracy_drop", 0.05)):
            violations.append(
                {
                    "feature_name": "accuracy",
                    "constraint_check_type": "model_quality_check",
                    "description": f"accuracy {found['accuracy']:.4f} is {drop:.4f} below the baseline "
                    f"{expected['accuracy']:.4f} over {window.labelled} labelled predictions",
                }
            )
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


def import_report_libraries() -> None:
    import evidently.presets  # noqa: F401 - a few seconds of imports, taken while the files are read


def _html_report(reference: Profile, sample: list[dict[str, Any]], constraints: dict[str, Any], path: Path) -> None:
    """Evidently's data-drift report on the window's sample against a sample of the reference, with the same
    tests and thresholds as the verdicts in metrics.json."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    current = pd.DataFrame(sample)
    columns = [c for c in current.columns if reference.has(c)]
    definition = DataDefinition(
        numerical_columns=[c for c in NUMERIC if c in columns],
        categorical_columns=[c for c in CATEGORICAL if c in columns],
    )
    threshold = constraints.get("thresholds", {}).get("default", 0.1)
    preset = DataDriftPreset(
        columns=columns,
        cat_method="jensenshannon",
        num_method="wasserstein",
        cat_threshold=threshold,
        num_threshold=threshold,
    )
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
    baseline = json.loads(Path(env.get("baseline_statistics", BASELINE_STATISTICS)).read_text())
    constraints_file = Path(env.get("baseline_constraints", BASELINE_CONSTRAINTS))
    constraints = json.loads(constraints_file.read_text()) if constraints_file.is_file() else {}
    labels = read_labels(Path(env["ground_truth"]) if env.get("ground_truth") else None)
    source = Path(env.get("dataset_source", "/opt/ml/processing/input/endpoint")) / env["sagemaker_endpoint_name"]
    metrics = run(
        source, Path(env.get("output_path", "/opt/ml/processing/resultdata")), start, end, baseline, constraints, labels
    )
    print(json.dumps({"records": metrics["records"], "violations": metrics["violations"]}))


if __name__ == "__main__":
    main()
