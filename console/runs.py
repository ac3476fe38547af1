"""Runs as the console lists and draws them: the run records under the project folder, read once and again only
when their file changes (a year of runs is a thousand files: a page stats them and reads the few that moved)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from foundation import typed
from foundation.errors import PravahError
from foundation.home import Home
from pipelines.records import RunRecord, mark_if_dead

RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$")  # what pipelines.records.new_run_id makes
HEADLINE = ("macro_f1", "accuracy", "r2", "score")  # metric names worth a column, by their last part


@dataclass
class RunSummary:
    """A run as the runs list shows it."""

    id: str
    pipeline: str
    status: str
    started_at: str
    duration_s: float | None
    steps: dict[str, str]  # name -> status
    parameters: dict[str, Any]
    headline: dict[str, float]  # a few metrics, by their full name

    def as_json(self) -> dict[str, Any]:
        return self.__dict__


class JsonCache:
    """JSON files read once, and again only when one changes (its modification time or size): the console's pages
    ask for the same thousand files every second or two. `parse` turns a file's data into what is kept."""

    def __init__(self, parse: Callable[[Any], Any] = lambda data: data):
        self.parse = parse
        self._kept: dict[Path, tuple[tuple[int, int], Any]] = {}

    def read(self, path: Path) -> Any:
        """The file's parsed content; None for a file gone, being replaced, or not what `parse` reads."""
        try:
            stat = path.stat()
            key = (stat.st_mtime_ns, stat.st_size)
            kept = self._kept.get(path)
            if kept is None or kept[0] != key:
                kept = self._kept[path] = (key, self.parse(json.loads(path.read_text(encoding="utf-8"))))
            return kept[1]
        except (ValueError, OSError):
            return None


class RunIndex:
    """The project's run records, through a JsonCache."""

    def __init__(self, home: Home):
        self.home = home
        self._records = JsonCache(lambda data: typed.read(data, RunRecord))
        self._edges: dict[str, list[list[str]]] = {}  # of records written before records kept them

    def records(self) -> list[RunRecord]:
        """Every readable record, newest first (a run whose process died reads as interrupted)."""
        paths = self.home.runs.glob("*.json") if self.home.runs.is_dir() else []
        found = [mark_if_dead(record) for record in map(self._records.read, paths) if record is not None]
        return sorted(found, key=lambda record: record.started_at, reverse=True)

    def get(self, run_id: str) -> RunRecord | None:
        """The run (its file alone is read: a run's page asks every second), its graph's edges filled in from its
        spec file, once, for a record written before records kept them."""
        if not RUN_ID.match(run_id):
            return None
        record = self._records.read(self.home.runs / f"{run_id}.json")
        if record is None:
            return None
        if not record.edges:
            if run_id not in self._edges:
                self._edges[run_id] = edges_from_spec(record)
            record.edges = self._edges[run_id]
        return mark_if_dead(record)

    def summaries(self, pipeline: str = "", status: str = "", text: str = "") -> list[RunSummary]:
        text = text.strip().lower()
        chosen = []
        for record in self.records():
            if (pipeline and record.pipeline != pipeline) or (status and record.status != status):
                continue
            summary = summarize(record)
            if text and text not in json.dumps(summary.as_json(), default=str).lower():
                continue
            chosen.append(summary)
        return chosen


def edges_from_spec(record: RunRecord) -> list[list[str]]:
    """The step graph's edges of the spec the run ran, if that file is still there with the same steps."""
    from pipelines.graph import StepGraph
    from pipelines.specfile import load_pipeline

    try:
        pipeline = load_pipeline(record.spec_path)
    except (PravahError, OSError):  # a spec moved, changed or broken since: the graph is drawn without edges
        return []
    if set(pipeline.steps) != set(record.steps):
        return []
    return [[edge.upstream, edge.downstream, edge.label] for edge in StepGraph.build(pipeline).edges]


def summarize(record: RunRecord) -> RunSummary:
    metrics = {f"{step}.{name}": value for step, s in record.steps.items() for name, value in s.metrics.items()}
    headline = {name: value for name, value in metrics.items() if name.rsplit(".", 1)[-1] in HEADLINE}
    return RunSummary(
        id=record.id,
        pipeline=record.pipeline,
        status=record.status,
        started_at=record.started_at,
        duration_s=record.duration_s,
        steps={name: step.status for name, step in record.steps.items()},
        parameters=record.parameters,
        headline=dict(list(headline.items())[:3]),
    )


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def log_tail(home: Home, record: RunRecord, step: str, offset: int, limit: int = 64_000) -> tuple[str, int]:
    """The step's log from `offset` (bytes), at most `limit` of it, and the offset to ask from next; the last
    `limit` bytes when asked from the start of a long log. A running step's log is where the runner writes it."""
    found = record.steps.get(step)
    if found is None:
        return "", 0
    path = Path(found.log) if found.log else home.step_log(record.id, step)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            start = max(offset, size - limit) if offset == 0 else min(offset, size)
            handle.seek(start)
            return handle.read(limit).decode("utf-8", errors="replace"), start + min(limit, size - start)
    except OSError:
        return "", offset
