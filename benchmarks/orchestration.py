"""Orchestration overhead: `pravah run` (cold, no cache; then cached) against the same step functions
called directly, in sequence, in one Python process. Prints seconds and ratios.

    PRAVAH_DATA_MIRROR=../shared/datasets/sib-200 python -m benchmarks.orchestration
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def direct(work: Path) -> float:
    """The baseline: each step's main() in turn, folders laid out by hand, one process."""
    started = time.perf_counter()
    from steps import evaluate, ingest, preprocess, validate
    from training import train

    def folders(name: str, inputs: dict[str, Path], outputs: list[str]) -> Path:
        root = work / name
        for key, source in inputs.items():
            (root / "input").mkdir(parents=True, exist_ok=True)
            if source.is_file():  # a file input arrives as a folder holding it, as the runner gives it
                (root / "input" / key).mkdir()
                (root / "input" / key / source.name).symlink_to(source)
            else:
                (root / "input" / key).symlink_to(source)
        for key in outputs:
            (root / "output" / key).mkdir(parents=True)
        return root

    root = folders("ingest", {"catalog": REPO / "configs" / "datasets.yaml"}, ["raw"])
    ingest.main(["--processing-root", str(root), "--dataset", "sib-200", "--languages", "hin_Deva,eng_Latn"])
    raw = root / "output" / "raw"
    root = folders("validate", {"raw": raw, "suites": REPO / "configs" / "expectations"}, ["report"])
    validate.main(["--processing-root", str(root), "--format", "tsv", "--columns", "id=index_id,label=category",
                   "--languages", "hin_Deva,eng_Latn"])  # fmt: skip
    root = folders("preprocess", {"raw": raw}, ["train", "validation", "test", "profile"])
    preprocess.main(["--processing-root", str(root), "--format", "tsv", "--columns", "id=index_id,label=category"])
    data = root / "output"
    model, output = work / "model", work / "output"
    model.mkdir()
    output.mkdir()
    os.environ.update(
        {
            "SM_MODEL_DIR": str(model),
            "SM_OUTPUT_DATA_DIR": str(output),
            "SM_CHANNEL_TRAIN": str(data / "train"),
            "SM_CHANNEL_VALIDATION": str(data / "validation"),
        }
    )
    train.main(["--family", "sklearn-text", "--C", "10.0", "--char_ngram_max", "4", "--word_ngram_max", "2",
                "--seed", "42"])  # fmt: skip
    root = folders("evaluate", {"model": model, "test": data / "test"}, ["evaluation"])
    evaluate.main(["--processing-root", str(root)])
    return time.perf_counter() - started


def pravah(home: Path, *extra: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "cli", "--home", str(home), "run", "text-classifier",
                             *extra], cwd=REPO, capture_output=True, text=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(result.stderr)
    return elapsed


def settle(home: Path, timeout: float = 60) -> None:
    """Wait until the cold run's background processes (its MLflow sync and registry worker, which outlive it
    by design) have ended, so that they do not share the CPU with the run measured next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                busy |= str(home).encode() in cmdline.read_bytes()
            except OSError:
                continue
        if not busy:
            return
        time.sleep(0.2)


def main() -> None:
    if not os.environ.get("PRAVAH_DATA_MIRROR"):
        sys.exit("set PRAVAH_DATA_MIRROR to the SIB-200 mirror")
    with tempfile.TemporaryDirectory() as scratch:
        baseline = subprocess.run(
            [sys.executable, "-c", f"from benchmarks.orchestration import direct; from pathlib import Path; "
             f"import time; print(direct(Path({str(Path(scratch) / 'direct')!r})))"],
            cwd=REPO, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"},
        )  # fmt: skip
        if baseline.returncode != 0:
            sys.exit(baseline.stderr)
        direct_s = float(baseline.stdout.strip().splitlines()[-1])
        home = Path(scratch) / "home"
        cold = pravah(home, "--no-cache")
        settle(home)
        cached = pravah(home)
    print(f"direct, one process:        {direct_s:7.2f} s")
    print(f"pravah run, cold, no cache: {cold:7.2f} s   ratio {cold / direct_s:.2f}x (target <= 1.15x)")
    print(f"pravah run, cached:         {cached:7.2f} s   {cached / cold:.1%} of cold (target <= 5%)")


if __name__ == "__main__":
    main()
