"""Evaluate: score the test split and write `evaluation.json` in SageMaker's model-quality report shape.

`multiclass_classification_metrics` holds accuracy, macro and weighted F1 (with bootstrap standard
deviations), per-class precision/recall/F1, one-vs-rest ROC-AUC, log loss, the confusion matrix and a
calibration summary; `per_language` holds accuracy and macro-F1 for each language. The confusion matrix
is also drawn as a PNG.

When the registry has a champion (an optional `champion` input), it is scored on the same test split, today,
and `comparison` says how the candidate fares against it: `margin` = candidate - champion + tolerance, which
the gate requires to be at least 0. With no champion, `margin` is the tolerance and only the threshold counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artifact.calibration import apply_temperature, reliability
from artifact.predictor import Predictor
from foundation.errors import PravahError
from foundation.fingerprint import hash_tree
from steps.io import channel_batches, channel_rows, positive_rows, processing_parser, read_channel, run_entry
from steps.parallel import spawned_map
from steps.progress import CHUNK_ROWS, Meter

BOOTSTRAP_SAMPLES = 200
# The metrics every report has under its section, each {"value": ...}: what a registered version carries
HEADLINE_METRICS = {
    "multiclass_classification_metrics": ("accuracy", "macro_f1", "weighted_f1"),
    "regression_metrics": ("mae", "mse", "rmse", "r2"),
}
# What `test_metrics` names, when the report has it: the registry's metrics of a version, for any task
TEST_METRICS = ("accuracy", "macro_f1", "weighted_f1", "roc_auc", "roc_auc_ovr", "log_loss", "mae", "mse", "rmse", "r2")


def _metric(value: float, std: float | None = None) -> dict[str, Any]:
    return {"value": round(float(value), 6), "standard_deviation": None if std is None else round(float(std), 6)}


_SCORERS: list[Predictor] = []  # a scoring process's own Predictors


def _load_scorers(*model_dirs: str) -> None:
    _SCORERS[:] = [Predictor(Path(model_dir)) for model_dir in model_dirs]


def _score(item):
    which, rows = item
    return which, _SCORERS[which].predict_proba(rows, calibrated=False)


@dataclass
class ScoredTest:
    """What evaluation keeps of the test split once it is scored: each row's label and language as small codes
    (pandas Categoricals; no language column: None), and each model's probabilities before calibration."""

    truth: Any
    languages: Any
    raw: list


def score_test(predictors: list[Predictor], folder: Path, chunk_rows: int = CHUNK_ROWS) -> ScoredTest:
    """The test split scored by each model (the candidate, and the champion when there is one) in one pass. A
    split of one chunk is read whole and scored here, one call per model, as before (the same numbers); a bigger
    one is read a chunk at a time and scored by a process per core, each loading the artifacts itself, saying
    how far it is, so that memory holds a few chunks, the codes and the probabilities, not the texts."""
    import numpy as np
    import pandas as pd
    from pandas.api.types import union_categoricals

    target = predictors[0].manifest.get("target", "label")
    truths, languages = [], []

    def kept(frame):  # a chunk's labels and languages, as codes
        truths.append(pd.Categorical(frame[target].astype(str)))
        if "language" in frame.columns:
            languages.append(pd.Categorical(frame["language"]))
        return frame

    rows = channel_rows(folder)
    if rows <= chunk_rows:
        test = kept(read_channel(folder))
        raw = [predictor.predict_proba(test, calibrated=False) for predictor in predictors]
    else:
        chunks = (
            (which, frame)
            for frame in map(kept, channel_batches(folder, None, chunk_rows))
            for which in range(len(predictors))
        )
        meter, done = Meter("test rows scored", rows * len(predictors)), [[] for _ in predictors]
        loaded = tuple(str(predictor.model_dir) for predictor in predictors)
        scored = spawned_map(
            _score, chunks, initializer=_load_scorers, initargs=loaded, while_waiting=_import_report_libraries
        )
        for which, answer in scored:
            done[which].append(answer)
            meter.add(len(answer))
        meter.done()
        raw = [np.vstack(answers) for answers in done]
    language = union_categoricals(languages, sort_categories=True) if languages else None
    return ScoredTest(union_categoricals(truths, sort_categories=True), language, raw)


def _import_report_libraries() -> None:
    """What the report needs after the scoring (a second or two of imports), taken while the processes score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import sklearn.metrics  # noqa: F401


def label_codes(truth, labels: list[str]) -> tuple[Any, list[str]]:
    """Each row's label as its column among the model's `labels`, a label the model does not know as a code
    past them; and the names of all the codes."""
    import numpy as np

    column = {label: i for i, label in enumerate(labels)}
    unknown = [name for name in truth.categories if name not in column]
    names = [*labels, *unknown]
    code = {name: i for i, name in enumerate(names)}
    return np.array([code[name] for name in truth.categories], dtype=np.int64)[truth.codes], names


def evaluate(predictor: Predictor, scored: ScoredTest, which: int = 0, seed: int = 42) -> dict[str, Any]:
    """A classification's report of the `which`-th model scored. Computed on each row's codes (the label's
    column, the predicted column), which scikit-learn's metrics count exactly as the label strings."""
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    labels = predictor.labels
    raw = scored.raw[which]
    truth, names = label_codes(scored.truth, labels)
    probabilities = apply_temperature(raw, predictor.temperature)  # as served
    predicted = probabilities.argmax(axis=1)

    ranks = np.argsort(np.argsort(np.array(names, dtype=object)))  # codes that sort as their names do
    deviations = bootstrap_deviations(ranks[truth], ranks[predicted], np.random.default_rng(seed))

    def with_std(name: str, score) -> dict[str, Any]:
        return _metric(score(truth, predicted), deviations[name])

    columns = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=columns, zero_division=0)
    known = truth < len(labels)
    confidence = probabilities.max(axis=1)
    # calibration on the test rows whose label the model knows: as served (with training's temperature) and raw
    ece, calibration = reliability(probabilities[known], truth[known])
    raw_ece, _ = reliability(raw[known], truth[known])

    metrics: dict[str, Any] = {
        "accuracy": with_std("accuracy", accuracy_score),
        "macro_f1": with_std("macro_f1", lambda t, p: f1_score(t, p, average="macro", zero_division=0)),
        "weighted_f1": with_std("weighted_f1", lambda t, p: f1_score(t, p, average="weighted", zero_division=0)),
        "log_loss": _metric(log_loss(truth[known], probabilities[known], labels=columns)),
        "expected_calibration_error": _metric(ece),
        "expected_calibration_error_uncalibrated": _metric(raw_ece),
        "temperature": _metric(predictor.temperature),
        "mean_confidence": _metric(confidence.mean()),
    }
    if len(np.unique(truth[known])) > 1 and len(labels) == 2:  # binary: the area for the positive (second) class
        metrics["roc_auc"] = _metric(roc_auc_score(truth[known] == 1, probabilities[known][:, 1]))
        metrics["positive_class"] = labels[1]
    elif len(np.unique(truth[known])) > 1:
        metrics["roc_auc_ovr"] = _metric(
            roc_auc_score(truth[known], probabilities[known], multi_class="ovr", labels=columns)
        )
    metrics["per_class"] = {
        label: {
            "precision": _metric(precision[i]),
            "recall": _metric(recall[i]),
            "f1": _metric(f1[i]),
            "support": int(support[i]),
        }
        for i, label in enumerate(labels)
    }
    metrics["confusion_matrix"] = {
        "labels": labels,
        "matrix": confusion_matrix(truth, predicted, labels=columns).tolist(),
    }
    metrics["calibration"] = calibration
    per_language = {}
    languages = scored.languages
    for code, language in enumerate(languages.categories if languages is not None else []):
        rows = languages.codes == code
        if rows.any():
            per_language[str(language)] = {
                "rows": int(rows.sum()),
                "accuracy": _metric(accuracy_score(truth[rows], predicted[rows])),
                "macro_f1": _metric(f1_score(truth[rows], predicted[rows], average="macro", zero_division=0)),
            }
    return {
        "multiclass_classification_metrics": metrics,
        "per_language": per_language,
        "model": {
            "family": predictor.manifest["family"],
            "training_data_sha256": predictor.manifest.get("training_data_sha256"),
        },
        "test_rows": len(truth),
    }


def bootstrap_deviations(truth, predicted, rng, samples: int = BOOTSTRAP_SAMPLES) -> dict[str, float]:
    """The standard deviations of accuracy, macro-F1 and weighted-F1 over bootstrap resamples of the test rows,
    as scikit-learn defines the three (a class in neither the truth nor the predictions of a resample is out of
    its macro average). Resampling n rows with replacement draws the confusion matrix's cells from a
    multinomial of their shares, so the resamples are drawn as matrices: milliseconds, whatever the rows."""
    import numpy as np

    rows = len(truth)
    classes, codes = np.unique(np.concatenate([truth, predicted]), return_inverse=True)
    k = len(classes)
    cells = np.bincount(codes[:rows] * k + codes[rows:], minlength=k * k)
    drawn = rng.multinomial(rows, cells / rows, size=samples).reshape(samples, k, k)
    hits, support, said = drawn.diagonal(axis1=1, axis2=2), drawn.sum(axis=2), drawn.sum(axis=1)
    present = support + said  # 2 tp + fp + fn: a class's F1 denominator, 0 when it is absent
    f1 = np.divide(2 * hits, present, out=np.zeros(present.shape), where=present > 0)
    return {
        "accuracy": float(np.std(hits.sum(axis=1) / rows)),
        "macro_f1": float(np.std(f1.sum(axis=1) / (present > 0).sum(axis=1))),
        "weighted_f1": float(np.std((f1 * support).sum(axis=1) / rows)),
    }


def evaluate_regression(predictor: Predictor, test, seed: int = 42) -> dict[str, Any]:
    """SageMaker's `regression_metrics` shape: mae, mse, rmse and r2, with bootstrap deviations."""
    import numpy as np
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    truth = test[predictor.manifest["target"]].astype(float).to_numpy()
    predicted = np.asarray(predictor.predict_values(test), dtype=float)
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(truth), len(truth)) for _ in range(BOOTSTRAP_SAMPLES)]
    scores = {
        "mae": mean_absolute_error,
        "mse": mean_squared_error,
        "rmse": lambda t, p: mean_squared_error(t, p) ** 0.5,
        "r2": r2_score,
    }
    metrics = {
        name: _metric(score(truth, predicted), np.std([score(truth[s], predicted[s]) for s in samples]))
        for name, score in scores.items()
    }
    model = {
        "family": predictor.manifest["family"],
        "training_data_sha256": predictor.manifest.get("training_data_sha256"),
    }
    return {"regression_metrics": metrics, "model": model, "test_rows": len(truth)}


def plot_confusion(report: dict[str, Any], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = report["multiclass_classification_metrics"]["confusion_matrix"]
    labels, counts = matrix["labels"], matrix["matrix"]
    figure, axes = plt.subplots(figsize=(7, 6))
    image = axes.imshow(counts, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    peak = max(max(row) for row in counts) or 1
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            axes.text(j, i, value, ha="center", va="center", color="white" if value > peak / 2 else "black")
    figure.colorbar(image)
    macro = report["multiclass_classification_metrics"]["macro_f1"]["value"]
    axes.set_title(f"confusion matrix (test, macro-F1 {macro:.3f})")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def scores(report: dict[str, Any]) -> dict[str, Any]:
    return report.get("multiclass_classification_metrics") or report["regression_metrics"]


def test_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The task's metrics on the test split by name (macro_f1, roc_auc, r2, rmse, ...), with the gate's metric
    named: what a registered version carries whatever its task."""
    found = {name: scores(report)[name]["value"] for name in TEST_METRICS if name in scores(report)}
    return {**found, "gate_metric": report["comparison"]["metric"]}


def compare(report: dict[str, Any], champion: dict[str, Any] | None, metric: str, tolerance: float) -> dict:
    """The candidate against the champion on one metric (higher is better), both scored on today's test split."""
    if metric not in scores(report):
        names = ", ".join(k for k, v in scores(report).items() if isinstance(v, dict) and "value" in v)
        raise PravahError(f"gate_metric '{metric}' is not a metric of this model's test report (it has: {names})")
    candidate = scores(report)[metric]["value"]
    if champion is None:
        alone = "no champion to compare with"
        return {
            "metric": metric,
            "candidate": candidate,
            "champion": None,
            "tolerance": tolerance,
            "delta": None,
            "margin": tolerance,
            "against_champion": alone,
            "note": f"{alone}: the margin is the tolerance, only the threshold counts",
        }
    score = scores(champion)[metric]["value"]
    delta = round(candidate - score, 6)
    return {
        "metric": metric,
        "candidate": candidate,
        "champion": score,
        "tolerance": tolerance,
        "delta": delta,
        "margin": round(delta + tolerance, 6),
        "champion_model": champion["model"],
        "note": f"{candidate:g} - the champion's {score:g} + tolerance {tolerance:g}",
        "against_champion": f"against the champion's {score:g} on the same test split, delta {delta:g} needs "
        f">= -tolerance = {-tolerance:g}",
    }


def write_prediction_reference(predictor: Predictor, raw, path) -> None:
    """The model's answers on the test split (labels and confidences, as served: calibrated), from the
    probabilities evaluation scored (`raw`): what monitoring compares live answers with."""
    import numpy as np

    from steps.profile import Profile

    served = apply_temperature(raw, predictor.temperature)
    reference = Profile()
    labels = np.array(predictor.labels, dtype=object)[served.argmax(axis=1)]
    reference.add_columns({"prediction": labels.tolist(), "confidence": served.max(axis=1).tolist()})
    reference.save(path)


def main(argv: Sequence[str] | None = None) -> None:
    parser = processing_parser(__doc__)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--gate_metric",
        default="macro_f1",
        choices=["accuracy", "macro_f1", "weighted_f1", "roc_auc", "roc_auc_ovr", "r2"],
    )  # higher is better
    parser.add_argument("--champion_tolerance", type=float, default=0.0)
    parser.add_argument(
        "--chunk_rows", type=positive_rows, default=CHUNK_ROWS, help="test rows scored at once: what sets memory"
    )
    args = parser.parse_args(argv)
    root = args.processing_root
    predictor = Predictor(root / "input" / "model", lazy=True)  # loaded only where it scores
    classification = predictor.task != "regression"
    champion_dir = root / "input" / "champion"
    models = [predictor, *([Predictor(champion_dir, lazy=True)] if champion_dir.exists() else [])]
    if classification:  # scored once, both models in one pass: the reports and the monitoring reference
        scored = score_test(models, root / "input" / "test", args.chunk_rows)
        report = evaluate(predictor, scored, 0, args.seed)
        champion = evaluate(models[1], scored, 1, args.seed) if len(models) > 1 else None
        raw = scored.raw[0]
    else:
        test = read_channel(root / "input" / "test")
        report = evaluate_regression(predictor, test, args.seed)
        champion = evaluate_regression(models[1], test, args.seed) if len(models) > 1 else None
    report["comparison"] = compare(report, champion, args.gate_metric, args.champion_tolerance)
    report["test_metrics"] = test_metrics(report)
    # the artifact's digest as the registry computes it: the cloud's registration reads it from here
    report["model"]["artifact_sha256"] = hash_tree(predictor.model_dir).digest
    out = root / "output" / "evaluation"
    (out / "evaluation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    if classification:
        plot_confusion(report, out / "confusion_matrix.png")
        write_prediction_reference(predictor, raw, out / "reference.json")
    print(
        "test: "
        + ", ".join(f"{k} {v['value']:.4f}" for k, v in scores(report).items() if isinstance(v, dict) and "value" in v)
    )
    print(f"against the champion: {report['comparison']}")
    for language, values in report.get("per_language", {}).items():
        print(f"  {language}: accuracy {values['accuracy']['value']:.4f}, macro-F1 {values['macro_f1']['value']:.4f}")


if __name__ == "__main__":
    run_entry(main)
