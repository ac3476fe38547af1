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
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, ensure_bucket, make_artifact, register_in_sagemaker, unclaimed_port

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
# The shell's trace goes to stdout (fd 3 is stdout), between the commands' own stdout: each command's results are
# read from stdout alone, as `... > out.txt` keeps them; progress and logs go to stderr, read apart.
PRELUDE = """set -euo pipefail
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
run_id() { ls .pravah/runs | sort | tail -n "$1" | head -n 1 | sed 's/[.]json$//'; }
exec 3>&1
BASH_XTRACEFD=3
PS4=$'\\n+ README: '
set -x
"""


# What the README says a command shows, as a regular expression on what it printed the first time the walk-through
# ran it; each must match, and each command must still be in the walk-through.
def step_line(step: str, status: str, why: str) -> str:
    """A step's line in a run's summary: its name, status, time, peak memory and why."""
    return rf"^\s+{step}\s+{status}\s+\S+\s+(?:[\d,.]+ [MG]B|-)\s+{why}"


REGISTERED = r"[\s\S]*^registered text-classifier version 1 \("
SHOWN = {
    "pravah graph text-classifier": r"^\s+\d+\. train \[training\]  <- preprocess \(train → train\)",
    "pravah check text-classifier": r"text-classifier\.yaml: ok \(\d+ steps, \d+ parameters\)$",
    "pravah run text-classifier": step_line("train", "succeeded", "ran: no earlier successful run$") + REGISTERED,
    "pravah run text-classifier -p min_macro_f1=0.65": r"^\s+train\s+cached\s",  # a second run finds every step cached
    "pravah run text-classifier --set train.C=20": step_line("train", "succeeded", r"ran: changed values\.C"),
    # the same training in another process: the same bytes, so the same registry version (no new one)
    "pravah run text-classifier --no-cache": step_line("ingest", "succeeded", "ran: --no-cache$") + REGISTERED,
    "pravah run text-classifier --set train.C=15 --no-register": step_line(
        "register", "skipped", "--no-register: no version made"
    ),
    "pravah runs list": r"^run\s+pipeline\s+status\s+time\s+steps$",
    "pravah runs show latest": step_line("train", "succeeded", r"ran: changed values\.C"),
    "pravah runs show 2": r"^set: train\.C=15$",  # RUN_ID: the same run, by its id
    "pravah runs compare": r"^parameters: same$[\s\S]*macro_f1",
    "pravah run --resume": r"succeeded: nothing is left to run",
    "pravah data pull sib-200": r"\.pravah/raw/external/sib-200/[0-9a-f]{12}$",  # the folder (checks: stderr)
    "pravah runs sync": r"MLflow run [0-9a-f]{32}",
    "pravah models list text-classifier --status PendingManualApproval": r"text-classifier\s+1\s+PendingManualApproval",
    "pravah models show text-classifier 1": r"^lineage:[\s\S]*data_sha256: [0-9a-f]{64}[\s\S]*^status history:",
    "pravah models card text-classifier 1": r"by language \(accuracy, rows\): eng_Latn [\d.]+ \(\d+\)",
    "pravah models approve text-classifier 1": r"version 1 is now Approved",
    "pravah models reject text-classifier 2": r"version 2 is now Rejected",
    "pravah models alias text-classifier 1 champion": r"champion -> version 1",
    "pravah deploy prod --model text-classifier --version 1": r"starts when pravah serve prod runs",
    "curl -s localhost": r'"prediction":"sports"',
    "pravah deploy prod --model text-classifier --version 3 --strategy canary": r"step 2/2: .* at 100%[\s\S]*"
    r"completed$",
    "pravah deploy prod --model text-classifier --version 1 --strategy linear": r"step 4/4: .* at 100%",
    "pravah deploy prod --model text-classifier --version 3 --strategy shadow": r"gets a copy of 50% of 'prod'",
    "pravah endpoints show prod": r"text-classifier-v1\s+100%",
    "pravah endpoints stop-shadow prod": r"shadow text-classifier-v3 stopped",
    "pravah endpoints list": r"^prod: text-classifier-v1 100%",
    "pravah endpoints rollback prod": r"redeploying text-classifier-v3",
    "pravah monitor run prod --since 1h": r"endpoint prod, variant text-classifier-v1: \d+ records",
    "pravah monitor labels add": r"1 new labels added",
    "pravah schedule list": r"^monitor: monitor prod, every 3600s",
    "pravah backup create": r"pravah-\d{8}T\d+Z\.tar\.gz: \d+ files",
    "pravah --home": r"^restored \d+ files",
    "pravah cloud bootstrap": r"role arn:aws:iam::111111111111:role/pravah-sagemaker-dev created",
    "pravah compile text-classifier": r"steps ingest, validate, preprocess, train, evaluate, gate",
    "pravah pipeline upsert text-classifier --environment dev --dry-run": r'"operation": "PutObject"',
    "pravah pipeline start": r"^started arn:aws:sagemaker:ap-south-1:111111111111:pipeline/text-classifier/execution/",
    "pravah deploy prod --model text-classifier --version 2 --target sagemaker": r'"operation": "CreateModel"',
    "pravah template": r"\d+ resources \(\d+ schedules\)",
    "pravah package lambda": r"build/predict\.zip: \d+ files of this repository's code",
    "pravah schedule deploy --environment prod --dry-run": r'"service": "iam"',
}
BACKGROUND = ("pravah ui", "pravah serve")  # started with &: their trace lines come whenever, and split nothing


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
    environment.update(
        RESTORED=str(tmp_path / "restored"), API_PORT=str(unclaimed_port()), UI_PORT=str(unclaimed_port())
    )
    (tmp_path / "walk.sh").write_text(script(walk_through()))
    done = subprocess.run(
        ["bash", str(tmp_path / "walk.sh")], cwd=project, env=environment, capture_output=True, text=True, timeout=1800
    )
    (tmp_path / "stderr.txt").write_text(done.stderr)
    assert done.returncode == 0, (
        f"a README command failed (exit {done.returncode}):\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-3000:]}"
    )
    said = outputs(done.stdout)
    (tmp_path / "said.txt").write_text("\n".join(f"### {c}\n{o}" for c, o in said))
    for command, shown in SHOWN.items():  # what the README says each command shows, it shows
        found = [output for ran, output in said if ran.startswith(command)]
        assert found, f"the walk-through no longer runs {command!r}"
        assert re.search(shown, found[0], re.M), f"{command!r} did not show {shown!r} on stdout:\n{found[0][-3000:]}"
    assert (tmp_path / "restored" / ".pravah" / "mlflow.db").is_file(), "the backup was not restored"
    assert (project / "build" / "predict.zip").is_file()


def outputs(log: str) -> list[tuple[str, str]]:
    """Each command the shell traced (PS4) with what came after it, in order."""
    parts = re.split(r"^\+ README: (.*)$", log, flags=re.M)
    said: list[tuple[str, str]] = []
    for command, output in zip(parts[1::2], parts[2::2], strict=True):
        if command.startswith(BACKGROUND) and said:
            said[-1] = (said[-1][0], said[-1][1] + output)
        else:
            said.append((command, output))
    return said
