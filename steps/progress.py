"""What a long step says while it works: a line to its log now and then (the run's status line shows a running
step's last line), with what was done of how much, the rate and an estimate of what is left; for work that
counts nothing (a solver's fit), how long it has been going."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

EVERY_SECONDS = 5.0  # at most one line per interval: a log that reads as a heartbeat, not a flood
CHUNK_ROWS = 50_000  # what a step scores or transforms at once when it reports as it goes


def say_now(line: str) -> None:
    """A line to the step's log now (its stdout is a file, block-buffered unless flushed)."""
    print(line, flush=True)


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


class Meter:
    """Counts `what` (rows scored, rows read) towards `total` and says so at most every `every` seconds, and once
    at the end (`done`)."""

    def __init__(
        self, what: str, total: int | None = None, every: float = EVERY_SECONDS, say: Callable[[str], None] = say_now
    ):
        self.what, self.total, self.every, self.say = what, total, every, say
        self.count = 0
        self.started = self.last = time.monotonic()

    def add(self, count: int) -> None:
        self.count += count
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.say(self.line(now))

    def line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.count / elapsed
        said = f"{self.what}: {self.count:,}"
        if self.total:
            said += f" of {self.total:,} ({100 * self.count / self.total:.0f}%)"
        said += f", {rate:,.0f}/s"
        if self.total and rate > 0 and self.count < self.total:
            said += f", about {_duration((self.total - self.count) / rate)} left"
        return said

    def done(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.say(f"{self.what}: {self.count:,} in {_duration(elapsed)} ({self.count / elapsed:,.0f}/s)")


@contextmanager
def heartbeat(doing: str, every: float = 30.0, say: Callable[[str], None] = say_now) -> Iterator[None]:
    """`doing ...` now, then `doing: 1m30s so far` every `every` seconds until the block ends: for work that
    reports nothing as it goes."""
    say(f"{doing} ...")
    started, stop = time.monotonic(), threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            say(f"{doing}: {_duration(time.monotonic() - started)} so far")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def in_chunks(
    what: str, count: int, work: Callable[[slice], object], size: int = CHUNK_ROWS, say: Callable[[str], None] = say_now
) -> list:
    """`work` on slices of `size` rows over `count` rows, in order, saying how far it is; one call, and nothing
    said, when the rows fit in one slice (the same call as before, so small data gives the same numbers)."""
    if count <= size:
        return [work(slice(0, count))]
    meter, done = Meter(what, count, say=say), []
    for start in range(0, count, size):
        part = slice(start, min(start + size, count))
        done.append(work(part))
        meter.add(part.stop - part.start)
    meter.done()
    return done
