"""Work over a stream of chunks on every core: spawned worker processes, results in order, and only a few chunks
in flight, so a stream bigger than memory passes through in bounded memory."""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any


def spawned_map(
    work: Callable[[Any], Any],
    items: Iterable[Any],
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    workers: int | None = None,
    while_waiting: Callable[[], object] | None = None,
) -> Iterator[Any]:
    """`work(item)` for each item, yielded in the items' order, computed by `workers` processes (default: one per
    core). The processes are spawned, not forked (a forked copy of a process whose libraries hold threads, torch's
    or OpenMP's, can hang), so `work` and `initializer` must be importable functions; `initializer(*initargs)`
    runs once in each, to load what every item needs. Items are taken from `items` as results are taken, one more
    than the workers ahead. A single item is worked here, with no process started. `while_waiting` runs here once
    the processes have their first items (what this process would otherwise wait idle for). The processes are left
    to exit while the caller goes on (they are joined when this interpreter exits)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    items = iter(items)
    ahead = list(itertools.islice(items, 2))
    if len(ahead) < 2:  # one item (or none): no process is worth starting for it
        if ahead and initializer is not None:
            initializer(*initargs)
        yield from map(work, ahead)
        return
    items = itertools.chain(ahead, items)
    workers = workers or os.cpu_count() or 1
    spawn = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=spawn, initializer=initializer, initargs=initargs)
    try:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) == workers and while_waiting is not None:
                while_waiting()
                while_waiting = None
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
