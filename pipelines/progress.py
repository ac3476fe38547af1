"""What a person sees while a pipeline runs, and the summary at its end."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from foundation.home import Home
from pipelines.records import RunRecord
from pipelines.sweep import ranked

TERMINAL_LOCK = threading.Lock()  # held by whatever writes to, or swaps, this process's stdout and stderr

ICONS = {"succeeded": "✓", "cached": "↺", "failed": "✗", "skipped": "–", "not-run": "·", "running": "▶", "pending": "·"}


class Progress:
    """One line per event; on a terminal, also a live status line of the steps still running, with the last
    line the longest-running one wrote to its log (a transformer's epoch and step, for instance). Events go to
    `stream` (stderr), the summary at the end to `results` (stdout): `pravah run ... > out.txt` keeps the result,
    as a pipe to grep or tee does."""

    def __init__(
        self,
        stream: TextIO = sys.stderr,
        live: bool | None = None,
        home: Home | None = None,
        results: TextIO | None = None,
    ):
        self.stream, self.home, self.results = stream, home, results or sys.stdout
        self.live = stream.isatty() if live is None else live
        self._run_id = ""
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
            said = self._last_log_line(min(self._running, key=self._running.__getitem__))
            self.stream.write(f"  running: {parts}" + (f"  | {said}" if said else ""))

    def _last_log_line(self, step: str, width: int = 70) -> str:
        """The end of the last line a running step wrote to its log (read from the file's tail)."""
        if self.home is None or not self._run_id:
            return ""
        try:
            with self.home.step_log(self._run_id, step).open("rb") as log:
                log.seek(max(0, log.seek(0, 2) - 4096))
                lines = [line for line in log.read().decode("utf-8", "replace").splitlines() if line.strip()]
        except OSError:
            return ""
        last = lines[-1].strip() if lines and not lines[-1].startswith("=== ") else ""
        return last if len(last) <= width else last[: width - 1] + "…"

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            with TERMINAL_LOCK:
                self.stream.write("\r\033[K")
                self._status_line()
                self.stream.flush()

    def run_started(self, record: RunRecord, graph: Any) -> None:
        self._run_id = record.id
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

    def trial_finished(self, name: str, trial: Any, best: Any, total: int) -> None:
        """A search's trial: `train trial 3/12: C=1.2, word_ngram_max=2 -> 0.6412 (cached); best 0.6557 (trial 2)`."""
        values = ", ".join(f"{key}={value}" for key, value in trial.params.items())
        got = f"{trial.value:.4g}" if trial.value is not None else f"failed: {trial.outcome.error}"
        note = " (cached)" if trial.outcome.cache_hit else ""
        leader = f"; best {best.value:.4g} (trial {best.number})" if best is not None else ""
        self._print(f"    {name} trial {trial.number}/{total}: {values} -> {got}{note}{leader}")

    def run_finished(self, record: RunRecord) -> None:
        self._stop.set()
        if self._ticker:
            self._ticker.join()
        with TERMINAL_LOCK:
            if self.live:
                self.stream.write("\r\033[K")
            self.stream.flush()
            self.results.write("\n" + format_summary(record) + "\n")
            self.results.flush()


RESUMABLE = ("processing", "training", "register")  # a failed fail step or gate decision fails again on resume


def memory_text(megabytes: float | None) -> str:
    """A step's peak resident memory as people read it: `870 MB`, `2.31 GB`, `-` when not measured."""
    if not megabytes:
        return "-"
    return f"{megabytes:,.0f} MB" if megabytes < 1000 else f"{megabytes / 1024:.2f} GB"


def format_summary(record: RunRecord, *, all_metrics: bool = False) -> str:
    """A readable table of a run: steps, status, time, cache, then its metrics."""
    took = f" in {record.duration_s:.1f}s" if record.duration_s is not None else ""
    lines = [f"run {record.id}  pipeline {record.pipeline}  {record.status.upper()}{took}"]
    if record.parameters:
        lines.append("parameters: " + ", ".join(f"{k}={v}" for k, v in record.parameters.items()))
    if record.options.get("overrides"):
        lines.append("set: " + ", ".join(f"{k}={v}" for k, v in record.options["overrides"].items()))
    width = max((len(name) for name in record.steps), default=4)
    lines.append(f"  {'step':<{width}}  {'status':<9}  {'time':>7}  {'memory':>8}  why")
    for name, step in record.steps.items():
        duration = f"{step.duration_s:.1f}s" if step.duration_s is not None else "-"
        memory = memory_text(step.peak_memory_mb)
        why = step.reason or ""
        if step.status == "succeeded" and step.cache_key:
            why = f"ran: {why}" if why else "ran"
        lines.append(f"  {name:<{width}}  {step.status:<9}  {duration:>7}  {memory:>8}  {why}")
    cached = [n for n, s in record.steps.items() if s.status == "cached"]
    ran = [n for n, s in record.steps.items() if s.status == "succeeded" and s.cache_key]
    lines.append(f"cached: {', '.join(cached) or 'none'};  ran: {', '.join(ran) or 'none'}")
    for name, step in record.steps.items():
        metrics = step.metrics if all_metrics else {k: v for k, v in step.metrics.items() if k.count(".") <= 1}
        if metrics:
            lines.append(f"metrics of {name}:")
            lines.extend(f"  {key} = {value:.4g}" for key, value in sorted(metrics.items()))
        if step.details.get("search"):
            lines.extend(format_trials(name, step.details["search"]))
        registered = step.details.get("registered")
        if registered:
            lines.append(
                f"registered {registered['name']} version {registered['version']} ({registered['approval_status']})"
            )
        if step.status == "failed" and step.error:
            lines.append(f"error in {name}: {step.error}")
    if record.error and record.status != "failed":
        lines.append(record.error)
    if record.status == "interrupted" or any(
        step.status == "failed" and step.kind in RESUMABLE for step in record.steps.values()
    ):
        lines.append(f"resume with: pravah run --resume {record.id}")
    return "\n".join(lines)


def format_trials(name: str, search: dict[str, Any]) -> list[str]:
    """A search's trials, best first, with the hyperparameters each tried."""
    early = ", stopped early" if search["stopped_early"] else ""
    lines = [f"trials of {name} ({search['strategy']}, {search['goal']} {search['objective']}{early}):"]
    for trial in ranked(search["trials"], search["goal"]):
        got = f"{trial['value']:.4g}" if trial["value"] is not None else trial["status"]
        values = ", ".join(f"{key}={value}" for key, value in trial["params"].items())
        lines.append(
            f"  {'*' if trial['trial'] == search['best_trial'] else ' '} trial {trial['trial']:>3}  {got:>8}  {values}"
        )
    return lines


def format_comparison(a: RunRecord, b: RunRecord) -> str:
    """Two runs side by side: what changed between them (spec, parameters and overrides, each step's data in
    and out, and why a step ran), then every metric both have, with the difference."""

    def changes(old: dict[str, Any], new: dict[str, Any]) -> str:
        keys = sorted(set(old) | set(new))
        changed = [f"{k} {old.get(k, '-')} → {new.get(k, '-')}" for k in keys if old.get(k) != new.get(k)]
        return ", ".join(changed) or "same"

    # a spec's file, apart from the --set overrides of the run (its spec_hash covers both)
    file_a, file_b = (run.spec_file_hash or run.spec_hash for run in (a, b))
    spec = "same" if file_a == file_b else f"changed ({file_a[:12]} → {file_b[:12]})"
    lines = [
        f"A {a.id} ({a.pipeline}, {a.status})   B {b.id} ({b.pipeline}, {b.status})",
        f"spec: {spec}",
        f"parameters: {changes(a.parameters, b.parameters)}",
        f"set: {changes(a.options.get('overrides') or {}, b.options.get('overrides') or {})}",
    ]
    width = max((len(name) for name in {*a.steps, *b.steps}), default=4)
    lines.append(f"  {'step':<{width}}  {'A':<9}  {'B':<9}  what differs")
    for name in dict.fromkeys([*a.steps, *b.steps]):
        first, second = a.steps.get(name), b.steps.get(name)
        if first is None or second is None:
            lines.append(f"  {name:<{width}}  {'only in ' + ('A' if second is None else 'B')}")
            continue
        digests = [{out: found.digest for out, found in step.outputs.items()} for step in (first, second)]
        differs = [
            f"{out} output" for out in sorted({*digests[0], *digests[1]}) if digests[0].get(out) != digests[1].get(out)
        ]
        if first.cache_key != second.cache_key:
            why = f" ({second.reason})" if second.reason else ""
            differs.insert(0, f"inputs, code or values{why}")
        elif first.cache_key is None and first.reason != second.reason:  # a condition: its values and decision
            differs.append(f"B: {second.reason}")
        lines.append(f"  {name:<{width}}  {first.status:<9}  {second.status:<9}  {'; '.join(differs) or 'same'}")
    metrics_a, metrics_b = (
        {f"{n}.{k}": v for n, s in run.steps.items() for k, v in s.metrics.items() if k.count(".") <= 1}
        for run in (a, b)
    )  # the headline ones, as a run's summary
    shared = [k for k in metrics_a if k in metrics_b]
    if shared:
        lines.append("metrics (A → B):")
        lines.extend(
            f"  {k} = {metrics_a[k]:.4g} → {metrics_b[k]:.4g}  ({metrics_b[k] - metrics_a[k]:+.4g})"
            for k in sorted(shared)
        )
    return "\n".join(lines)
