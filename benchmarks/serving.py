"""Serving speed: `POST /api/v1/ml/predict` of `pravah serve` against `mlflow models serve` serving the same
registry version, and against the floor (the same FastAPI + uvicorn stack answering a constant), with the
same load generator (wrk) at concurrency 1, 8 and 32, in one run: rounds of the three in turns, medians (one
10-second window here moves by 20% with the machine). Then batch prediction rows/s against the
model's own predict on the same rows, and online p99 while the largest batches are scored against it alone.
Prints a table and ratios.

    PRAVAH_DATA_MIRROR=../shared/datasets/sib-200 python -m benchmarks.serving [--seconds 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
TEXT = "The parliament passed the new election law after a long debate in the capital"
CONCURRENCY = (1, 8, 32)


def cli(home: Path, *args: str) -> str:
    env = {**os.environ, "PRAVAH_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(f"pravah {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def start(args: list[str], env: dict[str, str], log: Path, ready_url: str) -> subprocess.Popen:
    process = subprocess.Popen(
        args,
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{args[0]} ended: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    sys.exit(f"{' '.join(args)} did not become ready: {log.read_text()[-2000:]}")


def wrk(url: str, body: str, headers: dict[str, str], concurrency: int, seconds: int) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body)}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()

    def ms(label: str) -> float:
        value, unit = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": ms("50"),
        "p99": ms("99"),
        "errors": int(errors.group(1)) if errors else 0,
    }


def deployed_default_model(work: Path, other_seeds: tuple[int, ...] = ()) -> tuple[Path, Path, str]:
    """The default model trained in `work`/home as version 1, deployed to endpoint `prod`, and a version more per
    training seed in `other_seeds` (each approved): the home, serving settings without the rate limit (its
    1000/s per key would cap the measure; the limiter stays in the path), and an API key."""
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk; `make bench` installs it)")
    home, settings = work / "home", work / "serving.yaml"
    print(f"training and registering the default model in {home} ...", flush=True)
    settings.write_text("rate_limit:\n  requests_per_second: 1000000\n  burst: 1000000\n")
    for version, changes in enumerate([[], *(["--set", f"train.seed={seed}"] for seed in other_seeds)], start=1):
        cli(home, "run", "text-classifier", "--no-tracking", *changes)
        cli(home, "models", "approve", "text-classifier", str(version), "--reason", "benchmark")
    cli(home, "deploy", "prod", "--model", "text-classifier", "--version", "1")
    return home, settings, cli(home, "keys", "create", "bench")


def batch_rows_per_second(url: str, key: str, batches: list[list[str]]) -> float:
    """Submit every batch at once, as a client with a backlog does; rows/s until the last results are read. The
    bodies are encoded before the clock starts (as wrk's are): the client's JSON is not the server's work."""
    import orjson

    bodies = [orjson.dumps({"inputs": [{"text": text} for text in texts]}) for texts in batches]
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        started = time.perf_counter()
        pending = [client.post("/api/v1/ml/batch-predict", content=body).json() for body in bodies]
        for accepted in pending:  # each status asked once, held by the server until the batch ends
            while (status := client.get(accepted["statusUrl"], params={"wait": 30}).json())["status"] == "processing":
                pass
            assert status["status"] == "completed", status
            client.get(status["resultsUrl"]).raise_for_status()
        return sum(map(len, batches)) / (time.perf_counter() - started)


def online_alone_and_during_batches(
    url: str, key: str, target: tuple[str, str, dict[str, str]], seconds: int, rounds: int = 3
) -> tuple[float, float]:
    """Online p99 at c=1 (wrk) alone, and while a client keeps the largest batch the API takes (1,000 texts of
    4,000 characters) in flight, one after another: `rounds` of each, interleaved, medians of their p99s (one
    window's p99 on a shared machine moves by 2x on its own)."""
    import threading

    long_text = ((TEXT + " ") * 60)[:3990]
    body = {"inputs": [{"text": f"{i} {long_text}"} for i in range(1000)]}

    def keep_batches_coming(stop: threading.Event) -> None:
        """Until `stop`, then until the batch in flight is scored (so that none is left in the next round alone)."""
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=300) as client:
            while not stop.is_set():
                accepted = client.post("/api/v1/ml/batch-predict", json=body).json()
                while client.get(accepted["statusUrl"]).json()["status"] == "processing":
                    time.sleep(0.05)

    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=300) as client:  # the batch processes
        accepted = client.post("/api/v1/ml/batch-predict", json={"inputs": body["inputs"][:2]}).json()  # start
        while client.get(accepted["statusUrl"]).json()["status"] == "processing":  # once: not measured here
            time.sleep(0.05)
    alone, during = [], []
    for _ in range(rounds):
        alone.append(wrk(*target, 1, seconds)["p99"])
        stop = threading.Event()
        thread = threading.Thread(target=keep_batches_coming, args=(stop,))
        thread.start()
        try:
            time.sleep(2)  # the first batch is being scored
            during.append(wrk(*target, 1, seconds)["p99"])
        finally:
            stop.set()
            thread.join()
    return statistics.median(alone), statistics.median(during)


def direct_rows_per_second(artifact: Path, batches: list[list[str]]) -> float:
    """The baseline: the model's own predict on the same rows, batch by batch, in this process."""
    from artifact.predictor import Predictor

    predictor = Predictor(artifact)
    predictor.predict(batches[0][:10])
    started = time.perf_counter()
    for texts in batches:
        predictor.predict(texts)
    return sum(map(len, batches)) / (time.perf_counter() - started)


def batch_and_direct_rows_per_second(
    url: str, key: str, artifact: Path, batches: list[list[str]], rounds: int = 5
) -> tuple[float, float]:
    """Batch-predict's rows/s and the model's own, medians of `rounds` measured in turns (this machine's speed
    moves by 1.5x within minutes: measured apart, the two would see different machines)."""

    batch_rows_per_second(url, key, batches[:1])  # the batch process is started and warm
    batch, direct = [], []
    for _ in range(rounds):
        batch.append(batch_rows_per_second(url, key, batches))
        direct.append(direct_rows_per_second(artifact, batches))
    return statistics.median(batch), statistics.median(direct)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three servers in turns (medians)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pravah-bench-serving-"))
    home, settings, key = deployed_default_model(work)
    venv_bin = str(Path(sys.executable).parent)
    env = {"PRAVAH_HOME": str(home), "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    ours_url, mlflow_url, floor_url = "http://127.0.0.1:18081", "http://127.0.0.1:18082", "http://127.0.0.1:18083"
    body = json.dumps({"input": {"text": TEXT, "metadata": {"language": "en"}}})
    processes = [
        start(
            [
                sys.executable,
                "-m",
                "cli",
                "serve",
                "prod",
                "--port",
                "18081",
                "--log-level",
                "warning",
                "--config",
                str(settings),
            ],
            env,
            work / "ours.log",
            f"{ours_url}/ready",
        ),
        start(
            [
                f"{venv_bin}/mlflow",
                "models",
                "serve",
                "-m",
                "models:/text-classifier/1",
                "--env-manager",
                "local",
                "-p",
                "18082",
                "--workers",
                "2",
            ],
            {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"},
            work / "mlflow.log",
            f"{mlflow_url}/ping",
        ),
        start(
            [sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app", "--port", "18083", "--log-level", "warning"],
            env,
            work / "floor.log",
            f"{floor_url}/health",
        ),
    ]
    targets = {
        "pravah serve": (f"{ours_url}/api/v1/ml/predict", body, {"Content-Type": "application/json", "X-API-Key": key}),
        "mlflow models serve": (
            f"{mlflow_url}/invocations",
            json.dumps({"dataframe_records": [{"text": TEXT}]}),
            {"Content-Type": "application/json"},
        ),
        "floor (constant)": (f"{floor_url}/api/v1/ml/predict", body, {"Content-Type": "application/json"}),
    }
    results: dict[tuple[str, int], dict[str, float]] = {}
    try:
        for url, payload, headers in targets.values():
            wrk(url, payload, headers, 8, 2)  # warm-up
        rounds: dict[tuple[str, int], list[dict[str, float]]] = {}
        for number in range(1, args.rounds + 1):  # the three servers in turns: each round sees the same machine
            for concurrency in CONCURRENCY:
                for name, (url, payload, headers) in targets.items():
                    found = wrk(url, payload, headers, concurrency, args.seconds)
                    rounds.setdefault((name, concurrency), []).append(found)
                    print(
                        f"  round {number}  {name:<20} c={concurrency:<3} {found['rps']:8.1f} req/s  p50 "
                        f"{found['p50']:7.2f} ms  p99 {found['p99']:7.2f} ms  non-2xx {found['errors']}",
                        flush=True,
                    )
        results = {
            key: {measure: statistics.median(r[measure] for r in found) for measure in found[0]}
            for key, found in rounds.items()
        }
        print(f"medians of {args.rounds} rounds:")
        for (name, concurrency), found in results.items():
            print(
                f"  {name:<20} c={concurrency:<3} {found['rps']:8.1f} req/s  p50 {found['p50']:7.2f} ms  "
                f"p99 {found['p99']:7.2f} ms  non-2xx {found['errors']:.0f}",
                flush=True,
            )
        alone, during = online_alone_and_during_batches(ours_url, key, targets["pravah serve"], args.seconds)
        print(
            f"  pravah serve c=1, median p99 of 3 windows: alone {alone:.2f} ms, during batches {during:.2f} ms",
            flush=True,
        )
        batches = [[f"{TEXT} {i}", "भारत ने क्रिकेट मैच में ऑस्ट्रेलिया को हराया"] * 500 for i in range(8)]
        artifact = Path(json.loads((home / "endpoints" / "prod.json").read_text())["variants"][0]["artifact"])
        batch, direct = batch_and_direct_rows_per_second(ours_url, key, artifact, batches)
    finally:
        for process in processes:
            os.killpg(process.pid, 15)
    ours, mlflow, floor = (results[name, 32] for name in targets)
    print("\nratios")
    print(f"  throughput at c=32, pravah / mlflow:   {ours['rps'] / mlflow['rps']:.2f}x  (target >= 5)")
    print(f"  p99 at c=32, pravah / mlflow:          {ours['p99'] / mlflow['p99']:.2f}  (target <= 1)")
    p50 = results["pravah serve", 1]["p50"] / results["mlflow models serve", 1]["p50"]
    print(f"  p50 at c=1, pravah / mlflow:           {p50:.2f}  (target <= 1)")
    print(f"  throughput at c=32, pravah / floor:    {ours['rps'] / floor['rps']:.2f}  (target >= 0.5)")
    print(
        f"  online p99 c=1, during batches / alone: {during:.2f} / {alone:.2f} ms = {during / alone:.2f}  (target <= 2)"
    )
    print(
        f"  batch rows/s, batch-predict / direct:  {batch:.0f} / {direct:.0f} = {batch / direct:.2f}  "
        "(what yielding to online traffic, checks, capture and kept results cost a batch; not a target)"
    )


if __name__ == "__main__":
    main()
