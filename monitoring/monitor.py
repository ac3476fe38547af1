"""`pravah monitor`: run the monitoring job on an endpoint's captured window, as SageMaker would (the job in a
process of its own, with the job's environment contract), then raise alerts and, when configured, retrain.

The baseline is found through lineage: the endpoint's main variant is a registry version, whose pipeline run
wrote the reference profile (preprocess) and the prediction reference (evaluate)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from foundation.errors import PravahError, StepFailed
from foundation.home import Home, write_json_atomic
from monitoring.config import MonitoringConfig

if TYPE_CHECKING:
    from inference.endpoints import EndpointState

log = logging.getLogger("pravah.monitoring")
ALERT_EXIT_CODE = 3  # what `pravah monitor run` exits with when production alerted (schedulers and CI tell)


def monitoring_root(home: Home, endpoint: str) -> Path:
    return home.root / "monitoring" / endpoint


def labels_path(home: Home) -> Path:
    return home.root / "monitoring" / "labels.jsonl"


def baseline_for(home: Home, endpoint: str, variant: str) -> dict[str, Any]:
    """The baseline of the model version a variant serves (cached per variant): the endpoint's variant of that
    name, or, for one retired since its traffic was captured, the version its name says."""
    from inference.endpoints import EndpointStore, version_of_name
    from registry import open_registry

    cached = monitoring_root(home, endpoint) / "baselines" / f"{variant}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    served = {v.name: (v.model, v.version) for v in EndpointStore(home).read(endpoint).variants}
    named = served.get(variant) or version_of_name(variant)
    if named is None:
        raise PravahError(f"captured variant '{variant}' of '{endpoint}' names no model version: cannot judge it")
    model, version = named
    lineage = open_registry(home=home).get(model, version).lineage
    sources = baseline_sources(lineage)
    if len(sources) < len(BASELINE_OUTPUTS):
        raise PravahError(
            f"{variant} names no profile and evaluation outputs in its lineage: it has no training "
            "baseline (register it again with a pipeline run)"
        )
    baseline = {
        "model": model,
        "version": version,
        "run_id": lineage.get("run_id"),
        **baseline_of_outputs(Path(sources["profile"]), Path(sources["evaluation"])),
    }
    write_json_atomic(cached, baseline)
    return baseline


BASELINE_OUTPUTS = ("profile", "evaluation")  # what preprocess and evaluate wrote, by the specs' output names


def baseline_sources(lineage: dict[str, str]) -> dict[str, str]:
    """Where a registered version's profile and evaluation outputs are, as its lineage names them
    (`output.STEP.OUTPUT`): folders locally, S3 URIs in the cloud; what is missing is left out."""
    produced = {key.rsplit(".", 1)[-1]: value for key, value in lineage.items() if key.startswith("output.")}
    return {name: produced[name] for name in BASELINE_OUTPUTS if name in produced}


def baseline_of_outputs(profile: Path, evaluation: Path) -> dict[str, Any]:
    """The monitoring job's `baseline_statistics`: the reference profiles, vocabulary and test scores in the
    folders that preprocess (`profile`) and evaluate (`evaluation`) wrote, locally or downloaded from S3."""
    from steps.profile import Profile

    missing = [
        str(folder / "reference.json") for folder in (profile, evaluation) if not (folder / "reference.json").is_file()
    ]
    if missing:
        raise PravahError(f"no reference profile at {' or '.join(missing)}: run the pipeline again")
    reference = Profile.load(profile / "reference.json").merge(Profile.load(evaluation / "reference.json"))
    scores = json.loads((evaluation / "evaluation.json").read_text())["multiclass_classification_metrics"]
    return {
        "reference": reference.to_json(),
        "vocabulary": json.loads((profile / "vocabulary.json").read_text()),
        "quality": {key: scores[key]["value"] for key in ("accuracy", "macro_f1")},
    }


def captured_variants(home: Home, endpoint: str, start: datetime, end: datetime) -> dict[str, list[Path]]:
    """The capture files of each variant whose traffic falls in the window (retired ones included)."""
    from monitoring.window import captured_files

    source, found = home.root / "capture" / endpoint, {}
    for path in captured_files(source, start, end):
        found.setdefault(path.relative_to(source).parts[0], []).append(path)
    return found


def run_monitor(
    home: Home,
    endpoint: str,
    config: MonitoringConfig,
    start: datetime,
    end: datetime,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, dict[str, Any]]:
    """One monitoring run of each variant with traffic in the window, against the baseline of the version that
    variant serves (a window during or after a deployment holds two versions' traffic: each is judged by its
    own): outputs in `<home>/monitoring/ENDPOINT/runs/<time>/<variant>/`, alerts, retraining. By variant;
    `say` hears what is being read."""
    variants = captured_variants(home, endpoint, start, end)
    if not variants:
        if not _served_variants(home, endpoint):
            raise PravahError(f"endpoint '{endpoint}' has no variant yet: nothing to monitor")
        return {}
    constraints_file = monitoring_root(home, endpoint) / "constraints.json"
    write_json_atomic(constraints_file, config.constraints())
    shadows = _endpoint_state(home, endpoint).shadow_variants()
    judged = {}
    for number, (variant, files) in enumerate(sorted(variants.items()), start=1):
        size = sum(path.stat().st_size for path in files if path.is_file()) / 1e6
        role = " (a shadow: copies of production requests)" if variant in shadows else ""
        say(f"[{number}/{len(variants)}] {variant}{role}: reading {len(files)} capture files ({size:.1f} MB) ...")
        judged[variant] = _run_job(
            home, endpoint, variant, config, constraints_file, start, end, shadow=variant in shadows
        )
    return judged


def _endpoint_state(home: Home, endpoint: str) -> EndpointState:
    from inference.endpoints import EndpointStore

    return EndpointStore(home).read(endpoint)


def _served_variants(home: Home, endpoint: str) -> list[str]:
    return [v.name for v in _endpoint_state(home, endpoint).variants]


def _run_job(
    home: Home,
    endpoint: str,
    variant: str,
    config: MonitoringConfig,
    constraints_file: Path,
    start: datetime,
    end: datetime,
    shadow: bool = False,
) -> dict[str, Any]:
    """The monitoring job over one variant's captures (given to it alone, in the capture layout). A shadow's
    alert is recorded but starts no retraining: its answers reached nobody."""
    root = monitoring_root(home, endpoint)
    baseline = baseline_for(home, endpoint, variant)
    baseline_file = root / "baselines" / "current.json"
    write_json_atomic(baseline_file, baseline)
    name = end.strftime("%Y%m%dT%H%M%SZ")
    output, scratch = root / "runs" / name / variant, home.scratch / f"monitor-{endpoint}-{name}-{variant}"
    shutil.rmtree(scratch, ignore_errors=True)
    source = scratch / "source"
    (source / endpoint).mkdir(parents=True)
    (source / endpoint / variant).symlink_to(home.root / "capture" / endpoint / variant)
    env = {
        **os.environ,
        "dataset_source": str(source),
        "output_path": str(scratch / "output"),
        "start_time": start.isoformat(),
        "end_time": end.isoformat(),
        "baseline_statistics": str(baseline_file),
        "baseline_constraints": str(constraints_file),
        "ground_truth": str(labels_path(home)),
        "sagemaker_endpoint_name": endpoint,
    }
    done = subprocess.run([sys.executable, "-m", "monitoring.job"], env=env, capture_output=True, text=True)
    warnings = [
        line.replace(str(source), str(home.root / "capture")) + "\n"  # the files' own paths
        for line in done.stderr.splitlines()
        if line.startswith("warning:")
    ]
    sys.stderr.write("".join(warnings))
    if done.returncode:
        shutil.rmtree(scratch, ignore_errors=True)
        raise StepFailed(f"the monitoring job failed on {variant}:\n{done.stderr.strip()[-3000:]}")
    if output.exists():
        shutil.rmtree(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    (scratch / "output").rename(output)  # all of a run's outputs appear at once, or none
    shutil.rmtree(scratch, ignore_errors=True)
    metrics = json.loads((output / "metrics.json").read_text())
    violations = json.loads((output / "constraint_violations.json").read_text())["violations"]
    metrics["output"], metrics["baseline"] = str(output), {"model": baseline["model"], "version": baseline["version"]}
    metrics["shadow"] = shadow
    if violations:
        metrics["alert"] = raise_alert(home, endpoint, output, violations, config, shadow=shadow)
    return metrics


def raise_alert(
    home: Home, endpoint: str, output: Path, violations: list[dict], config: MonitoringConfig, shadow: bool = False
) -> dict:
    alert = {
        "endpoint": endpoint,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "report": str(output),
        "violations": violations,
        "retraining": None,
        "shadow": shadow,
    }
    if config.alerts.retrain.enabled and not shadow:
        alert["retraining"] = start_retraining(home, config.alerts.retrain.pipeline, endpoint)
    write_json_atomic(home.root / "monitoring" / "alerts" / f"{time.strftime('%Y%m%dT%H%M%S')}-{endpoint}.json", alert)
    features = [v["feature_name"] for v in violations]
    log.warning(
        "Drift alert",
        extra={
            "metadata": {
                "endpoint": endpoint,
                "violations": features,
                "report": str(output),
                "retraining": alert["retraining"],
                "shadow": shadow,
            }
        },
    )
    return alert


def start_retraining(home: Home, pipeline: str, endpoint: str) -> dict[str, str]:
    """Start the pipeline in the background; its output goes to a log file under the home's logs."""
    log_path = home.logs / f"retrain-{endpoint}-{time.strftime('%Y%m%dT%H%M%S')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli", "--home", str(home.root), "run", pipeline],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return {"pipeline": pipeline, "pid": str(process.pid), "log": str(log_path)}


def add_labels(home: Home, source: Path) -> int:
    """Ground truth for captured predictions: a CSV or JSON-lines file with `predictionId` and `label`."""
    import pandas as pd

    if not source.is_file():
        raise PravahError(f"{source}: file not found")
    try:
        table = (
            pd.read_json(source, lines=True, dtype=False)
            if source.suffix in {".jsonl", ".json"}
            else pd.read_csv(source, dtype=str)
        )
    except ValueError as exc:
        raise PravahError(f"{source}: not a CSV or JSON-lines table ({exc})") from None
    missing = [c for c in ("predictionId", "label") if c not in table.columns]
    if missing:
        raise PravahError(f"{source}: no column {missing[0]!r} (columns: {', '.join(map(str, table.columns))})")
    empty = table[table["predictionId"].isna() | table["label"].isna()]
    if not empty.empty:
        raise PravahError(f"{source}: row {int(empty.index[0]) + 1} has no predictionId or no label")
    path = labels_path(home)
    known = {json.loads(line)["predictionId"] for line in path.read_text().splitlines()} if path.is_file() else set()
    pairs = zip(table["predictionId"].astype(str), table["label"].astype(str), strict=True)
    new = [{"predictionId": p, "label": label} for p, label in pairs if p not in known]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(item, ensure_ascii=False) + "\n" for item in new)
    return len(new)


def parse_window(since: str | None, start: str | None, end: str | None) -> tuple[datetime, datetime]:
    from monitoring.window import parse_time

    try:
        finish = parse_time(end) if end else datetime.now(UTC)
        if start:
            return parse_time(start), finish
    except ValueError as exc:
        raise PravahError(f"a time must be ISO 8601 like 2026-11-26T10:00:00Z ({exc})") from None
    return finish - parse_duration(since or "1h"), finish


def parse_duration(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) == 0:
        raise PravahError(f"'{text}' is not a duration like 30m, 1h or 7d")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])


def summary(endpoint: str, variant: str, metrics: dict[str, Any]) -> str:
    """A variant's monitoring run in a few lines: the window, the baseline that judged it, each feature's
    verdict, model quality, the report (when there was enough to write one), the alert."""
    window, judge = metrics["window"], metrics["baseline"]
    skipped = f"{metrics['corrupt_lines']} corrupt lines, {metrics['unreadable_files']} unreadable files skipped"
    role = " (shadow)" if metrics.get("shadow") else ""
    lines = [
        f"endpoint {endpoint}, variant {variant}{role}: {metrics['records']} records from "
        f"{window['start'][:16]} to {window['end'][:16]} ({skipped}), judged against the baseline of "
        f"{judge['model']} version {judge['version']}"
    ]
    if not metrics["judged"]:
        lines.append(f"  too few records to judge drift (at least {metrics['min_records']})")
    for feature, found in metrics["features"].items():
        verdict = "DRIFT" if found["drift"] else "ok"
        lines.append(
            f"  {feature:<20} {found['method']:<14} {found['score']:.4f}  (threshold {found['threshold']:g})  {verdict}"
        )
    quality = metrics.get("model_quality")
    if quality:
        before = quality["baseline"].get("accuracy")
        lines.append(
            f"  model quality over {quality['labelled']} labelled predictions: accuracy "
            f"{quality['accuracy']:.4f}"
            + (f" (evaluation: {before:.4f})" if before is not None else "")
            + f", macro-F1 {quality['macro_f1']:.4f}"
            + (
                f"; estimated {quality['estimated']['accuracy']:.4f} (error {quality['estimate_error']:+.4f})"
                if "estimated" in quality
                else ""
            )
        )
    estimated = metrics.get("estimated_performance")
    if estimated and estimated.get("rows"):
        before = estimated["baseline"].get("accuracy")
        by_language = ", ".join(
            f"{name} {found['accuracy']:.2f} ({found['rows']})" for name, found in estimated["by_language"].items()
        )
        lines.append(
            f"  estimated without labels (calibrated confidences): accuracy {estimated['accuracy']:.4f}"
            + (f" (evaluation: {before:.4f})" if before is not None else "")
            + f", macro-F1 {estimated['macro_f1']:.4f}; by language: {by_language}"
        )
    report = Path(metrics["output"]) / "drift_report.html"
    lines.append(f"report: {report}" if report.is_file() else f"no drift report (too few records); {metrics['output']}")
    alert = metrics.get("alert")
    if alert and metrics.get("shadow"):
        lines.append(
            f"SHADOW ALERT (its answers reached nobody, so no retraining): "
            f"{', '.join(v['feature_name'] for v in alert['violations'])}"
        )
    elif alert:
        lines.append(f"ALERT: {', '.join(v['feature_name'] for v in alert['violations'])}")
        if alert["retraining"]:
            lines.append(f"retraining started: {alert['retraining']['pipeline']} (log {alert['retraining']['log']})")
    return "\n".join(lines)
