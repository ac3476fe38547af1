"""Drift job speed and memory: `monitoring.job` (streaming, counts, Evidently's HTML on a bounded sample)
against the plain way (every captured record loaded into one DataFrame, features derived by the job's own
code, Evidently's data-drift preset run on all of it), end to end on the same 1,000,000 captured records,
in two scenarios (the trained languages; new languages). Prints seconds, peak memory, ratios and whether the
verdicts agree.

    PRAVAH_DATA_MIRROR=../shared/datasets/sib-200 python -m benchmarks.monitoring [--records 1000000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = {
    "trained languages": ("hin_Deva", "eng_Latn"),
    "new languages": ("hin_Deva", "eng_Latn", "mar_Deva", "ben_Beng", "tam_Taml"),
}
START = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def write_capture(folder: Path, pool: list[tuple[dict, dict]], records: int) -> None:
    """`records` capture lines cycling through real exchanges, 20,000 per file over hourly folders."""
    from inference.capture import capture_line

    per_file = 20_000
    for first in range(0, records, per_file):
        at = START + timedelta(seconds=first * 3600 * 10 / records)  # spread over ten hours
        path = folder / "variant-v1" / at.strftime("%Y/%m/%d/%H") / f"{first:08d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for i in range(first, min(first + per_file, records)):
                request, answer = pool[i % len(pool)]
                handle.write(capture_line(str(uuid.uuid4()), request, answer, at))


def real_exchanges(mirror: Path, predictor, languages: tuple[str, ...]) -> list[tuple[dict, dict]]:
    codes = {"hin_Deva": "hi", "eng_Latn": "en", "mar_Deva": "mr", "ben_Beng": "bn", "tam_Taml": "ta"}
    rows = []
    for language in languages:
        with (mirror / "data" / "annotated" / language / "test.tsv").open(encoding="utf-8") as handle:
            rows += [(row["text"], language) for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]
    predictions = predictor.predict([text for text, _ in rows])
    return [
        (
            {"input": {"text": text, "metadata": {"language": codes[language]}}},
            {"predictionId": "x", "result": p.as_result()},
        )
        for (text, language), p in zip(rows, predictions, strict=True)
    ]


def measured(code: str, env: dict[str, str]) -> tuple[float, float, dict]:
    """Run `code` in a fresh Python; its seconds, its peak memory (MB, as it reports) and the JSON it prints."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env}, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, found["peak"], found


OURS = """
import json, os
from datetime import datetime
from pathlib import Path
from monitoring.job import run
from monitoring.window import parse_time
baseline = json.loads(Path(os.environ["BASELINE"]).read_text())
start, end = parse_time(os.environ["START"]), parse_time(os.environ["END"])
m = run(Path(os.environ["SOURCE"]), Path(os.environ["OUT"]), start, end, baseline, {"thresholds": {"default": 0.1}}, {})
import resource
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"records": m["records"], "drift": {k: v["drift"] for k, v in m["features"].items()}, "peak": peak,
                  "detail": f"largest worker {workers:.0f} MB"}))
"""

PLAIN = """
import json, os, time
from pathlib import Path
started = time.perf_counter()
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
from steps.profile import CATEGORICAL, NUMERIC, Profile, Vocabulary, text_feature_columns
phases = {"imports": time.perf_counter() - started, "parsing": 0.0, "features": 0.0}
baseline = json.loads(Path(os.environ["BASELINE"]).read_text())
vocabulary = Vocabulary(baseline["vocabulary"])
parts = []
for path in sorted(Path(os.environ["SOURCE"]).rglob("*.jsonl")):
    mark = time.perf_counter()
    texts, languages, predictions, confidences = [], [], [], []
    for line in path.open(encoding="utf-8"):
        record = json.loads(line)
        request = json.loads(record["captureData"]["endpointInput"]["data"])["input"]
        answer = json.loads(record["captureData"]["endpointOutput"]["data"])["result"]
        texts.append(request["text"])
        languages.append(request.get("metadata", {}).get("language"))
        predictions.append(answer["prediction"])
        confidences.append(round(answer["confidence"], 3))
    phases["parsing"] += time.perf_counter() - mark
    mark = time.perf_counter()
    features = text_feature_columns(texts, languages, vocabulary)  # the job's own feature code, file by file
    parts.append(pd.DataFrame({**features, "prediction": predictions, "confidence": confidences}))
    phases["features"] += time.perf_counter() - mark
mark = time.perf_counter()
current = pd.concat(parts, ignore_index=True)
reference_profile = Profile.from_json(baseline["reference"])
reference = reference_profile.frame()
columns = list(CATEGORICAL + NUMERIC)
definition = DataDefinition(numerical_columns=list(NUMERIC), categorical_columns=list(CATEGORICAL))
preset = DataDriftPreset(columns=columns, cat_method="jensenshannon", num_method="wasserstein", cat_threshold=0.1,
                         num_threshold=0.1)
snapshot = Report([preset]).run(current_data=Dataset.from_pandas(current[columns], data_definition=definition),
                                reference_data=Dataset.from_pandas(reference[columns], data_definition=definition))
snapshot.save_html(os.environ["OUT"] + "/plain.html")
phases["evidently"] = time.perf_counter() - mark
drift = {m["config"]["column"]: bool(m["value"] >= 0.1) for m in snapshot.dict()["metrics"] if "column" in m["config"]}
import resource
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"records": len(current), "drift": drift, "peak": peak,
                  "detail": ", ".join(f"{name} {seconds:.1f} s" for name, seconds in phases.items())}))
"""


def data_mirror() -> Path:
    return Path(os.environ.get("PRAVAH_DATA_MIRROR") or REPO.parent / "shared" / "datasets" / "sib-200")


def trained_default_model(work: Path):
    """Train the default model in `work`/home; its monitoring baseline (written to `work`/baseline.json) and its
    Predictor."""
    home = work / "home"
    print(f"training the default model in {home} ...", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "--home", str(home), "run", "text-classifier", "--no-tracking"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(done.stderr)
    from artifact.predictor import Predictor
    from foundation.home import Home
    from monitoring.monitor import baseline_of_outputs
    from pipelines.records import RunStore

    record = RunStore(Home(home)).all()[0]
    baseline = work / "baseline.json"
    outputs = {name: Path(o.path) for step in record.steps.values() for name, o in step.outputs.items()}
    baseline.write_text(json.dumps(baseline_of_outputs(outputs["profile"], outputs["evaluation"])))
    return baseline, Predictor(Path(record.steps["train"].outputs["model"].path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    mirror = data_mirror()
    work = Path(tempfile.mkdtemp(prefix="pravah-bench-monitoring-"))
    baseline, predictor = trained_default_model(work)
    for scenario, languages in SCENARIOS.items():
        source = work / scenario.replace(" ", "-")
        print(f"\n{scenario}: writing {args.records:,} captured records ...", flush=True)
        write_capture(source, real_exchanges(mirror, predictor, languages), args.records)
        env = {
            "BASELINE": str(baseline),
            "SOURCE": str(source),
            "START": START.isoformat(),
            "END": (START + timedelta(hours=11)).isoformat(),
        }
        results = {}
        for name, code in (("streaming job", OURS), ("plain way", PLAIN)):
            out = work / f"{source.name}-{name.replace(' ', '-')}"
            out.mkdir()
            results[name] = measured(code, {**env, "OUT": str(out)})
            seconds, peak, found = results[name]
            print(
                f"  {name:<14} {seconds:7.1f} s  {found['records'] / seconds:10,.0f} records/s  peak {peak:7.0f} MB"
                f"  drift: {sorted(k for k, v in found['drift'].items() if v)}\n{'':17}({found['detail']})",
                flush=True,
            )
        (ours_s, ours_mb, ours), (plain_s, plain_mb, plain) = results["streaming job"], results["plain way"]
        print(
            f"  speed-up {plain_s / ours_s:.1f}x (target >= 5); memory {ours_mb:.0f} MB vs {plain_mb:.0f} MB; "
            f"same verdicts: {ours['drift'] == plain['drift']}"
        )


if __name__ == "__main__":
    main()
