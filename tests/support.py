"""Test helpers: the CLI in a subprocess, a served endpoint over real HTTP, registry versions from an artifact."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def run_cli(home: Path, *args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:  # fmt: skip
    """`pravah ARGS` in a fresh process, as a user runs it."""
    env = {**os.environ, "PRAVAH_HOME": str(home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    port = free_port()
    log = home / f"serve-{port}.log"
    args = [sys.executable, "-m", "pipelines.cli", "serve", endpoint, "--port", str(port)]
    args += ["--config", str(config)] if config else []
    env = {**os.environ, "PRAVAH_HOME": str(home)}
    process = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    server = Server(home, f"http://127.0.0.1:{port}", key, process, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server ended: {log.read_text()}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"the server did not become ready: {log.read_text()}")


def register_copy(home: Path, artifact: Path, folder: Path, note: str, family: str | None = None,
                  approve: bool = True) -> int:  # fmt: skip
    """Register a copy of `artifact` with `note` in its manifest (and another family, if given)."""
    from pipelines.fingerprint import hash_tree
    from pipelines.home import Home
    from pipelines.registry import APPROVED, PENDING, MlflowRegistry
    from training.artifact import open_artifact, seal

    shutil.copytree(artifact, folder)
    manifest = open_artifact(folder)
    labels = manifest.pop("labels")
    seal(folder, {**manifest, "note": note, "family": family or manifest["family"]}, labels)
    tree = hash_tree(folder)
    version = MlflowRegistry(Home(home)).register(name="text-classifier", artifact=folder, digest=tree.digest,
                                                  files=tree.files, metrics={}, lineage={"note": note},
                                                  status=APPROVED if approve else PENDING)  # fmt: skip
    return version.version


def make_artifact(folder: Path, content: str) -> Path:
    """A small real sklearn-text artifact; `content` makes each one different."""
    from training import sklearn_text
    from training.artifact import seal

    texts = [f"{content} goal match team {i}" for i in range(6)] + [f"{content} vote law party {i}" for i in range(6)]
    import pandas as pd

    model = sklearn_text.fit(pd.DataFrame({"text": texts}), ["sports"] * 6 + ["politics"] * 6, {"hash_bits": 10})
    folder.mkdir(parents=True)
    sklearn_text.save(model, folder)
    seal(folder, {"family": "sklearn-text", "training_data_sha256": "d" * 64}, sklearn_text.classes(model))
    return folder


def ensure_bucket(s3, bucket: str, region: str) -> None:
    """The environment's bucket in the emulator, made once for every module that needs it."""
    from botocore.exceptions import ClientError

    try:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
