"""What a long step says as it goes (steps/progress.py): counts with a rate and what is left, work in chunks
that gives the same answer as one call, and a heartbeat for work that counts nothing."""

from __future__ import annotations

import time

import numpy as np

from steps.progress import Meter, heartbeat, in_chunks


def test_a_meter_says_how_far_how_fast_and_how_long_is_left():
    said: list[str] = []
    meter = Meter("rows scored", total=1_000, every=0, say=said.append)
    meter.add(250)
    meter.add(250)
    meter.done()
    assert said[1].startswith("rows scored: 500 of 1,000 (50%), ") and "/s, about " in said[1] and "left" in said[1]
    assert said[-1].startswith("rows scored: 500 in ")


def test_work_in_chunks_is_the_same_as_one_call_and_small_work_says_nothing():
    values = np.arange(10_000, dtype=float)
    said: list[str] = []
    calls: list[slice] = []

    def square(rows: slice):
        calls.append(rows)
        return values[rows] ** 2

    whole = np.concatenate(in_chunks("squared", len(values), square, size=3_000, say=said.append))
    assert np.array_equal(whole, values**2) and len(calls) == 4 and calls[-1] == slice(9_000, 10_000)
    assert said[-1].startswith("squared: 10,000 in "), said
    calls.clear()
    said.clear()
    in_chunks("squared", len(values), square, size=10_000, say=said.append)
    assert calls == [slice(0, 10_000)], "data that fits one chunk is one call, as before"
    assert not said


def test_a_heartbeat_says_it_is_still_working_until_the_work_ends():
    said: list[str] = []
    with heartbeat("fitting", every=0.05, say=said.append):
        time.sleep(0.3)
    count = len(said)
    time.sleep(0.15)
    assert said[0] == "fitting ..." and any(line.startswith("fitting: ") and "so far" in line for line in said)
    assert len(said) == count, "nothing more once the work ended"


def test_spawned_map_keeps_order_and_only_a_few_items_in_flight():
    """Results come in the items' order; the items are drawn lazily (a stream bigger than memory passes through);
    a single item is worked in this process."""
    from steps.parallel import spawned_map

    drawn: list[int] = []

    def items():
        for number in range(-6, 6):
            drawn.append(number)
            yield number

    results = spawned_map(abs, items(), workers=2)
    assert next(results) == 6 and len(drawn) <= 4, "two workers: at most three items ahead of the one taken"
    assert list(results) == [abs(n) for n in range(-5, 6)]
    assert list(spawned_map(abs, iter([-3]))) == [3]
