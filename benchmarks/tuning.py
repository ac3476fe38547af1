"""The tuned pipeline against the default one, side by side in one run: `pravah run text-classifier` and
`pravah run text-classifier-tuned` (12 trials over C, n-gram ranges and the family, 2 at a time) on SIB-200
from a fresh project folder; each one's test macro-F1 (the gate's metric), the tuned one's best trial, and
wall times with their ratio.

    PRAVAH_DATA_MIRROR=../shared/datasets/sib-200 python -m benchmarks.tuning
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(home: Path, pipeline: str) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "cli", "--home", str(home), "run", pipeline, "--no-tracking"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"{pipeline} failed:\n{done.stderr[-3000:]}")
    from foundation.home import Home
    from pipelines.records import RunStore

    return time.perf_counter() - started, asdict(RunStore(Home(home)).all()[0])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pravah-bench-tuning-") as scratch:
        home = Path(scratch) / "home"
        default_seconds, default = run(home, "text-classifier")  # also fetches and prepares the data once
        tuned_seconds, tuned = run(home, "text-classifier-tuned")  # the same data steps, from the cache
    f1 = {
        name: record["steps"]["evaluate"]["metrics"]["multiclass_classification_metrics.macro_f1"]
        for name, record in (("default", default), ("tuned", tuned))
    }
    search = tuned["steps"]["train"]["details"]["search"]
    best = next(t for t in search["trials"] if t["trial"] == search["best_trial"])
    print("\nSIB-200 hin+eng topic classification: test macro-F1 (the gate's metric)")
    print(f"  text-classifier        {f1['default']:.4f}   {default_seconds:6.1f} s")
    print(
        f"  text-classifier-tuned  {f1['tuned']:.4f}   {tuned_seconds:6.1f} s   ({len(search['trials'])} trials, "
        f"best trial {best['trial']}: {best['params']}, validation macro-F1 {best['value']:.4f})"
    )
    ratio = tuned_seconds / default_seconds
    print(f"  tuned - default: {f1['tuned'] - f1['default']:+.4f} macro-F1; time ratio {ratio:.1f}x")


if __name__ == "__main__":
    main()
