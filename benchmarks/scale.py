"""Data at scale (issue 35): `pravah run text-example` on a big text table against a plain script doing the same
job, side by side in one run: wall time, the peak resident memory of the largest process, and their ratios.

The table: ROWS rows of SIB-200's sentences in its 14 languages (from PRAVAH_DATA_MIRROR), each a sentence of
its topic with its words shuffled by a seeded generator, as CSV `text,label,language` (about 330 bytes a row).

The plain script (`plain_script` below, run in a process of its own): reads the CSV with pandas, the same
stratified split as the preprocess step (label x language, seed 42, 15% validation, 20% test), fits the
same model family (`training.sklearn_text.fit`, its defaults: above 300,000 rows, its streamed fit), predicts
the test rows and computes accuracy and macro-F1: no validation, profile, calibration, bootstrap, registry or
tracking.

Peak memory is the largest resident set of any process the command ran (getrusage's RUSAGE_CHILDREN of a
wrapper process, which Linux reports as the largest descendant waited for). Prints each step's time from the
run record, then the two commands and the ratios against issue 35's bars (4 GB at 10 million rows, 2 GB and
evaluate under 30 s at a million; 1.5x the script's time).

    PRAVAH_DATA_MIRROR=../shared/datasets/sib-200 python -m benchmarks.scale [--rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEASURED = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def build_table(mirror: Path, rows: int, path: Path, seed: int = 7) -> None:
    """ROWS shuffled-word sentences of SIB-200's train splits, all 14 languages, as text,label,language."""
    sentences = []
    for language in sorted(p.name for p in (mirror / "data" / "annotated").iterdir() if p.is_dir()):
        with (mirror / "data" / "annotated" / language / "train.tsv").open(encoding="utf-8") as tsv:
            sentences += [(r["text"].split(), r["category"], language) for r in csv.DictReader(tsv, delimiter="\t")]
    generator = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["text", "label", "language"])
        for _ in range(rows):
            words, label, language = generator.choice(sentences)
            shuffled = words[:]
            generator.shuffle(shuffled)
            writer.writerow([" ".join(shuffled), label, language])


def plain_script(table: str) -> None:
    """The baseline job (run as `python -m benchmarks.scale --plain TABLE`)."""
    import pandas as pd
    from sklearn.metrics import accuracy_score, f1_score

    from steps.preprocess import split_orders
    from training import sklearn_text

    rows = pd.read_csv(table, dtype=str)
    no_split = pd.Categorical([None] * len(rows))
    labels, languages = pd.Categorical(rows["label"]), pd.Categorical(rows["language"])
    orders = split_orders(labels, languages, no_split, None, 0.15, 0.2, 42)
    train, test = rows.iloc[orders["train"]], rows.iloc[orders["test"]]
    model = sklearn_text.fit(train[["text"]], train["label"].tolist(), {})
    predicted = model.predict(test["text"].tolist())
    scores = {
        "accuracy": accuracy_score(test["label"], predicted),
        "macro_f1": f1_score(test["label"], predicted, average="macro"),
    }
    print(json.dumps(scores))


def measured(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, peak resident GB of the largest process, and stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *command], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return seconds, peak_kb / 1024 / 1024, done.stdout


def step_costs(home: Path) -> dict[str, tuple[float, float]]:
    """Each step's duration and peak resident memory (MB) in the newest run record."""
    newest = max((home / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    record = json.loads(newest.read_text())
    return {
        name: (step.get("duration_s") or 0.0, step.get("peak_memory_mb") or 0.0)
        for name, step in record["steps"].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="a folder to keep the table and the project in (default: a temporary one)")
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_script(args.plain)
        return
    mirror = os.environ.get("PRAVAH_DATA_MIRROR")
    if not mirror:
        sys.exit("set PRAVAH_DATA_MIRROR to the SIB-200 mirror folder")
    work = Path(args.keep or tempfile.mkdtemp(prefix="pravah-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    table = work / f"texts-{args.rows}.csv"
    if not table.is_file():
        started = time.perf_counter()
        build_table(Path(mirror), args.rows, table)
        print(
            f"table: {args.rows:,} rows, {table.stat().st_size / 1e6:,.0f} MB ({time.perf_counter() - started:.0f} s)"
        )
    home = work / "home"
    env = {**os.environ, "PRAVAH_HOME": str(home)}
    ours = [sys.executable, "-m", "cli", "run", "text-example", "-p", f"data={table}", "--no-cache", "--no-tracking"]
    ours_seconds, ours_gb, _ = measured(ours, env, REPO)
    plain_seconds, plain_gb, said = measured(
        [sys.executable, "-m", "benchmarks.scale", "--plain", str(table)], env, REPO
    )
    steps = step_costs(home)
    print(f"{args.rows:,} rows through text-example, step by step:")
    for name, (seconds, megabytes) in steps.items():
        print(f"  {name:<12} {seconds:>8.1f} s  {megabytes / 1024:>6.2f} GB peak")
    gb_bar = 4.0 if args.rows >= 10_000_000 else 2.0
    print(f"{'':<28} {'wall s':>9} {'peak GB':>9}")
    print(f"{'pravah run text-example':<28} {ours_seconds:>9.1f} {ours_gb:>9.2f}")
    print(f"{'plain script':<28} {plain_seconds:>9.1f} {plain_gb:>9.2f}   {said.strip().splitlines()[-1]}")
    print(
        f"ratios: time {ours_seconds / plain_seconds:.2f}x the script's (bar 1.5x); peak memory "
        f"{ours_gb / gb_bar:.2f}x the bar of {gb_bar:g} GB; evaluate {steps.get('evaluate', (0, 0))[0]:.1f} s "
        "(bar 30 s at a million rows)"
    )


if __name__ == "__main__":
    main()
