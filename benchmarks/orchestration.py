"""Orchestration overhead, measured side by side in one run.

1. A linear pipeline of 7 trivial steps (each reads the previous step's 1,000 numbers from a JSON file, adds
   one, writes them), so that wall time is overhead: the 7 functions called in one Python process; 7 x
   `python -c` (what a process per step costs); `pravah run` cold (no cache) and cached. Interleaved rounds,
   medians; per-step milliseconds, and CPU-seconds of the whole machine until every process of the run has
   ended (its detached MLflow sync included).
2. The default pipeline: `pravah run text-classifier` cold and cached against its step functions called
   directly in one process.

    PRAVAH_DATA_MIRROR=../shared/datasets/sib-200 python -m benchmarks.orchestration [--rounds 10] [--chain-only]
        [--default-rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
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
    validate.main(
        [
            "--processing-root",
            str(root),
            "--format",
            "tsv",
            "--columns",
            "id=index_id,label=category",
            "--languages",
            "hin_Deva,eng_Latn",
        ]
    )
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
    train.main(
        ["--family", "sklearn-text", "--C", "10.0", "--char_ngram_max", "4", "--word_ngram_max", "2", "--seed", "42"]
    )
    root = folders("evaluate", {"model": model, "test": data / "test"}, ["evaluation"])
    evaluate.main(["--processing-root", str(root)])
    return time.perf_counter() - started


def pravah(home: Path, *extra: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "cli", "--home", str(home), "run", "text-classifier", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(result.stderr)
    return elapsed


def settle(marker: str, session: int | None = None, timeout: float = 60) -> None:
    """Wait until the processes a run leaves behind (its MLflow sync and registry worker, which outlive it by
    design) have ended: those naming `marker` on their command line, or in `session`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                busy |= marker.encode() in (proc / "cmdline").read_bytes()
                if session is not None and not busy:
                    busy |= int((proc / "stat").read_text().rsplit(")", 1)[1].split()[3]) == session
            except (OSError, ValueError, IndexError):
                continue
            if busy:
                break
        if not busy:
            return
        time.sleep(0.02)


STEPS = 7
STEP_CODE = '''"""Read the previous step's numbers (none: 0..999), add one to each, write them."""
import argparse
import json
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--processing-root", type=Path, default=Path("/opt/ml/processing"))
    root = parser.parse_args(argv).processing_root
    given = sorted((root / "input" / "numbers").glob("*.json"))
    numbers = json.loads(given[0].read_text()) if given else list(range(1000))
    (root / "output" / "numbers").mkdir(parents=True, exist_ok=True)
    (root / "output" / "numbers" / "numbers.json").write_text(json.dumps([n + 1 for n in numbers]))


if __name__ == "__main__":
    main()
'''


def chain_project(folder: Path) -> Path:
    """A project of its own: configs/pipelines/chain.yaml, 7 steps of chainsteps.add_one in a line."""
    (folder / "configs" / "pipelines").mkdir(parents=True)
    (folder / "chainsteps").mkdir()
    (folder / "chainsteps" / "__init__.py").write_text("")
    (folder / "chainsteps" / "add_one.py").write_text(STEP_CODE)
    lines = ["name: chain", "steps:"]
    for n in range(1, STEPS + 1):
        inputs = f", inputs: {{numbers: s{n - 1}.numbers}}" if n > 1 else ""
        lines.append(
            f"  s{n}: {{kind: processing, code: chainsteps.add_one{inputs}, outputs: {{numbers: processed/s{n}}}}}"
        )
    (folder / "configs" / "pipelines" / "chain.yaml").write_text("\n".join(lines) + "\n")
    return folder


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine (user, nice, system, irq, softirq), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def measured(command: list[str], cwd: Path, marker: str) -> tuple[float, float]:
    """Wall seconds of `command`, and machine CPU-seconds until it and every process it left behind (in its
    session, or naming `marker` on their command line) have ended. Python caches bytecode as it does for a
    user (PYTHONDONTWRITEBYTECODE, set on some build machines, would compile every module on every run)."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cpu, started = machine_cpu_seconds(), time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, env=environment
    )
    _, errors = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{errors.decode()}")
    settle(marker, session=process.pid)
    return wall, machine_cpu_seconds() - cpu


def bare_chain(project: Path, work: Path) -> None:
    """The 7 functions in this process, folders laid out by hand (run in a fresh interpreter by the caller)."""
    sys.path.insert(0, str(project))
    from chainsteps.add_one import main as add_one

    previous = None
    for n in range(1, STEPS + 1):
        root = work / f"s{n}"
        (root / "input").mkdir(parents=True)
        if previous is not None:
            (root / "input" / "numbers").symlink_to(previous)
        add_one(["--processing-root", str(root)])
        previous = root / "output" / "numbers"


def chain(rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="pravah-bench-chain-") as scratch:
        project, python = chain_project(Path(scratch) / "project"), sys.executable
        home = Path(scratch) / "home"
        pravah = [python, "-m", "cli", "--project", str(project), "--home", str(home), "run", "chain"]

        def bare(n: int) -> list[str]:
            work = Path(scratch) / f"bare-{n}"
            return [
                python,
                "-c",
                f"from benchmarks.orchestration import bare_chain; from pathlib import Path; "
                f"bare_chain(Path({str(project)!r}), Path({str(work)!r}))",
            ]

        def per_process(n: int) -> list[str]:
            work = Path(scratch) / f"processes-{n}"
            script, previous = [], None
            for step in range(1, STEPS + 1):
                root = work / f"s{step}"
                link = f"ln -s {previous} {root}/input/numbers && " if previous else ""
                script.append(
                    f"mkdir -p {root}/input && {link}{python} -c 'import sys; sys.path.insert(0, "
                    f'"{project}"); from chainsteps.add_one import main; '
                    f'main(["--processing-root", "{root}"])\''
                )
                previous = root / "output" / "numbers"
            return ["sh", "-c", " && ".join(script)]

        measured(pravah, REPO, str(home))  # warm the page cache and the project's first records
        found: dict[str, list[tuple[float, float]]] = {k: [] for k in ("bare", "processes", "cold", "cached")}
        for n in range(rounds):
            found["bare"].append(measured(bare(n), REPO, str(project)))
            found["processes"].append(measured(per_process(n), REPO, str(project)))
            found["cold"].append(measured([*pravah, "--no-cache"], REPO, str(home)))
            found["cached"].append(measured(pravah, REPO, str(home)))
    median = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in found.items()}
    bare_wall = median["bare"][0]
    print(f"\n7 trivial steps, median of {rounds} interleaved rounds (wall s, machine CPU-s incl. background)")
    rows = [
        ("one Python process calling the 7 functions", "bare"),
        ("7 x python -c (a process per step)", "processes"),
        ("pravah run, cold (--no-cache)", "cold"),
        ("pravah run, cached", "cached"),
    ]
    for label, key in rows:
        wall, cpu = median[key]
        per_step = f"{(wall - bare_wall) / STEPS * 1000:6.1f} ms/step" if key in ("processes", "cold") else " " * 14
        print(f"  {label:<45} {wall:6.3f} s  {per_step}  {cpu:6.2f} CPU-s")
    cold, cached = median["cold"], median["cached"]
    print(
        f"  per-step overhead, pravah cold: {(cold[0] - bare_wall) / STEPS * 1000:.1f} ms (target <= 30), "
        f"cold {cold[0]:.3f} s (target <= 0.45); each step beyond a cached run's work: "
        f"{(cold[0] - cached[0]) / STEPS * 1000:.1f} ms (a process per step: "
        f"{(median['processes'][0] - bare_wall) / STEPS * 1000:.1f} ms)"
    )
    print(f"  cached re-run: {cached[0]:.3f} s (target <= 0.2), {cached[1]:.2f} CPU-s in all (target <= 0.5)")


def default_pipeline(rounds: int) -> None:
    """Its step functions in one process against `pravah run` cold, in turns (each run's background work ended
    before the next starts), medians; then a cached run."""
    if not os.environ.get("PRAVAH_DATA_MIRROR"):
        sys.exit("set PRAVAH_DATA_MIRROR to the SIB-200 mirror")
    directs, colds = [], []
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "home"
        for n in range(rounds):
            baseline = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from benchmarks.orchestration import direct; from pathlib import Path; "
                    f"import time; print(direct(Path({str(Path(scratch) / f'direct-{n}')!r})))",
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                env={**os.environ, "TQDM_DISABLE": "1"},
            )
            if baseline.returncode != 0:
                sys.exit(baseline.stderr)
            directs.append(float(baseline.stdout.strip().splitlines()[-1]))
            colds.append(pravah(home, "--no-cache"))
            settle(str(home))
        cached = pravah(home)
    direct_s, cold = statistics.median(directs), statistics.median(colds)
    print(f"\nthe default pipeline (text-classifier), median of {rounds} rounds in turns")
    print(f"  direct, one process:        {direct_s:7.2f} s   (rounds: {', '.join(f'{d:.2f}' for d in directs)})")
    print(
        f"  pravah run, cold, no cache: {cold:7.2f} s   ratio {cold / direct_s:.2f}x (target <= 1.10x; rounds: "
        f"{', '.join(f'{c / d:.2f}x' for c, d in zip(colds, directs, strict=True))})"
    )
    print(f"  pravah run, cached:         {cached:7.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--chain-only", action="store_true", help="only the 7-step pipeline")
    parser.add_argument("--default-rounds", type=int, default=3, help="rounds of the default pipeline")
    args = parser.parse_args(argv)
    chain(args.rounds)
    if not args.chain_only:
        default_pipeline(args.default_rounds)


if __name__ == "__main__":
    main()
