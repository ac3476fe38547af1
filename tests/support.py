"""Test helpers: the CLI in a subprocess, a served endpoint over real HTTP, registry versions from an artifact."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def run_cli(
    home: Path, *args: str, cwd: Path = REPO, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """`pravah ARGS` in a fresh process, as a user runs it."""
    env = {**os.environ, "PRAVAH_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def start_cli(home: Path, *args: str, **popen: Any) -> subprocess.Popen:
    """`pravah ARGS` in the background for the project folder `home`, its output discarded (a run to kill)."""
    env = {**os.environ, "PRAVAH_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen
    )


def deploy_default_model(home: Path, mirror: Path, key_name: str) -> tuple[str, subprocess.CompletedProcess]:
    """Train the default pipeline, approve version 1, create an API key and deploy the version to endpoint
    `prod`, as a user does before `pravah serve prod`; the key, and the deploy command's outcome."""
    assert (
        run_cli(home, "run", "text-classifier", "--no-tracking", env={"PRAVAH_DATA_MIRROR": str(mirror)}).returncode
        == 0
    )
    assert run_cli(home, "models", "approve", "text-classifier", "1", "--reason", "tests").returncode == 0
    key = run_cli(home, "keys", "create", key_name).stdout.strip()
    return key, run_cli(home, "deploy", "prod", "--model", "text-classifier", "--version", "1")


def unclaimed_port() -> int:
    """A port for a program that must be told one in advance (the README's `--port 8080`, MLflow's UI): taken
    below the kernel's ephemeral range, so no socket bound to port 0 meanwhile (every other server of the tests,
    every client) can be given it before the program binds it."""
    import random
    import socket

    low, _ = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for port in random.Random().sample(range(10_000, low), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise AssertionError(f"no free port between 10000 and {low}")


def wait_for(condition: Callable[[], object], what: str, timeout: float = 120, every: float = 0.05):
    """Poll `condition` until it returns something true (which is returned): wait for the event itself, with a
    timeout far above what it takes on a loaded machine, so that only a real failure ends the wait."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(every)


def captured(folder: Path) -> dict[str, dict]:
    """The capture records under a folder (an endpoint's or a variant's) by event id; a line still being written
    is left out."""
    records = {}
    for path in folder.rglob("*.jsonl"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
                records[record["eventMetadata"]["eventId"]] = record
            except (ValueError, KeyError, TypeError):
                continue
    return records


@dataclass
class Server:
    home: Path
    url: str
    key: str
    process: subprocess.Popen
    log: Path

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": self.key}, timeout=30, **kwargs)

    def log_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def serve(home: Path, endpoint: str, key: str, config: Path | None = None) -> Server:
    """`pravah serve ENDPOINT --port 0`: the server binds a free port itself and says which (no race for it)."""
    log = home / f"serve-{endpoint}-{time.monotonic_ns()}.log"
    args = [sys.executable, "-m", "cli", "serve", endpoint, "--port", "0"]
    args += ["--config", str(config)] if config else []
    env = {**os.environ, "PRAVAH_HOME": str(home)}
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))

    def alive() -> None:
        if process.poll() is not None:
            raise RuntimeError(f"the server ended: {log.read_text()}")

    def address() -> str | None:
        alive()
        said = re.search(r"serving endpoint '[^']+' at (http://\S+) ", log.read_text())
        return said and said.group(1)

    def ready() -> bool:
        alive()
        try:
            return httpx.get(f"{url}/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    url = wait_for(address, "the server to say its address")
    server = Server(home, url, key, process, log)
    try:
        wait_for(ready, "the server to be ready", every=0.2)
    except AssertionError:
        server.stop()
        raise AssertionError(f"the server did not become ready: {log.read_text()}") from None
    return server


def split_texts(mirror: Path, language: str, split: str = "test") -> list[dict[str, str]]:
    """A SIB-200 split of one language from the mirror: text, label, language (FLORES-200 code)."""
    with (mirror / "data" / "annotated" / language / f"{split}.tsv").open(encoding="utf-8") as handle:
        return [
            {"text": row["text"], "label": row["category"], "language": language}
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        ]


def register_copy(
    home: Path, artifact: Path, folder: Path, note: str, family: str | None = None, approve: bool = True
) -> int:
    """Register a copy of `artifact` with `note` in its manifest (and another family, if given)."""
    from artifact.contract import open_artifact, seal
    from foundation.fingerprint import hash_tree
    from foundation.home import Home
    from registry.mlflow_backend import MlflowRegistry
    from registry.versions import APPROVED, PENDING

    shutil.copytree(artifact, folder)
    manifest = open_artifact(folder)
    labels = manifest.pop("labels")
    seal(folder, {**manifest, "note": note, **({"family": family, "loader": family} if family else {})}, labels)
    tree = hash_tree(folder)
    version = MlflowRegistry(Home(home)).register(
        name="text-classifier",
        artifact=folder,
        digest=tree.digest,
        files=tree.files,
        metrics={},
        lineage={"note": note},
        status=APPROVED if approve else PENDING,
    )
    return version.version


def markers_folder(tmp_path: Path, monkeypatch, variable: str) -> Path:
    """A folder where a test's step code leaves marks (what ran) and finds them (what to do), named to it by the
    environment variable `variable`."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(variable, str(markers))
    return markers


# a registered version's lineage, made up
LINEAGE = {"run_id": "run-1", "data_sha256": "d" * 64, "code_sha256": "c" * 64, "spec_hash": "s" * 64}


def make_artifact(folder: Path, content: str) -> Path:
    """A small real sklearn-text artifact; `content` makes each one different."""
    from artifact.contract import seal
    from training import sklearn_text

    texts = [f"{content} goal match team {i}" for i in range(6)] + [f"{content} vote law party {i}" for i in range(6)]
    import pandas as pd

    model = sklearn_text.fit(pd.DataFrame({"text": texts}), ["sports"] * 6 + ["politics"] * 6, {"hash_bits": 10})
    folder.mkdir(parents=True)
    sklearn_text.save(model, folder)
    manifest = {"family": "sklearn-text", "loader": sklearn_text.__name__, "training_data_sha256": "d" * 64}
    seal(folder, manifest, sklearn_text.classes(model))
    return folder


def register_in_sagemaker(aws, name: str, artifact: Path, versions: int, image: str):
    """`versions` PendingManualApproval versions of model `name` in SageMaker's registry (told apart by their
    digests), all of `artifact`, uploaded as s3://BUCKET/models/NAME/model.tar.gz; the registry."""
    import io
    import tarfile

    from foundation.fingerprint import hash_tree
    from registry.sagemaker_backend import SageMakerRegistry
    from registry.versions import PENDING

    bucket, buffer = aws.environment.bucket, io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(artifact, arcname=".")
    aws.client("s3").put_object(Bucket=bucket, Key=f"models/{name}/model.tar.gz", Body=buffer.getvalue())
    registry, tree = SageMakerRegistry(aws.client("sagemaker")), hash_tree(artifact)
    for mark in "abcdefgh"[:versions]:
        registry.register(
            name=name,
            artifact=f"s3://{bucket}/models/{name}/model.tar.gz",
            files=tree.files,
            digest=mark + tree.digest[1:],
            metrics={},
            lineage={},
            status=PENDING,
            image_uri=image,
        )
    return registry


def moto_sagemaker_backends() -> list:
    """moto's SageMaker backends of every account and region: its server runs in the tests' process, so a test
    can put a job or an execution in a state moto never reaches by itself (failed, still running)."""
    from moto.sagemaker.models import sagemaker_backends

    return [backend for account in sagemaker_backends.values() for backend in account.values()]


def ensure_bucket(s3, bucket: str, region: str) -> None:
    """The environment's bucket in the emulator, made once for every module that needs it."""
    from botocore.exceptions import ClientError

    try:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise


def register_small_model(home, folder: Path, content: str, status: str, metrics: dict[str, float] | None = None):
    """A small real model (make_artifact's, `content` making it its own) registered as a version of `topics`."""
    from foundation.fingerprint import hash_tree
    from registry.mlflow_backend import MlflowRegistry

    artifact = make_artifact(folder, content)
    tree = hash_tree(artifact)
    return MlflowRegistry(home).register(
        name="topics",
        artifact=artifact,
        digest=tree.digest,
        files=tree.files,
        metrics=metrics or {},
        lineage={},
        status=status,
    )


def deploy_small_model(root: Path, endpoint: str, metrics: dict[str, float] | None = None) -> tuple[Any, str]:
    """A small real model registered as `topics` version 1 (approved) in the project folder `root/home`,
    deployed to `endpoint` (all at once, nothing served yet); the Home and a new API key."""
    from foundation.home import Home
    from inference.endpoints import Alarms, EndpointStore, registered_variant, request_deployment
    from inference.keys import KeyStore
    from registry.versions import APPROVED

    home = Home(root / "home")
    register_small_model(home, root / "artifact", endpoint, APPROVED, metrics)
    request_deployment(
        EndpointStore(home),
        endpoint,
        registered_variant(home, "topics", 1),
        "all-at-once",
        [100.0],
        0,
        Alarms(0.05, 1000, 20),
    )
    return home, KeyStore(home).create("tester")


@contextmanager
def running(home, endpoint: str, config):
    """`endpoint` served by uvicorn in this process as `pravah serve` runs it, on a port it binds itself, once its
    model has loaded (`home` a Home, `config` a ServingConfig); the server, its URL and port."""
    import socket
    import threading

    from inference.app import create_app
    from inference.server import build_server

    listener = socket.create_server(("127.0.0.1", 0))
    server = build_server(create_app(home, endpoint, config), config, log_level="error")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn to start")
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        wait_for(lambda: httpx.get(f"{url}/ready").status_code == 200, "the model to load")
        yield server, url, listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(60)
