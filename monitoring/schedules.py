"""Schedules: retraining runs of a pipeline and monitoring runs of an endpoint, on a cron expression or every
so often, kept in `<home>/schedules.json` and run by `pravah scheduler` (in the cloud, the same schedules
become EventBridge rules starting the retraining pipeline or the endpoint's monitoring pipeline).

A run that was due while the scheduler was down runs once when it comes back, never once per missed slot.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from foundation.errors import PravahError, did_you_mean
from foundation.home import Home, write_json_atomic

KINDS = ("retrain", "monitor", "backup", "notify")


@dataclass
class Schedule:
    name: str
    kind: str  # retrain: `pravah run TARGET`; monitor: `pravah monitor run TARGET`; backup: `pravah backup create`;
    # notify: `pravah events notify` (TARGET: the notifications file, empty for configs/notifications.yaml)
    target: str  # a pipeline, an endpoint, a backup folder or a notifications file
    cron: str | None = None
    every_seconds: int | None = None
    created_at: str = ""
    last_run: str | None = None
    last_outcome: str | None = None

    def due_after(self, moment: datetime) -> datetime:
        """The first time after `moment` that this schedule fires."""
        if self.cron:
            from croniter import croniter

            return croniter(self.cron, moment).get_next(datetime)
        return moment + timedelta(seconds=self.every_seconds or 0)

    def next_run(self) -> datetime:
        since = datetime.fromisoformat(self.last_run or self.created_at)
        return self.due_after(since)

    def command(self, home: Home) -> list[str]:
        base = [sys.executable, "-m", "cli", "--home", str(home.root)]
        if self.kind == "retrain":
            return [*base, "run", self.target]
        if self.kind == "backup":
            return [*base, "backup", "create", "--to", self.target]
        if self.kind == "notify":
            return [*base, "events", "notify", *(["--config", self.target] if self.target else [])]
        window = f"{self.every_seconds}s" if self.every_seconds else "1h"
        return [*base, "monitor", "run", self.target, "--since", window]

    def describe(self) -> str:
        when = f"cron '{self.cron}'" if self.cron else f"every {self.every_seconds}s"
        return f"{self.name}: {self.kind} {self.target}, {when}"


class ScheduleStore:
    def __init__(self, home: Home):
        self.home = home
        self.path = home.root / "schedules.json"

    def all(self) -> list[Schedule]:
        if not self.path.is_file():
            return []
        return [Schedule(**item) for item in json.loads(self.path.read_text())]

    @contextmanager
    def _locked(self) -> Iterator[list[Schedule]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / ".schedules.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            schedules = self.all()
            yield schedules
            write_json_atomic(self.path, [asdict(s) for s in schedules])

    def add(
        self, kind: str, target: str, cron: str | None, every: str | None, name: str | None, now: datetime | None = None
    ) -> Schedule:
        if kind not in KINDS:
            raise PravahError(f"unknown schedule kind '{kind}'{did_you_mean(kind, KINDS)} (kinds: {', '.join(KINDS)})")
        if (cron is None) == (every is None):
            raise PravahError("give exactly one of --cron EXPRESSION or --every DURATION")
        if cron is not None:
            from croniter import croniter

            if not croniter.is_valid(cron):
                raise PravahError(
                    f"'{cron}' is not a cron expression (minute hour day month weekday, like '0 2 * * *')"
                )
        seconds = None
        if every is not None:
            from monitoring.monitor import parse_duration

            seconds = int(parse_duration(every).total_seconds())
        created = (now or datetime.now(UTC)).isoformat(timespec="seconds")
        schedule = Schedule(name or kind, kind, target, cron, seconds, created)
        with self._locked() as schedules:
            if any(s.name == schedule.name for s in schedules):
                raise PravahError(f"a schedule named '{schedule.name}' exists; remove it or add --name")
            schedules.append(schedule)
        return schedule

    def get(self, name: str) -> Schedule:
        schedules = self.all()
        found = next((s for s in schedules if s.name == name), None)
        if found is None:
            raise PravahError(f"no schedule '{name}'{did_you_mean(name, [s.name for s in schedules])}")
        return found

    def remove(self, name: str) -> None:
        with self._locked() as schedules:
            names = [s.name for s in schedules]
            if name not in names:
                raise PravahError(f"no schedule '{name}'{did_you_mean(name, names)}")
            schedules[:] = [s for s in schedules if s.name != name]

    def record(self, name: str, started: datetime, outcome: str) -> None:
        with self._locked() as schedules:
            for schedule in schedules:
                if schedule.name == name:
                    schedule.last_run, schedule.last_outcome = started.isoformat(timespec="seconds"), outcome


def run_due(home: Home, say: Callable[[str], None], now: datetime | None = None) -> int:
    """Run every schedule that is due, one after another; returns how many ran."""
    ran = 0
    for schedule in ScheduleStore(home).all():
        started = now or datetime.now(UTC)  # read again for each: the runs before it took time
        if schedule.next_run() <= started:
            run_schedule(home, schedule, say, started)
            ran += 1
    return ran


def run_schedule(home: Home, schedule: Schedule, say: Callable[[str], None], started: datetime | None = None) -> str:
    """Run one schedule's command now, its output in a log of its own; record and return the outcome (its next
    run counts from this one)."""
    started = started or datetime.now(UTC)
    log = home.logs / "schedules" / f"{schedule.name}-{started:%Y%m%dT%H%M%S}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    say(f"{started:%H:%M:%S} {schedule.describe()}: running (log {log})")
    with log.open("w") as handle:
        code = subprocess.run(schedule.command(home), stdout=handle, stderr=subprocess.STDOUT).returncode
    from monitoring.monitor import ALERT_EXIT_CODE

    alert = schedule.kind == "monitor" and code == ALERT_EXIT_CODE
    outcome = "succeeded" if code == 0 else "raised an alert" if alert else f"failed (exit {code})"
    ScheduleStore(home).record(schedule.name, started, outcome)
    say(f"{datetime.now(UTC):%H:%M:%S} {schedule.name}: {outcome}")
    return outcome


def serve_forever(home: Home, say: Callable[[str], None], poll_seconds: float = 30.0) -> None:
    say(f"scheduler: {len(ScheduleStore(home).all())} schedules in {home.root / 'schedules.json'}; Ctrl-C stops")
    while True:
        run_due(home, say)
        time.sleep(poll_seconds)
