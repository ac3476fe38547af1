"""Performance estimated without labels, against the truth: the default model (trained on Hindi and English)
answers SIB-200 windows of languages it knows and of languages it never saw; the monitoring job estimates each
window's accuracy and macro-F1 from the calibrated confidences alone (monitoring/estimate.py), then, given the
labels, measures them. Prints estimate, truth, error and whether the window raised an estimated-accuracy alert.

    PRAVAH_DATA_MIRROR=../shared/datasets/sib-200 python -m benchmarks.estimation
"""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.monitoring import data_mirror, trained_default_model

WINDOWS = {  # name: (languages, split); the temperature was fitted on the trained languages' dev split
    "hin+eng test (trained languages, held out)": (("hin_Deva", "eng_Latn"), "test"),
    "hin+eng dev (the calibration's own rows)": (("hin_Deva", "eng_Latn"), "dev"),
    "mar test (a sister language, same script)": (("mar_Deva",), "test"),
    "ben+tam+urd test (never seen)": (("ben_Beng", "tam_Taml", "urd_Arab"), "test"),
}
AT = datetime(2026, 12, 1, 10, tzinfo=UTC)


def window(mirror: Path, predictor, languages: tuple[str, ...], split: str, folder: Path) -> dict[str, str]:
    """The window's answers written as captured exchanges under `folder`; their labels by predictionId."""
    from inference.capture import capture_line, new_id

    rows = []
    for language in languages:
        with (mirror / "data" / "annotated" / language / f"{split}.tsv").open(encoding="utf-8") as handle:
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            rows += [(row["text"], language, row["category"]) for row in reader]
    labels, lines = {}, []
    for (text, language, label), result in zip(rows, predictor.results([row[0] for row in rows]), strict=True):
        labels[prediction_id := new_id()] = label
        lines.append(
            capture_line(
                prediction_id,
                {"input": {"text": text, "metadata": {"language": language}}},
                {"predictionId": prediction_id, "result": result},
                AT,
            )
        )
    path = folder / "variant" / AT.strftime("%Y/%m/%d/%H") / "window.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(lines), encoding="utf-8")
    return labels


def main() -> None:
    from monitoring.config import MonitoringConfig
    from monitoring.job import run

    work = Path(tempfile.mkdtemp(prefix="pravah-bench-estimation-"))
    baseline_file, predictor = trained_default_model(work)
    baseline, constraints = json.loads(baseline_file.read_text()), MonitoringConfig().constraints()
    print(
        f"evaluation (test split): accuracy {baseline['quality']['accuracy']:.3f}, macro-F1 "
        f"{baseline['quality']['macro_f1']:.3f}; temperature {predictor.temperature}; an alert when the estimated "
        f"accuracy is more than {constraints['max_estimated_accuracy_drop']} below the evaluation's\n"
    )
    columns = ("accuracy est / true / error", "macro-F1 est / true / error")
    print(f"{'window':<44} {'rows':>5}  {columns[0]:>28}  {columns[1]:>28}  alert")
    for number, (name, (languages, split)) in enumerate(WINDOWS.items()):
        source = work / f"window-{number}"
        labels = window(data_mirror(), predictor, languages, split, source)
        metrics = run(
            source,
            work / f"out-{number}",
            AT - timedelta(minutes=1),
            AT + timedelta(minutes=1),
            baseline,
            constraints,
            labels,
        )
        truth, estimate = metrics["model_quality"], metrics["model_quality"]["estimated"]
        violations = json.loads((work / f"out-{number}" / "constraint_violations.json").read_text())["violations"]
        alert = any(v["feature_name"].startswith("estimated_accuracy") for v in violations)
        cells = [
            f"{estimate[k]:.3f} / {truth[k]:.3f} / {estimate[k] - truth[k]:+.3f}" for k in ("accuracy", "macro_f1")
        ]
        print(
            f"{name:<44} {estimate['rows']:>5}  {cells[0]:>28}  {cells[1]:>28}  {'yes' if alert else 'no'}", flush=True
        )


if __name__ == "__main__":
    main()
