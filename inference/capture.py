"""Data capture in SageMaker's format: one JSON line per request and response, under
`<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/`, as a SageMaker endpoint's DataCaptureConfig writes to S3.

The request path encodes its line (the request body as received, the answer as sent: a few microseconds)
and appends it to a bounded buffer; a thread wakes once per flush interval and writes what has gathered
with one write per file. The thread holds the interpreter only to join and write, so it never takes turns
with request handling. When the buffer is full the record is dropped and counted: capture never slows or
blocks a prediction.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from foundation.jsonlog import utc_millis

_UUID4_CLEAR, _UUID4_SET = ~(0xF << 76 | 0x3 << 62), 0x4 << 76 | 0x2 << 62  # version 4, RFC 4122 variant


def new_id() -> str:
    """A prediction's (or request's) id, a version-4 UUID from the process's random generator: an id names an
    exchange and guards nothing, so it need not cost a system call (uuid4 reads os.urandom) on every request."""
    digits = f"{random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def capture_record(event_id: str, request: Any, response: Any, at: datetime) -> dict[str, Any]:
    """One exchange, its request and response given as values (encoded as JSON here)."""
    return _record(event_id, orjson.dumps(request).decode(), orjson.dumps(response).decode(), utc_millis(at))


def capture_line(event_id: str, request: Any, response: Any, at: datetime) -> str:
    """One captured exchange as the line written to a capture file."""
    return orjson.dumps(capture_record(event_id, request, response, at)).decode() + "\n"


def _record(event_id: str, request: str, response: str, inference_time: str) -> dict[str, Any]:
    """One exchange, its request and response bodies given as the JSON text that was sent."""
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": request,
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": response,
                "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": inference_time},
        "eventVersion": "0",
    }


def capture_batch(folder: Path, sampling: float, exchanges: list[tuple[str, Any, Any]], at: datetime) -> int:
    """A batch's scored items, captured as its variant's online predictions are (their share `sampling`), in a
    file of their own under the hour's folder, written whole; how many. `exchanges`: (predictionId, the
    request as sent, the answer)."""
    from foundation.home import write_bytes_atomic

    kept = [e for e in exchanges if sampling >= 1.0 or random.random() < sampling]
    if kept:
        lines = b"".join(
            orjson.dumps(capture_record(pid, request, answer, at)) + b"\n" for pid, request, answer in kept
        )
        write_bytes_atomic(folder / at.strftime("%Y/%m/%d/%H") / f"{at:%M-%S-%f}-batch-{new_id()}.jsonl", lines)
    return len(kept)


class CaptureWriter:
    def __init__(
        self,
        root: Path,
        endpoint: str,
        sampling_percent: float = 100.0,
        buffer_records: int = 10_000,
        flush_seconds: float = 1.0,
    ):
        self.root, self.endpoint = root, endpoint
        self.sampling = sampling_percent / 100.0
        self.flush_seconds = flush_seconds
        self.buffer_records = buffer_records
        self.dropped = 0  # sampled, but the buffer was full
        self.unsampled = 0  # left out by the sampling percentage
        self.written = 0
        self._lines: deque[tuple[str, float, bytes]] = deque()  # (variant, epoch seconds, line): here, then there
        self._files: dict[str, tuple[Path, IO[bytes]]] = {}  # variant -> its open file
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def offer(self, variant: str, event_id: str, request: str, response: str) -> None:
        """Capture one exchange (the request and answer bodies as JSON text), if sampled and if there is room;
        never waits."""
        if self.sampling < 1.0 and random.random() >= self.sampling:
            self.unsampled += 1
            return
        if len(self._lines) >= self.buffer_records:
            self.dropped += 1
            return
        at = time.time()
        self._lines.append((variant, at, orjson.dumps(_record(event_id, request, response, utc_millis(at))) + b"\n"))

    def close(self, timeout: float = 5.0) -> None:
        """Write what is buffered, then stop."""
        self._closing.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._closing.wait(self.flush_seconds):
            self._write_buffered()
        self._write_buffered()
        for _, handle in self._files.values():
            handle.close()
        self._files.clear()

    def _write_buffered(self) -> None:
        by_file: dict[tuple[str, str], list[bytes]] = {}
        first_at: dict[tuple[str, str], datetime] = {}
        for _ in range(len(self._lines)):
            variant, seconds, line = self._lines.popleft()
            at = datetime.fromtimestamp(seconds, UTC)
            hour = at.strftime("%Y/%m/%d/%H")
            by_file.setdefault((variant, hour), []).append(line)
            first_at.setdefault((variant, hour), at)
        for (variant, hour), lines in by_file.items():
            handle = self._file(variant, hour, first_at[variant, hour])
            handle.write(b"".join(lines))
            handle.flush()
            self.written += len(lines)

    def _file(self, variant: str, hour: str, at: datetime) -> IO[bytes]:
        folder = self.root / self.endpoint / variant / hour
        current = self._files.get(variant)
        if current is None or current[0] != folder:  # a new hour: the last hour's file is complete
            if current:
                current[1].close()
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{at.strftime('%M-%S-%f')[:-3]}-{secrets.token_hex(8)}.jsonl"
            current = self._files[variant] = (folder, (folder / name).open("ab"))
        return current[1]
