"""The console with a year of history: how long each page takes to answer, against issue 34's bar of 200 ms.

Builds a project folder with RUNS run records (seven steps each, as the default pipeline's, with metrics and
outputs), VERSIONS registered versions (MLflow's registry, as `pravah run` registers them) and WINDOWS judged
monitoring windows of one endpoint (each its metrics.json, as the monitoring job writes it), then asks the
console (in process, through its ASGI app: no network in the figures) for each page ROUNDS times after a
first, cold request; prints the median, the slowest and the ratio to the bar.

Then what the console costs a run: the orchestration benchmark's 7-step chain (`pravah run --no-cache`), ROUNDS
times alone and ROUNDS times with `pravah ui` serving the same project folder and a page's polling (the run's
JSON every second and the runs list every two, as the pages ask), interleaved; medians and their ratio.

And what it costs a server: wrk at concurrency 8 on `pravah serve`'s predict (the default model, deployed), in
turns alone and while `pravah ui` on the same project has its endpoints page loaded every second (the page
whose charts read that endpoint's series) and the runs list every two; medians of requests/s and p99.

    python -m benchmarks.console [--runs 1000] [--versions 100] [--windows 10000] [--rounds 20] [--impact-rounds 9]
        [--serving-rounds 5] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from itertools import pairwise
from pathlib import Path

BAR_MS = 200.0
STEPS = ("ingest", "validate", "preprocess", "train", "evaluate", "gate", "register")


def build(root: Path, runs: int, versions: int) -> str:
    """The project folder; the id of the newest run."""
    from foundation.fingerprint import hash_tree
    from foundation.home import Home
    from registry.mlflow_backend import MlflowRegistry
    from registry.versions import APPROVED
    from tests.support import make_artifact

    home = Home(root / "home")
    home.runs.mkdir(parents=True)
    newest = ""
    for number in range(runs):
        day, second = divmod(number, 86_400 // 100)
        run_id = f"2026{1 + day // 28:02d}{1 + day % 28:02d}-{second // 36:02d}{second % 36:02d}00-{number:04x}"
        steps = {
            name: {
                "name": name,
                "kind": "processing",
                "status": "succeeded" if index % 3 else "cached",
                "started_at": f"2026-01-01T00:00:{index:02d}.000+00:00",
                "ended_at": f"2026-01-01T00:00:{index + 1:02d}.000+00:00",
                "duration_s": 1.0,
                "metrics": {"validation.macro_f1": 0.6 + number / 10_000} if name == "train" else {},
                "outputs": {"data": {"path": str(home.root / "processed" / name), "digest": "d", "files": {}}},
            }
            for index, name in enumerate(STEPS)
        }
        record = {
            "id": run_id,
            "pipeline": f"pipeline-{number % 5}",
            "spec_path": "/nowhere.yaml",
            "spec_hash": "s" * 64,
            "parameters": {"C": 10.0, "seed": number},
            "status": "succeeded" if number % 7 else "failed",
            "started_at": f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T00:00:00.000+00:00",
            "steps": steps,
            "edges": [[a, b, "data"] for a, b in pairwise(STEPS)],
        }
        (home.runs / f"{run_id}.json").write_text(json.dumps(record))
        newest = max(newest, run_id)
    registry = MlflowRegistry(home)
    for number in range(versions):  # each version its own artifact: the registry keeps one version per digest
        artifact = make_artifact(root / "artifacts" / str(number), f"bench {number}")
        tree = hash_tree(artifact)
        registry.register(
            name=f"model-{number % 4}",
            artifact=artifact,
            digest=tree.digest,
            files=tree.files,
            metrics={"macro_f1": 0.7},
            lineage={"run_id": newest},
            status=APPROVED if number % 2 else "PendingManualApproval",
        )
    return newest


def windows(root: Path, count: int) -> None:
    """An endpoint's judged windows, an hour apart, as tests/test_console.py writes them."""
    from foundation.home import Home
    from tests.test_console import write_windows

    write_windows(Home(root / "home"), "prod", count)


def measure(root: Path, newest: str, rounds: int) -> list[tuple[str, float, float, float]]:
    from fastapi.testclient import TestClient

    from console.app import create_console
    from console.server import warm
    from foundation.home import Home

    app = create_console(Home(root / "home"))
    started = time.perf_counter()
    warm(app)  # as `pravah ui` does before it answers
    print(f"the console's start: records read and the registry opened in {time.perf_counter() - started:.1f} s")
    client = TestClient(app)
    pages = [
        "/",
        "/api/runs",
        f"/runs/{newest}",
        f"/api/runs/{newest}",
        "/models",
        "/models/model-1/2",
        "/endpoints",
        "/monitoring",
    ]
    results = []
    for path in pages:
        started = time.perf_counter()
        assert client.get(path).status_code == 200, path
        cold = (time.perf_counter() - started) * 1000
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        results.append((path, cold, statistics.median(times), max(times)))
    return results


def impact(rounds: int) -> tuple[float, float]:
    """Median wall seconds of a cold 7-step run, alone and while the console serves the project and is polled."""
    import os
    import re
    import signal
    import subprocess
    import sys

    from benchmarks.orchestration import chain_project

    folder = Path(tempfile.mkdtemp())
    project, home = chain_project(folder / "project"), folder / "home"
    env = {**os.environ, "PRAVAH_HOME": str(home)}
    command = [sys.executable, "-m", "cli", "run", "chain", "--no-cache", "--no-tracking"]

    def one_run() -> float:
        started = time.perf_counter()
        subprocess.run(command, cwd=project, env=env, capture_output=True, check=True)
        return time.perf_counter() - started

    one_run()  # the step server's and the caches' first time, for neither side
    ui = subprocess.Popen(
        [sys.executable, "-m", "cli", "ui", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    address = re.search(r"http://\S+", ui.stderr.readline())[0]
    polling = poll_while_set(address, newest_run=True)
    alone, watched = [], []
    try:
        for _ in range(rounds):
            polling.clear()
            alone.append(one_run())
            polling.set()
            watched.append(one_run())
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(30)
    return statistics.median(alone), statistics.median(watched)


def poll_while_set(address: str, newest_run: bool = False, paths: tuple[str, ...] = ()):
    """A browser tab on the console: while the returned event is set, each second the newest run's JSON (with
    `newest_run`) and each of `paths`, and every two seconds the runs list."""
    import threading

    import httpx

    polling = threading.Event()

    def poll() -> None:
        with httpx.Client(base_url=address, timeout=10) as client:
            tick = 0
            while True:
                if polling.is_set():
                    runs = client.get("/api/runs", params={"limit": 1}).json()["runs"]
                    if newest_run and runs:
                        client.get(f"/api/runs/{runs[0]['id']}")
                    for path in paths:
                        client.get(path)
                    if tick % 2 == 0:
                        client.get("/api/runs")
                tick += 1
                time.sleep(1.0)

    threading.Thread(target=poll, daemon=True).start()
    return polling


def serving_impact(rounds: int, seconds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of wrk's requests/s and p99 on the predict route, alone and with the console in use."""
    import json
    import os
    import signal
    import sys

    from benchmarks.serving import TEXT, deployed_default_model, start, wrk

    work = Path(tempfile.mkdtemp(prefix="pravah-bench-console-"))
    home, settings, key = deployed_default_model(work)
    env = {"PRAVAH_HOME": str(home)}
    serve = [sys.executable, "-m", "cli", "serve", "prod", "--port", "18091", "--log-level", "warning"]
    server = start([*serve, "--config", str(settings)], env, work / "serve.log", "http://127.0.0.1:18091/ready")
    ui = start([sys.executable, "-m", "cli", "ui", "--port", "18092"], env, work / "ui.log", "http://127.0.0.1:18092/")
    polling = poll_while_set("http://127.0.0.1:18092", paths=("/endpoints",))
    url, headers = "http://127.0.0.1:18091/api/v1/ml/predict", {"Content-Type": "application/json", "X-API-Key": key}
    body = json.dumps({"input": {"text": TEXT, "metadata": {"language": "en"}}})
    alone: list[dict[str, float]] = []
    watched: list[dict[str, float]] = []
    try:
        wrk(url, body, headers, 8, 2)  # warm-up
        for _ in range(rounds):
            polling.clear()
            alone.append(wrk(url, body, headers, 8, seconds))
            polling.set()
            watched.append(wrk(url, body, headers, 8, seconds))
    finally:
        for process in (server, ui):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)

    def medians(found: list[dict[str, float]]) -> dict[str, float]:
        return {figure: statistics.median(one[figure] for one in found) for figure in ("rps", "p99", "errors")}

    return medians(alone), medians(watched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=100)
    parser.add_argument("--windows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--impact-rounds", type=int, default=9)
    parser.add_argument("--serving-rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=10, help="wrk's window per serving measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        newest = build(root, args.runs, args.versions)
        windows(root, args.windows)
        made = f"{args.runs} runs, {args.versions} versions, {args.windows} monitoring windows"
        print(f"project folder: {made} ({time.perf_counter() - started:.0f} s)")
        print(f"{'page':<34} {'first ms':>9} {'median ms':>10} {'slowest ms':>11} {'median / bar':>13}")
        for path, cold, median, slowest in measure(root, newest, args.rounds):
            print(f"{path:<34} {cold:>9.1f} {median:>10.1f} {slowest:>11.1f} {median / BAR_MS:>12.2f}x")
        print(f"bar: {BAR_MS:.0f} ms a page (issue 34); the first request of a fresh console reads every record once")
    alone, watched = impact(args.impact_rounds)
    print(
        f"a cold 7-step pravah run: {alone:.3f} s alone, {watched:.3f} s with the console serving and polled "
        f"(median of {args.impact_rounds}): {watched / alone:.2f}x"
    )
    alone, watched = serving_impact(args.serving_rounds, args.seconds)
    print(
        f"pravah serve, predict at concurrency 8: {alone['rps']:,.0f} req/s (p99 {alone['p99']:.1f} ms) alone, "
        f"{watched['rps']:,.0f} req/s (p99 {watched['p99']:.1f} ms) with the console in use (median of "
        f"{args.serving_rounds} x {args.seconds} s): {watched['rps'] / alone['rps']:.2f}x the requests/s; "
        f"errors {alone['errors']:.0f} / {watched['errors']:.0f}"
    )


if __name__ == "__main__":
    main()
