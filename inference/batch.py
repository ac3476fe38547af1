"""Batch prediction jobs: accepted at once (202), scored in the background, results and status kept under
`<home>/batch/<batchId>/`, and a callback POSTed once when done."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from foundation.home import Home, write_json_atomic

log = logging.getLogger("pravah.serving")
ROWS_PER_SECOND_ESTIMATE = 2_000  # for estimatedCompletionTime; measured batch speed of the default model


class CallbackRefused(ValueError):
    """A callback URL that the server will not call."""


def check_callback_url(url: str, allow_loopback: bool) -> None:
    """https to a public address only (plain http to loopback when allowed, for tests and local tools).

    Every address the host resolves to is checked, here and again just before the call, so that a name
    that later resolves to a private address (DNS rebinding) is refused too."""
    parsed = urlparse(url)
    if parsed.scheme not in {"https", "http"} or not parsed.hostname:
        raise CallbackRefused("callbackUrl must be an absolute https URL")
    try:
        infos = socket.getaddrinfo(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
    except (socket.gaierror, UnicodeError):
        raise CallbackRefused(f"callbackUrl host '{parsed.hostname}' does not resolve") from None
    addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    if allow_loopback and all(a.is_loopback for a in addresses):
        return
    if parsed.scheme != "https":
        raise CallbackRefused("callbackUrl must use https")
    blocked = [a for a in addresses if not a.is_global or a.is_multicast]
    if blocked:
        raise CallbackRefused(f"callbackUrl resolves to a non-public address ({blocked[0]}); refused")


@dataclass
class BatchJob:
    batchId: str
    caller: str
    total: int
    status: str  # processing, completed, failed
    submittedAt: str
    estimatedCompletionTime: str
    completedAt: str | None = None
    modelVersion: str | None = None
    error: str | None = None
    callbackUrl: str | None = None
    callbackStatus: str | None = None

    def public(self) -> dict[str, Any]:
        shown = asdict(self)
        shown.pop("caller")
        return shown


class BatchJobs:
    def __init__(self, home: Home, allow_loopback_callbacks: bool):
        self.folder = home.root / "batch"
        self.allow_loopback = allow_loopback_callbacks
        self._tasks: set[asyncio.Task] = set()

    def submit(self, service, caller: str, inputs: list[dict[str, Any]], callback_url: str | None) -> BatchJob:
        now = datetime.now(UTC)
        eta = now + timedelta(seconds=1 + len(inputs) / ROWS_PER_SECOND_ESTIMATE)
        job = BatchJob(batchId=str(uuid.uuid4()), caller=caller, total=len(inputs), status="processing",
                       submittedAt=_iso(now), estimatedCompletionTime=_iso(eta), callbackUrl=callback_url)  # fmt: skip
        self._save(job)
        task = asyncio.create_task(self._run(service, job, inputs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, batch_id: str) -> BatchJob | None:
        path = self.folder / _safe(batch_id) / "status.json"
        return BatchJob(**json.loads(path.read_text())) if path.is_file() else None

    def results_path(self, batch_id: str) -> Path:
        return self.folder / _safe(batch_id) / "results.json"

    async def _run(self, service, job: BatchJob, inputs: list[dict[str, Any]]) -> None:
        started = time.perf_counter()
        try:
            variant, predictions = await service.predict_many([item["text"] for item in inputs])
            results = [{"index": i, **p.as_result()} for i, p in enumerate(predictions)]
            write_json_atomic(self.results_path(job.batchId), {"batchId": job.batchId, "results": results})
            job.status, job.modelVersion = "completed", str(variant.version)
        except Exception as exc:  # the job fails, the server does not
            job.status, job.error = "failed", str(exc) or type(exc).__name__
        job.completedAt = _iso(datetime.now(UTC))
        self._save(job)
        log.info("batch %s %s: %d rows in %.2fs", job.batchId, job.status, job.total, time.perf_counter() - started)
        if job.callbackUrl:
            job.callbackStatus = await self._call_back(job)
            self._save(job)

    async def _call_back(self, job: BatchJob) -> str:
        import httpx

        try:
            check_callback_url(job.callbackUrl or "", self.allow_loopback)
            async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
                response = await client.post(job.callbackUrl or "", json=job.public())
            return f"HTTP {response.status_code}"
        except (CallbackRefused, httpx.HTTPError) as exc:
            log.warning("batch %s callback failed: %s", job.batchId, exc)
            return f"failed: {exc}"

    def _save(self, job: BatchJob) -> None:
        write_json_atomic(self.folder / job.batchId / "status.json", asdict(job))


def _safe(batch_id: str) -> str:
    """A batch id as a folder name; anything that is not a UUID matches no folder."""
    try:
        return str(uuid.UUID(batch_id))
    except ValueError:
        return "not-a-batch"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
