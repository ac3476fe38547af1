"""What a person sees while a pipeline runs, and the summary at its end."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from pipelines.records import RunRecord

TERMINAL_LOCK = threading.Lock()  # held by whatever writes to, or swaps, this process's stdout and stderr

ICONS = {"succeeded": "✓", "cached": "↺", "failed": "✗", "skipped": "–", "not-run": "·", "running": "▶",
         "pending": "·"}  # fmt: skip


class Progress:
    """One line per event; on a terminal, also a live status line of the steps still running."""

    def __init__(self, stream: TextIO = sys.stderr, live: bool | None = None):
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self._running: dict[str, float] = {}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def _print(self, line: str) -> None:
        with TERMINAL_LOCK:
            if self.live:
                self.stream.write("\r\033[K")
            self.stream.write(line + "\n")
            self._status_line()
            self.stream.flush()

    def _status_line(self) -> None:
        if self.live and self._running:
            now = time.monotonic()
            parts = ", ".join(f"{name} {now - start:.0f}s" for name, start in self._running.items())
            self.stream.write(f"  running: {parts}")

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with TERMINAL_LOCK:
                self.stream.write("\r\033[K")
                self._status_line()
                self.stream.flush()

    def run_started(self, record: RunRecord, graph: Any) -> None:
        resumed = " (resumed)" if record.resumed_at else ""
        self._print(f"run {record.id}{resumed}: pipeline {record.pipeline}, {len(graph.steps)} steps")
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def step_started(self, name: str) -> None:
        self._running[name] = time.monotonic()
        self._print(f"  ▶ {name}")

    def step_finished(self, record: RunRecord, name: str, outcome: Any) -> None:
        self._running.pop(name, None)
        step = record.steps[name]
        took = f" {step.duration_s:.1f}s" if step.duration_s is not None else ""
        note = f"  ({step.reason})" if step.reason and step.status != "failed" else ""
        self._print(f"  {ICONS[step.status]} {name} {step.status}{took}{note}")
        for target, other in record.steps.items():
            if other.status == "skipped" and (other.reason or "").startswith(f"condition '{name}' "):
                self._print(f"  {ICONS['skipped']} {target} skipped ({other.reason})")

    def run_finished(self, record: RunRecord) -> None:
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        with TERMINAL_LOCK:
            if self.live:
                self.stream.write("\r\033[K")
            self.stream.write("\n" + format_summary(record) + "\n")
            self.stream.flush()


def format_summary(record: RunRecord, *, all_metrics: bool = False) -> str:
    """A readable table of a run: steps, status, time, cache, then its metrics."""
    took = f" in {record.duration_s:.1f}s" if record.duration_s is not None else ""
    lines = [f"run {record.id}  pipeline {record.pipeline}  {record.status.upper()}{took}"]
    if record.parameters:
        lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in record.parameters.items()))
    if record.options.get("overrides"):
        lines.append("set: " + ", ".join(f"{k}={v}" for k, v in record.options["overrides"].items()))
    width = max((len(name) for name in record.steps), default=4)
    lines.append(f"  {'step':<{width}}  {'status':<9}  {'time':>7}  why")
    for name, step in record.steps.items():
        duration = f"{step.duration_s:.1f}s" if step.duration_s is not None else "-"
        why = step.reason or ""
        if step.status == "succeeded" and step.cache_key:
            why = f"ran: {why}" if why else "ran"
        lines.append(f"  {name:<{width}}  {step.status:<9}  {duration:>7}  {why}")
    cached = [n for n, s in record.steps.items() if s.status == "cached"]
    ran = [n for n, s in record.steps.items() if s.status == "succeeded" and s.cache_key]
    lines.append(f"cached: {', '.join(cached) or 'none'};  ran: {', '.join(ran) or 'none'}")
    for name, step in record.steps.items():
        metrics = step.metrics if all_metrics else {k: v for k, v in step.metrics.items() if k.count(".") <= 1}
        if metrics:
            lines.append(f"metrics of {name}:")
            lines.extend(f"  {key} = {value:.4g}" for key, value in sorted(metrics.items()))
        registered = step.details.get("registered")
        if registered:
            lines.append(f"registered {registered['name']} version {registered['version']} "
                         f"({registered['approval_status']})")  # fmt: skip
        if step.status == "failed" and step.error:
            lines.append(f"error in {name}: {step.error}")
    if record.error and record.status != "failed":
        lines.append(record.error)
    if record.status in {"failed", "interrupted"}:
        lines.append(f"resume with: pravah run --resume {record.id}")
    return "\n".join(lines)
