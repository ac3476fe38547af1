"""Run records: what ran, with which parameters, what it produced (with hashes) and how it ended."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from foundation import typed
from foundation.errors import PravahError, did_you_mean
from foundation.home import Home, write_json_atomic
from foundation.processes import process_alive

StepStatus = Literal["pending", "running", "succeeded", "cached", "failed", "skipped", "not-run"]
RunStatus = Literal["running", "succeeded", "failed", "interrupted"]
DONE = {"succeeded", "cached"}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(kw_only=True)
class OutputRecord:
    ignores_unknown_fields = True  # a record written by a later version still reads, as it did under pydantic
    path: str
    digest: str
    files: dict[str, str]


@dataclass(kw_only=True)
class StepRecord:
    ignores_unknown_fields = True
    name: str
    kind: str
    status: StepStatus = "pending"
    attempts: int = 0
    started_at: str | None = None
    ended_at: str | None = None
    duration_s: float | None = None
    peak_memory_mb: float | None = None  # the step's largest process (a code step's; None for the others)
    cache_key: str | None = None
    cache_hit: bool = False
    reason: str | None = None  # why it ran (cache miss), was skipped, or did not run
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # what the step was given: arguments or hyperparameters
    error: str | None = None
    log: str | None = None


@dataclass(kw_only=True)
class RunRecord:
    ignores_unknown_fields = True
    id: str
    pipeline: str
    spec_path: str
    spec_hash: str  # of the spec as run: its file and its --set overrides
    parameters: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)  # how it was run (use_cache): a resume runs the same way
    status: RunStatus = "running"
    started_at: str = field(default_factory=now)
    ended_at: str | None = None
    duration_s: float | None = None
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=lambda: os.uname().nodename)
    resumed_at: list[str] = field(default_factory=list)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    error: str | None = None
    spec_file_hash: str = ""  # of the spec file alone (empty in records written before it was kept)
    edges: list[list[str]] = field(default_factory=list)  # the step graph as run: [upstream, downstream, label]


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{os.urandom(2).hex()}"


class RunStore:
    """Run records as JSON files under `<home>/runs/`, each replaced atomically on every change."""

    def __init__(self, home: Home):
        self.home = home

    def path(self, run_id: str) -> Path:
        return self.home.runs / f"{run_id}.json"

    def save(self, record: RunRecord) -> None:
        write_json_atomic(self.path(record.id), record)  # orjson writes dataclasses

    def resolve(self, given: str) -> str:
        """A run's id from what a user types: the id, `latest` (the run started last) or a unique prefix."""
        if self.path(given).exists():
            return given
        known = sorted(p.stem for p in self.home.runs.glob("*.json")) if self.home.runs.is_dir() else []
        if given == "latest":
            if not known:
                raise PravahError(f"no runs yet in {self.home.runs}: start one with `pravah run PIPELINE`")
            return self.all()[0].id
        matching = [run_id for run_id in known if run_id.startswith(given)]
        if len(matching) == 1:
            return matching[0]
        if matching:
            shown = ", ".join(matching[-5:]) + (f" and {len(matching) - 5} more" if len(matching) > 5 else "")
            raise PravahError(f"run id '{given}' is the start of {len(matching)} runs ({shown}): give more of it")
        raise PravahError(f"no run '{given}' in {self.home.runs}{did_you_mean(given, known)}")

    def load(self, run_id: str) -> RunRecord:
        path = self.path(self.resolve(run_id))
        try:
            record = typed.read(json.loads(path.read_text(encoding="utf-8")), RunRecord)
        except (ValueError, OSError) as exc:
            raise PravahError(f"{path}: unreadable run record ({exc})") from None
        return mark_if_dead(record)

    def clean_scratch(self) -> None:
        """Remove what dead runs left in scratch: it was never a result."""
        if not self.home.scratch.exists():
            return
        for folder in self.home.scratch.iterdir():
            alive = self.path(folder.name).exists() and self.load(folder.name).status == "running"
            if not alive:
                shutil.rmtree(folder, ignore_errors=True)

    def all(self) -> list[RunRecord]:
        records = []
        for path in self.home.runs.glob("*.json"):
            try:
                records.append(mark_if_dead(typed.read(json.loads(path.read_text(encoding="utf-8")), RunRecord)))
            except (ValueError, OSError):
                continue  # a foreign or damaged file is not a run
        return sorted(records, key=lambda record: record.started_at, reverse=True)


def mark_if_dead(record: RunRecord) -> RunRecord:
    """A run still 'running' whose process is gone was killed: call it interrupted."""
    if record.status == "running" and record.host == os.uname().nodename and not process_alive(record.pid):
        record.status = "interrupted"
        for step in record.steps.values():
            if step.status == "running":
                step.status = "failed"
                step.error = "interrupted: the runner process died"
    return record


@dataclass
class Outcome:
    """What one step's execution produced; the main thread folds it into the run record."""

    status: str
    attempts: int = 0
    cache_key: str | None = None
    cache_hit: bool = False
    reason: str | None = None
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    log: str | None = None
    duration_s: float | None = None
    peak_memory_mb: float | None = None
    params: dict[str, Any] = field(default_factory=dict)  # what the step was given
    skips: dict[str, str] = field(default_factory=dict)  # steps that will not run (a branch not taken), and why
