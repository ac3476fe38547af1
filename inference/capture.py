"""Data capture in SageMaker's format: one JSON line per request and response, under
`<root>/<endpoint>/<variant>/yyyy/mm/dd/hh/`, as a SageMaker endpoint's DataCaptureConfig writes to S3.

The request path only puts a record into a bounded queue; a thread writes and flushes the files. When the
queue is full the record is dropped and counted: capture never slows or blocks a prediction.
"""

from __future__ import annotations

import json
import queue
import random
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from foundation.jsonlog import utc_millis


def capture_record(event_id: str, request: Any, response: Any, at: datetime) -> dict[str, Any]:
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": "application/json",
                "mode": "INPUT",
                "data": json.dumps(request, ensure_ascii=False),
                "encoding": "JSON",
            },
            "endpointOutput": {
                "observedContentType": "application/json",
                "mode": "OUTPUT",
                "data": json.dumps(response, ensure_ascii=False),
                "encoding": "JSON",
            },
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": utc_millis(at)},
        "eventVersion": "0",
    }


def capture_line(event_id: str, request: Any, response: Any, at: datetime) -> str:
    """One captured exchange as the line written to a capture file."""
    return json.dumps(capture_record(event_id, request, response, at), ensure_ascii=False) + "\n"


class CaptureWriter:
    def __init__(self, root: Path, endpoint: str, sampling_percent: float = 100.0, buffer_records: int = 10_000,
                 flush_seconds: float = 1.0):  # fmt: skip
        self.root, self.endpoint = root, endpoint
        self.sampling = sampling_percent / 100.0
        self.flush_seconds = flush_seconds
        self.dropped = 0  # sampled, but the buffer was full
        self.unsampled = 0  # left out by the sampling percentage
        self.written = 0
        self._queue: queue.Queue = queue.Queue(maxsize=buffer_records)
        self._files: dict[str, tuple[Path, IO[str]]] = {}  # variant -> its open file
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def offer(self, variant: str, event_id: str, request: Any, response: Any) -> None:
        """Capture one exchange, if sampled and if there is room; never waits."""
        if self.sampling < 1.0 and random.random() >= self.sampling:
            self.unsampled += 1
            return
        try:
            self._queue.put_nowait((variant, event_id, request, response, datetime.now(UTC)))
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        last_flush = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=self.flush_seconds)
            except queue.Empty:
                item = ...
            if item is None:
                break
            if item is not ...:
                self._write(*item)
            if time.monotonic() - last_flush >= self.flush_seconds:
                self._flush()
                last_flush = time.monotonic()
        self._flush(close=True)

    def _write(self, variant: str, event_id: str, request: Any, response: Any, at: datetime) -> None:
        folder = self.root / self.endpoint / variant / at.strftime("%Y/%m/%d/%H")
        current = self._files.get(variant)
        if current is None or current[0] != folder:  # a new hour: the last hour's file is complete
            if current:
                current[1].close()
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{at.strftime('%M-%S-%f')[:-3]}-{secrets.token_hex(8)}.jsonl"
            current = self._files[variant] = (folder, (folder / name).open("a", encoding="utf-8"))
        current[1].write(capture_line(event_id, request, response, at))
        self.written += 1

    def _flush(self, close: bool = False) -> None:
        for _, handle in list(self._files.values()):
            handle.flush()
            if close:
                handle.close()
        if close:
            self._files.clear()
