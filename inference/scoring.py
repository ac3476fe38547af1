"""A variant's model in a process of its own.

Scoring text holds the GIL (feature extraction is Python), so a model in the server's process takes turns
with request handling. In its own process, requests are parsed and answered while the model scores the
previous batch: the two run at once on two cores. The server talks to it over the child's stdin and
stdout with asyncio streams (length-prefixed JSON frames): no threads and no executor between a request
and the model, so a single request pays only a pipe round trip.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from artifact.contract import ArtifactError
from inference.inputs import Columns, InputRefused, Limits

_HEADER = struct.Struct("!I")


class OnlineActivity:
    """How busy online scoring is, shared by the server with its batch processes through a memory-mapped
    file: the online model calls in flight and when that last changed (CLOCK_MONOTONIC, one clock for all
    processes). A batch process starts its next chunk only once online scoring has been quiet for `QUIET`
    seconds: on a machine of few cores, even idle-priority scoring beside an online request more than
    doubles that request's tail latency (measured by benchmarks/serving.py)."""

    QUIET = 0.01
    _LAYOUT = struct.Struct("=qd")  # two aligned 8-byte fields: each is written whole
    _HELD = struct.Struct("=d")  # a third, after them: when a batch process last held a chunk back

    def __init__(self, fd: int | None = None):
        """Without `fd`, a new record (the server's); with one, the record a batch process was handed."""
        size = self._LAYOUT.size + self._HELD.size
        if fd is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server)
            self._file.truncate(size)
            fd = self._file.fileno()
        self.fd, self._map, self._in_flight = fd, mmap.mmap(fd, size), 0

    def change(self, delta: int) -> None:
        self._in_flight += delta
        self._LAYOUT.pack_into(self._map, 0, self._in_flight, time.monotonic())

    def wait_for_quiet(self) -> None:
        while True:
            in_flight, changed = self._LAYOUT.unpack_from(self._map, 0)
            quiet_for = time.monotonic() - changed
            if in_flight <= 0 and quiet_for >= self.QUIET:
                return
            self._HELD.pack_into(self._map, self._LAYOUT.size, time.monotonic())
            time.sleep(self.QUIET if in_flight > 0 else min(max(self.QUIET - quiet_for, 0.001), self.QUIET))

    def last_held(self) -> float:
        """When (CLOCK_MONOTONIC) a batch process last held its next chunk back for online scoring; 0: never.
        Any batch process may write it: each writes the whole field, and any of their times is true."""
        return self._HELD.unpack_from(self._map, self._LAYOUT.size)[0]


class ScoringProcess:
    def __init__(
        self, artifact: str | Path | None, top_k: int, background: bool = False, activity: OnlineActivity | None = None
    ):
        """`artifact` None: no model, for checking batch bodies (the server's intake). `activity`: what an
        online process reports its calls to, and what a `background` (batch) process yields to."""
        self.artifact, self.top_k, self.background = str(artifact or "-"), top_k, background
        self.activity = activity
        self.manifest: dict[str, Any] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._waiting: dict[int, asyncio.Future] = {}
        self._next_id = 0
        self._reader: asyncio.Task | None = None

    async def start(self) -> ScoringProcess:
        """Start the process and load the model; a model that does not load raises ArtifactError here."""
        yields_to = self.activity.fd if self.background and self.activity else None
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "inference.scoring",
            self.artifact,
            str(self.top_k),
            "online" if not self.background else f"background:{yields_to if yields_to is not None else '-'}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**26,
            pass_fds=() if yields_to is None else (yields_to,),
        )
        try:
            hello = await _read_frame(self._process.stdout)
        except (asyncio.IncompleteReadError, ConnectionError):
            hello = {"error": "the scoring process ended while loading the model"}
        if "error" in hello:
            await self.close()
            raise ArtifactError(f"{self.artifact}: {hello['error']}")
        self.manifest = hello["manifest"]
        self._reader = asyncio.create_task(self._read_answers())
        return self

    async def predict(self, items: list[Any]) -> list[dict[str, Any]]:
        """The `result` of each item (a text, or a table row's values by column)."""
        return (await self._ask({"items": items}))["results"]

    async def batch(
        self,
        folder: Path,
        limits: Limits,
        operation: str,
        columns: Columns = None,
        capture: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """`check` a batch's body (its `request.json`, against `columns`: an intake process's work) or `score` it
        into its `results.json` (a batch process's), in the process: a body of megabytes is never parsed on the
        server's event loop. InputRefused when nothing in it can be scored; otherwise {"total", "refused"}."""
        answer = await self._ask(
            {
                "batch": str(folder),
                "limits": asdict(limits),
                "operation": operation,
                "columns": columns,
                "capture": capture,
            }
        )
        if "refused" in answer and isinstance(answer["refused"], list):
            raise InputRefused([(field, message) for field, message in answer["refused"]])
        return answer

    async def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        if self._process is None or self._process.returncode is not None:
            raise RuntimeError("the scoring process is not running")
        self._next_id += 1
        future = asyncio.get_running_loop().create_future()
        self._waiting[self._next_id] = future
        _write_frame(self._process.stdin, {"id": self._next_id, **message})
        if self.activity is None or self.background:
            return await future
        self.activity.change(+1)
        try:
            return await future
        finally:
            self.activity.change(-1)

    async def _read_answers(self) -> None:
        assert self._process is not None
        try:
            while True:
                answer = await _read_frame(self._process.stdout)
                future = self._waiting.pop(answer["id"], None)
                if future is None or future.done():
                    continue
                if "error" in answer:
                    future.set_exception(RuntimeError(answer["error"]))
                else:
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:  # the process died or was closed: no answer will come, and no caller may wait for one
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(RuntimeError("the scoring process ended"))
            self._waiting.clear()

    async def close(self, drain_seconds: float = 10.0) -> None:
        """Stop the process once what was already sent to it is answered (a retired variant finishes its work;
        the requests still unanswered after `drain_seconds` fail, and their callers go to another variant)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_seconds
        while self._waiting and self._process and self._process.returncode is None and loop.time() < deadline:
            await asyncio.sleep(0.01)
        if self._process and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)


def _write_frame(stream: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    body = orjson.dumps(message)
    stream.write(_HEADER.pack(len(body)) + body)


async def _read_frame(stream: asyncio.StreamReader) -> dict[str, Any]:
    (size,) = _HEADER.unpack(await stream.readexactly(_HEADER.size))
    return orjson.loads(await stream.readexactly(size))


def main(artifact: str, top_k: int, mode: str = "online") -> None:
    """The scoring process: load the model, then answer frames on stdin with frames on stdout. A background
    process (batches; `mode` "background:FD", FD its OnlineActivity's file or "-") runs only on CPU that
    online scoring leaves (nice 19), and between chunks waits for online scoring to be quiet. Without a
    model (artifact `-`), the server's intake: it checks batch bodies, at normal priority."""
    from foundation.processes import killed_with_parent
    from inference.batch import BatchScorer, check_batch

    killed_with_parent()
    background, _, fd = mode.partition(":")
    if background == "background":
        _lowest_priority()
    activity = OnlineActivity(int(fd)) if fd not in ("", "-") else None
    requests, answers = os.fdopen(0, "rb"), os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # what libraries print goes to the server's log, never into the answers

    def send(message: dict[str, Any]) -> None:
        body = orjson.dumps(message)
        answers.write(_HEADER.pack(len(body)) + body)
        answers.flush()

    predictor = None
    try:
        if artifact != "-":
            import sklearn

            from artifact.predictor import Predictor

            sklearn.set_config(assume_finite=True, skip_parameter_validation=True)  # inputs are built by Predictor
            predictor = Predictor(Path(artifact))
    except Exception as exc:  # the server reports it as the deployment's failure
        send({"error": f"the model does not load: {exc}"})
        return
    send({"manifest": predictor.manifest if predictor else {}})
    batches = BatchScorer(predictor, top_k, activity.wait_for_quiet if activity else None) if predictor else None
    while header := requests.read(_HEADER.size):
        request = orjson.loads(requests.read(_HEADER.unpack(header)[0]))
        try:
            if "batch" in request:
                folder, limits = Path(request["batch"]), Limits(**request["limits"])
                found = (
                    check_batch(folder, limits, request["columns"])
                    if request["operation"] == "check"
                    else batches.score(folder, limits, request.get("capture"))
                )
            else:
                found = {"results": predictor.results(request["items"], top_k)}
            send({"id": request["id"], **found})
        except Exception as exc:
            send({"id": request["id"], "error": f"{type(exc).__name__}: {exc}"})


def _lowest_priority() -> None:
    """The lowest nice value, not SCHED_IDLE: the kernel counts a core that runs only SCHED_IDLE work as idle
    and wakes every other task onto it, so a batch there was preempted by each poll, log write and kernel
    worker and scored at 0.5-0.65 of the model's own rows/s with the machine otherwise quiet (0.8-0.9 at nice
    19); online scoring keeps its priority through the weight (1.5% of a contended core) and through the wait
    for quiet between chunks (benchmarks/serving.py measures both)."""
    os.nice(19)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "online")
