"""The disaster-recovery drill: a served endpoint's project folder backed up while it serves, deleted, restored
(in place, and elsewhere), and served again: the same version, the same keys, the same answers. A damaged
backup or a folder that is not empty is refused and changes nothing."""

from __future__ import annotations

import io
import shutil
import tarfile
import threading
from pathlib import Path

import pytest

from tests.support import deploy_small_model, run_cli, serve, wait_for

pytestmark = pytest.mark.slow

API = "/api/v1/ml"
TEXT = "the team won the final match by two goals"


def answer_of(home: Path, key: str) -> dict:
    server = serve(home, "api", key)
    try:
        with server.client() as client:
            found = client.post(f"{API}/predict", json={"input": {"text": TEXT}})
        assert found.status_code == 200, found.text
        return {k: found.json()[k] for k in ("result", "modelVersion")}
    finally:
        server.stop()


@pytest.fixture
def project(tmp_path):
    home, key = deploy_small_model(tmp_path / "project", "api", metrics={"macro_f1": 0.9})
    shutil.rmtree(tmp_path / "project" / "artifact")  # the registry holds its own copy: nothing outside is needed
    return home, key


def test_backup_while_serving_delete_restore_and_serve_the_same(project, tmp_path):
    home, key = project
    before = answer_of(home.root, key)
    server, stop, answered = serve(home.root, "api", key), threading.Event(), []

    def traffic() -> None:  # the endpoint answers (and captures) all through the backup
        with server.client() as client:
            while not stop.is_set():
                answered.append(client.post(f"{API}/predict", json={"input": {"text": TEXT}}).status_code)

    sender = threading.Thread(target=traffic)
    sender.start()
    elsewhere = tmp_path / "new-machine" / ".pravah"
    try:
        first = len(wait_for(lambda: answered, "the first answer"))
        made = run_cli(home.root, "backup", "create", "--to", str(tmp_path / "backups"))
        during = len(answered)
        assert made.returncode == 0, made.stderr
        [archive] = (tmp_path / "backups").glob("pravah-*.tar.gz")
        # restored elsewhere on this machine while the original still serves: the copy's endpoint names the
        # original's server as its own (the backup was made while it served), yet it is the copy's to serve
        moved = run_cli(elsewhere, "backup", "restore", str(archive))
        assert moved.returncode == 0 and "its paths now point here" in moved.stdout, moved.stderr
        assert answer_of(elsewhere, key) == before
    finally:
        stop.set()
        sender.join()
        server.stop()
    assert during > first and set(answered) == {200}, "answered while it was backed up"
    listed = run_cli(home.root, "backup", "list", "--to", str(tmp_path / "backups")).stdout
    assert str(archive) in listed and str(home.root) in listed

    shutil.rmtree(home.root)  # the disaster
    restored = run_cli(home.root, "backup", "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert answer_of(home.root, key) == before, "the same version and answer, with the same key"
    shown = run_cli(home.root, "models", "show", "topics", "1").stdout
    assert "Approved" in shown and "macro_f1" in shown

    shutil.rmtree(home.root)  # nothing of the old place is left to lean on
    assert answer_of(elsewhere, key) == before


def test_a_damaged_backup_or_a_full_folder_is_refused_and_changes_nothing(project, tmp_path):
    home, _ = project
    assert run_cli(home.root, "backup", "create", "--to", str(tmp_path / "b")).returncode == 0
    [archive] = (tmp_path / "b").glob("pravah-*.tar.gz")
    refused = run_cli(home.root, "backup", "restore", str(archive))
    assert refused.returncode == 2 and "is not empty" in refused.stderr
    inside = run_cli(home.root, "backup", "create", "--to", str(home.root / "backups"))
    assert inside.returncode == 2 and "inside the project folder" in inside.stderr

    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(archive, "r:gz") as source, tarfile.open(damaged, "w:gz") as target:
        for member in source:
            data = source.extractfile(member).read()
            if member.name.endswith("endpoints/api.json"):
                data = data.replace(b"topics", b"tapics")
            target.addfile(member, io.BytesIO(data))
    fresh = tmp_path / "fresh" / ".pravah"
    broken = run_cli(fresh, "backup", "restore", str(damaged))
    assert broken.returncode == 2 and "does not match its checksum" in broken.stderr, broken.stderr
    assert not fresh.exists() and not list(fresh.parent.glob(".*restoring*")), "nothing half-restored is left"
    assert "Traceback" not in broken.stderr + refused.stderr
