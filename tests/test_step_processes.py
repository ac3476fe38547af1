"""Step processes, forked from the run's step server: each ends as `python -m module` would, and the server
ends with the run."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from foundation.errors import StepFailed
from foundation.home import Home
from pipelines.records import RunStore
from pipelines.runner import LocalRunner
from pipelines.specfile import load_pipeline
from tests.support import markers_folder

EXITS = """
import sys, threading, time
from pathlib import Path


def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    if args["--how"] == "thread":  # the process ends when its threads have, as Python's does
        late = Path(args["--processing-root"]) / "output" / "out" / "late.txt"
        threading.Thread(target=lambda: (time.sleep(0.3), late.write_text("written after main returned"))).start()
    elif args["--how"] == "code":
        sys.exit(3)
    elif args["--how"] == "raise":
        raise ValueError("bad value in step")


if __name__ == "__main__":
    main()
"""


def step_servers() -> set[int]:
    """This process's children that are step servers (`python -m pipelines.processes`)."""
    found = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == os.getpid() and b"pipelines.processes" in (proc / "cmdline").read_bytes():
                found.add(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


@pytest.mark.parametrize(
    ("how", "status", "error"),
    [
        ("thread", "succeeded", None),
        ("code", "failed", "exit code 3"),
        ("raise", "failed", "exit code 1: "),
    ],
)
def test_a_step_process_ends_as_python_m_would_and_its_server_with_the_run(project, home, how, status, error):
    project("exits.py", EXITS)
    spec = project(
        "configs/pipelines/exits.yaml",
        f"name: exits\nsteps:\n  one: {{kind: processing, code: exits, arguments: {{how: {how}}}, outputs: [out]}}\n",
    )
    before = step_servers()
    with pytest.raises(StepFailed) if status == "failed" else contextlib.nullcontext():
        LocalRunner(load_pipeline(spec), Home(home)).run({})
    step = RunStore(Home(home)).all()[0].steps["one"]
    assert step.status == status
    if error:
        # an exception is told by where it was raised in the step's own file (its frames alone in the log)
        raised = "exits.py:13: ValueError: bad value in step; log "
        assert error in step.error and (how != "raise" or (raised in step.error and "runpy" not in step.error))
    else:
        assert (Path(step.outputs["out"].path) / "late.txt").read_text() == "written after main returned"
    assert step_servers() <= before, "the run's step server ended with the run"


KILLS_ITS_SERVER = """
import os, signal, sys, time
from pathlib import Path


def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    markers = Path(os.environ["SERVER_MARKERS"])
    if not (markers / "killed").exists():  # the first attempt takes its server down, and dies with it
        (markers / "killed").touch()
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(30)
    (Path(args["--processing-root"]) / "output" / "out" / "done.txt").write_text("second attempt")


if __name__ == "__main__":
    main()
"""


def test_a_step_whose_server_dies_fails_and_its_retry_gets_a_new_server(project, home, tmp_path, monkeypatch):
    markers = markers_folder(tmp_path, monkeypatch, "SERVER_MARKERS")
    project("killer.py", KILLS_ITS_SERVER)
    spec = project(
        "configs/pipelines/killer.yaml",
        "name: killer\nsteps:\n  one: {kind: processing, code: killer, "
        "outputs: [out], retry: {max_attempts: 2, backoff_seconds: 0}}\n",
    )
    step = LocalRunner(load_pipeline(spec), Home(home)).run({}).steps["one"]
    assert (markers / "killed").exists()
    assert step.status == "succeeded" and step.attempts == 2
    assert (Path(step.outputs["out"].path) / "done.txt").read_text() == "second attempt"


HOLDS = """
import sys
from pathlib import Path


def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    held = bytearray(int(args["--megabytes"]) * 1024 * 1024)  # touched: resident, not just reserved
    (Path(args["--processing-root"]) / "output" / "out" / "held.txt").write_text(str(len(held)))


if __name__ == "__main__":
    main()
"""


def test_each_step_records_its_peak_memory_and_the_summary_shows_it(project, home):
    """The step server reaps a step with wait4: its peak resident memory goes into the run record and summary."""
    from pipelines.progress import format_summary

    project("holds.py", HOLDS)
    spec = project(
        "configs/pipelines/holds.yaml",
        "name: holds\nsteps:\n"
        "  small: {kind: processing, code: holds, arguments: {megabytes: 1}, outputs: [out]}\n"
        "  large: {kind: processing, code: holds, arguments: {megabytes: 400}, outputs: [out]}\n",
    )
    record = LocalRunner(load_pipeline(spec), Home(home)).run({})
    small, large = record.steps["small"].peak_memory_mb, record.steps["large"].peak_memory_mb
    assert small and large and large - small >= 350, (small, large)
    assert RunStore(Home(home)).load(record.id).steps["large"].peak_memory_mb == large
    [line] = [line for line in format_summary(record).splitlines() if line.strip().startswith("large")]
    assert f"{large / 1024:.2f} GB" in line or f"{large:,.0f} MB" in line
