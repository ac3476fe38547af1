"""What a shadow variant costs the requests it copies: `POST /api/v1/ml/predict` of `pravah serve` with and
without a shadow at 100% (a second version of the default model), measured in turns with wrk at concurrency 1
and 8, medians of rounds. The copy is scored after the answer is built, so the answer's own latency at c=1
should not move; on this 2-core machine the shadow's scoring process shares the CPU with production's, so
throughput under load pays for it (on SageMaker the shadow has instances of its own).

    PRAVAH_DATA_MIRROR=../shared/datasets/sib-200 python -m benchmarks.shadow [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.serving import TEXT, cli, deployed_default_model, start, wrk

CONCURRENCY = (1, 8)


def shadowing(home: Path, on: bool) -> None:
    """Start or stop the shadow, and wait until the server has carried it out."""
    if on:
        cli(home, "deploy", "prod", "--model", "text-classifier", "--version", "2", "--strategy", "shadow")
    else:
        cli(home, "endpoints", "stop-shadow", "prod")
    report = home / "endpoints" / "shadow" / "prod.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if report.is_file() and json.loads(report.read_text())["running"] == on:
            return
        time.sleep(0.2)
    sys.exit(f"the server did not {'start' if on else 'stop'} the shadow")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of with and without in turns (medians)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pravah-bench-shadow-"))
    home, settings, key = deployed_default_model(work, other_seeds=(1,))  # version 2: another seed, as good
    url = "http://127.0.0.1:18084"
    serve = [
        sys.executable,
        "-m",
        "cli",
        "serve",
        "prod",
        "--port",
        "18084",
        "--log-level",
        "warning",
        "--config",
        str(settings),
    ]
    server = start(serve, {"PRAVAH_HOME": str(home)}, work / "serve.log", f"{url}/ready")
    target = (
        f"{url}/api/v1/ml/predict",
        json.dumps({"input": {"text": TEXT, "metadata": {"language": "en"}}}),
        {"Content-Type": "application/json", "X-API-Key": key},
    )
    rounds: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        shadowing(home, True)  # loaded once, so that its process start is not in a window
        wrk(*target, 8, 2)
        for number in range(1, args.rounds + 1):
            for state in ("without", "with shadow"):
                shadowing(home, state != "without")
                for concurrency in CONCURRENCY:
                    found = wrk(*target, concurrency, args.seconds)
                    rounds.setdefault((state, concurrency), []).append(found)
                    print(
                        f"  round {number}  {state:<12} c={concurrency:<2} {found['rps']:8.1f} req/s  p50 "
                        f"{found['p50']:6.2f} ms  p99 {found['p99']:6.2f} ms  non-2xx {found['errors']}",
                        flush=True,
                    )
        report = json.loads((home / "endpoints" / "shadow" / "prod.json").read_text())
    finally:
        os.killpg(server.pid, 15)
    medians = {key: {m: statistics.median(r[m] for r in found) for m in found[0]} for key, found in rounds.items()}
    print(f"\nmedians of {args.rounds} rounds, with a shadow at 100% / without")
    for concurrency in CONCURRENCY:
        with_, without = medians["with shadow", concurrency], medians["without", concurrency]
        print(
            f"  c={concurrency}: p50 {with_['p50']:.2f} / {without['p50']:.2f} ms = "
            f"{with_['p50'] / without['p50']:.2f}, p99 {with_['p99'] / without['p99']:.2f}, "
            f"throughput {with_['rps'] / without['rps']:.2f}"
        )
    copied = report["segments"]["all"]
    print(
        f"  the shadow (version 2, seed 1) in the last round: {copied['requests']} copies, agreement "
        f"{copied['agreement']:.3f}, error rate {copied['error_rate']:.3f}, p50 {copied['p50_ms']:.2f} ms, "
        f"copies skipped while it lagged {report['skipped']}"
    )


if __name__ == "__main__":
    main()
