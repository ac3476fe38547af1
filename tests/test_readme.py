"""The README's walk-through, run as a newcomer pastes it: the bash blocks from "A walk through" up to
"Notebooks", read from README.md itself (so that the two cannot drift apart), in order, in one `bash -e` at the
root of a project folder of their own, with the placeholders the README names filled in. AWS commands go to
moto's server over HTTP (AWS_ENDPOINT_URL); the model versions that the cloud lines name are registered there
first, as a SageMaker pipeline would have registered them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, ensure_bucket, make_artifact, register_in_sagemaker

pytestmark = pytest.mark.slow

SECTIONS = ("## A walk through", "### Notebooks")  # the walk-through: from the first heading to the second
# Lines left out, each with why; a rule that no longer matches a README line fails the test.
SKIPPED = {
    "make ": "the README's own two commands (this test runs under one of them) and the Docker image's build",
    "source .venv/bin/activate": "the venv's bin is put first on PATH instead (this project folder has no .venv)",
    "pravah pipeline emulate": "minutes long: tests/test_emulator.py runs this very command",
}
# Placeholders the README names, and what the shell puts there; each must occur in the README.
PLACEHOLDERS = {
    "RUN_ID": '"$(run_id 1)"',  # the newest run
    "RUN_A": '"$(run_id 2)"',
    "RUN_B": '"$(run_id 1)"',
    "EXECUTION_ARN": "\"$(pravah pipeline executions text-classifier | awk 'NR==1 {print $NF}')\"",
    "pravah-backups/pravah-20261202T101500123456Z.tar.gz": '"$(ls pravah-backups/*.tar.gz | tail -n 1)"',
    "/new/place/": '"$RESTORED"/',
    "8080": "$API_PORT",
    "pravah ui &": "pravah ui --port $UI_PORT &",
}
PRELUDE = """set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
run_id() { ls .pravah/runs | sort | tail -n "$1" | head -n 1 | sed 's/[.]json$//'; }
PS4='+ README: '
set -x
"""


def walk_through() -> list[str]:
    """The walk-through's commands as a shell reads them (continuation lines joined), in the README's order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = (text.index(heading) for heading in SECTIONS)
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text[start:end], re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if shlex.split(line, comments=True):
                commands.append(line)
    return commands


def script(commands: list[str]) -> str:
    kept = [c for c in commands if not any(c.startswith(rule) for rule in SKIPPED)]
    for rule in SKIPPED:
        assert any(c.startswith(rule) for c in commands), f"SKIPPED names {rule!r}, which the README no longer has"
    text = "\n".join(kept)
    for placeholder, value in PLACEHOLDERS.items():
        assert placeholder in text, f"the README no longer has {placeholder!r}"
        text = text.replace(placeholder, value)
    return PRELUDE + text + "\n"


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return listener.getsockname()[1]


def register_cloud_versions(scratch: Path) -> None:
    """text-classifier versions 1 and 2 (approved) and 3 (pending) in SageMaker's registry on moto, in dev's
    region, their model archive in dev's bucket; and prod's bucket."""
    from aws.environments import load_environment
    from aws.images import image_uri
    from aws.requests import Aws
    from registry.versions import APPROVED, change_status

    dev, prod = load_environment("dev", REPO), load_environment("prod", REPO)
    aws = Aws(dev, say=lambda _: None)
    s3 = aws.client("s3")
    for environment in (dev, prod):
        ensure_bucket(s3, environment.bucket, environment.region)
    image = image_uri(dev.account, dev.region, "runtime")  # what a registered model is served in
    registry = register_in_sagemaker(aws, "text-classifier", make_artifact(scratch / "cloud-model", "readme"), 3, image)
    for version in (1, 2):
        change_status(registry, "text-classifier", version, APPROVED, "the README test")


def test_the_readme_walk_through_runs_as_written(tmp_path, empty_account, mirror, monkeypatch):
    project = tmp_path / "project"
    for folder in ("configs", "requirements"):  # what the repository's root holds besides the code
        shutil.copytree(REPO / folder, project / folder)
    aws = {"AWS_ENDPOINT_URL": empty_account, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    for key, value in aws.items():
        monkeypatch.setenv(key, value)
    register_cloud_versions(tmp_path)
    (project / "ground-truth.csv").write_text("predictionId,label\nreadme-0001,sports\n")  # labels of one's own
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PRAVAH_HOME")}
    environment.update(aws, PATH=f"{Path(sys.executable).parent}:{environment['PATH']}", PRAVAH_DATA_MIRROR=str(mirror))
    environment.update(RESTORED=str(tmp_path / "restored"), API_PORT=str(free_port()), UI_PORT=str(free_port()))
    (tmp_path / "walk.sh").write_text(script(walk_through()))
    done = subprocess.run(["bash", str(tmp_path / "walk.sh")], cwd=project, env=environment, capture_output=True,
                          text=True, timeout=1800)  # fmt: skip
    said = done.stdout + done.stderr
    assert done.returncode == 0, f"a README command failed (exit {done.returncode}):\n{said[-6000:]}"
    assert '"prediction":' in done.stdout, "the curl got no prediction"
    assert (tmp_path / "restored" / ".pravah" / "mlflow.db").is_file(), "the backup was not restored"
    assert (project / "build" / "predict.zip").is_file()
