"""Structured logs in the design doc's format (section 9.2.1): one JSON object per line with timestamp,
level, requestId, userId, function, message and metadata."""

from __future__ import annotations

import atexit
import functools
import json
import logging
import sys
import time
from datetime import UTC, datetime


def utc_millis(moment: datetime | float | None = None) -> str:
    """`2026-02-03T10:30:00.123Z`: the timestamps of log lines, API answers and captured records (of now, a
    datetime or epoch seconds)."""
    if not isinstance(moment, datetime):  # the serving path's case, a few times per request: strftime once a second
        seconds, millis = divmod(int((time.time() if moment is None else moment) * 1000), 1000)
        return f"{_utc_second(seconds)}.{millis:03d}Z"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@functools.lru_cache(maxsize=4)
def _utc_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


class JsonLogFormatter(logging.Formatter):
    def __init__(self, function: str):
        super().__init__()
        self.function = function

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": utc_millis(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname,
            "requestId": getattr(record, "requestId", None),
            "userId": getattr(record, "userId", None),
            "function": self.function,
            "message": record.getMessage(),
            "metadata": getattr(record, "metadata", {}),
        }
        if record.exc_info:
            line["metadata"] = {**line["metadata"], "exception": self.formatException(record.exc_info)}
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(function: str, level: str = "INFO") -> None:
    """JSON lines on stderr for the `pravah` loggers, written by a thread of their own: a request never waits
    for a log write."""
    from logging.handlers import QueueHandler, QueueListener
    from queue import SimpleQueue

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter(function))
    records: SimpleQueue = SimpleQueue()
    listener = QueueListener(records, handler)
    listener.start()
    atexit.register(listener.stop)  # what is queued is written before the process ends
    root = logging.getLogger("pravah")
    root.handlers[:] = [QueueHandler(records)]
    root.setLevel(level)
    root.propagate = False
