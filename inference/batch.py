"""Batch prediction jobs: accepted at once (202), scored in the background, the body, results and status kept
under `<home>/batch/<batchId>/`, and a callback POSTed once when done.

The server only receives a batch's body and writes it to the job's folder; its intake process checks it
(check_batch, at normal priority and without a model, so that a batch is accepted or refused at once however
busy the CPU) and the variant's batch process scores it (BatchScorer, only on CPU that online scoring leaves),
so that megabytes of JSON are never parsed on the server's event loop, where every online request waits.
Items that cannot be scored get an error in the results, and the others are scored."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from artifact.contract import input_columns
from foundation.home import Home, write_bytes_atomic, write_json_atomic
from inference.capture import capture_batch, new_id
from inference.inputs import BatchInputs, Columns, InputRefused, Limits, read_batch

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
    refused: int = 0  # items that could not be scored (each has its error in the results)
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
    SWEEP_SECONDS = 3600  # how often finished batches older than keep_days are looked for

    def __init__(self, home: Home, allow_loopback_callbacks: bool, keep_days: float):
        self.folder = home.root / "batch"
        self.allow_loopback, self.keep_seconds = allow_loopback_callbacks, keep_days * 86_400
        self._tasks: set[asyncio.Task] = set()
        self._ended: dict[str, asyncio.Event] = {}  # by batch id, while it is scored
        self._swept = 0.0

    def resume(self, service, limits: Limits) -> int:
        """Score again the batches a stopped server left unfinished (their bodies are kept): after a crash or a
        restart, an accepted batch still completes. How many."""
        unfinished = [job for job in map(self.get, self._batch_ids()) if job and job.status == "processing"]
        for job in unfinished:
            self._start(service, job, limits)
        return len(unfinished)

    async def accept(self, service, caller: str, raw: bytes, limits: Limits) -> BatchJob:
        """Keep the body, have it checked by a scoring process, then score it in the background. InputRefused
        (or CallbackRefused) leaves nothing behind."""
        batch_id = str(uuid.uuid4())
        folder = self.folder / batch_id
        await asyncio.to_thread(_write_request, folder, raw)
        try:
            counts = await service.check_batch(folder, limits)
            if counts["callbackUrl"]:
                await asyncio.to_thread(check_callback_url, counts["callbackUrl"], self.allow_loopback)
        except BaseException:
            await asyncio.to_thread(shutil.rmtree, folder, True)
            raise
        now = datetime.now(UTC)
        eta = now + timedelta(seconds=1 + counts["total"] / ROWS_PER_SECOND_ESTIMATE)
        job = BatchJob(
            batchId=batch_id,
            caller=caller,
            total=counts["total"],
            refused=counts["refused"],
            status="processing",
            submittedAt=_iso(now),
            estimatedCompletionTime=_iso(eta),
            callbackUrl=counts["callbackUrl"],
        )
        self._save(job)
        self._start(service, job, limits)
        if time.monotonic() - self._swept > self.SWEEP_SECONDS:
            self._swept = time.monotonic()
            self._track(asyncio.to_thread(self.delete_finished_before, time.time() - self.keep_seconds))
        return job

    def _start(self, service, job: BatchJob, limits: Limits) -> None:
        self._ended[job.batchId] = asyncio.Event()
        self._track(self._run(service, job, self.folder / job.batchId, limits))

    async def wait(self, batch_id: str, seconds: float, stopping: Callable[[], bool] = lambda: False) -> None:
        """Until the batch being scored ends (completed or failed), at most `seconds`: a status request may be
        answered when there is news, so that a client need not ask again and again (long polling). Looks at
        `stopping` twice a second: a server told to stop answers what it holds instead of waiting it out."""
        ended, deadline = self._ended.get(batch_id), time.monotonic() + seconds
        while ended is not None and not stopping() and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), min(left, 0.5))
                return

    def _track(self, work) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _batch_ids(self) -> list[str]:
        return sorted(path.name for path in self.folder.iterdir()) if self.folder.is_dir() else []

    def delete_finished_before(self, cutoff: float) -> None:
        for batch_id in self._batch_ids():
            job, folder = self.get(batch_id), self.folder / batch_id
            if job and job.status == "processing":
                continue
            if max((path.stat().st_mtime for path in folder.iterdir()), default=folder.stat().st_mtime) < cutoff:
                shutil.rmtree(folder, ignore_errors=True)

    def get(self, batch_id: str) -> BatchJob | None:
        path = self.folder / _safe(batch_id) / "status.json"
        return BatchJob(**json.loads(path.read_text())) if path.is_file() else None

    def results_path(self, batch_id: str) -> Path:
        return self.folder / _safe(batch_id) / "results.json"

    async def _run(self, service, job: BatchJob, folder: Path, limits: Limits) -> None:
        started = time.perf_counter()
        try:
            variant = await service.score_batch(folder, limits)
            job.status, job.modelVersion = "completed", str(variant.version)
        except Exception as exc:  # the job fails, the server does not
            job.status, job.error = "failed", str(exc) or type(exc).__name__
        job.completedAt = _iso(datetime.now(UTC))
        self._save(job)
        self._ended.pop(job.batchId).set()
        log.info("batch %s %s: %d rows in %.2fs", job.batchId, job.status, job.total, time.perf_counter() - started)
        if job.callbackUrl:
            job.callbackStatus = await self._call_back(job)
            self._save(job)

    async def _call_back(self, job: BatchJob) -> str:
        import httpx

        try:
            await asyncio.to_thread(check_callback_url, job.callbackUrl or "", self.allow_loopback)
            async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
                response = await client.post(job.callbackUrl or "", json=job.public())
            return f"HTTP {response.status_code}"
        except (CallbackRefused, httpx.HTTPError) as exc:
            log.warning("batch %s callback failed: %s", job.batchId, exc)
            return f"failed: {exc}"

    def _save(self, job: BatchJob) -> None:
        write_json_atomic(self.folder / job.batchId / "status.json", asdict(job))


def check_batch(folder: Path, limits: Limits, columns: Columns) -> dict[str, Any]:
    """A batch body's item counts (or {"refused": details} when nothing in it can be scored), read in the
    server's intake process: at normal priority, without a model, never on the event loop."""
    try:
        inputs = read_batch((folder / "request.json").read_bytes(), limits, columns)
    except InputRefused as exc:
        return {"refused": exc.details}
    return _counts(inputs)


class BatchScorer:
    """A batch's part in its variant's batch process (at the lowest CPU priority): read the
    body the server kept, score what can be scored in chunks, and write the results in input order (an error
    for each refused item). Before each chunk, `before_chunk` (the wait for online scoring to be quiet)."""

    CHUNK_ROWS = 256  # rows per model call (bounds the process's memory) ...
    CHUNK_CHARACTERS = 16_000  # ... and text characters (bounds how long online scoring may have to share)

    def __init__(self, predictor, top_k: int, before_chunk: Callable[[], None] | None = None):
        self.predictor, self.top_k = predictor, top_k
        self.columns = input_columns(predictor.manifest)
        self.before_chunk = before_chunk or (lambda: None)

    def score(self, folder: Path, limits: Limits, capture: dict[str, Any] | None = None) -> dict[str, Any]:
        """Each scored item gets a predictionId (what labels name later); with `capture` ({"folder", "sampling"}:
        its variant's), the scored items are captured as online predictions are."""
        try:
            inputs = read_batch((folder / "request.json").read_bytes(), limits, self.columns)
        except InputRefused as exc:  # checked at intake; here only if the model reads other columns
            return {"refused": exc.details}
        scored = [(index, text) for index, text in enumerate(inputs.texts) if text is not None]
        results: list[dict[str, Any]] = [{}] * len(inputs.texts)
        for chunk in self._chunks(scored):
            self.before_chunk()
            found = self.predictor.results([text for _, text in chunk], self.top_k)
            for (index, _), result in zip(chunk, found, strict=True):
                results[index] = {"index": index, "predictionId": new_id(), **result}
        if capture:
            exchanges = [
                (
                    results[i]["predictionId"],
                    {"input": inputs.sent[i]},
                    {"predictionId": results[i]["predictionId"], "result": _result(results[i])},
                )
                for i, _ in scored
            ]
            capture_batch(Path(capture["folder"]), capture["sampling"], exchanges, datetime.now(UTC))
        for index, (field, message) in inputs.refused.items():
            results[index] = {"index": index, "error": {"code": "VALIDATION_ERROR", "field": field, "message": message}}
        write_bytes_atomic(folder / "results.json", orjson.dumps({"batchId": folder.name, "results": results}))
        return _counts(inputs)

    def _chunks(self, scored: list[tuple[int, Any]]) -> Iterator[list[tuple[int, Any]]]:
        chunk: list[tuple[int, Any]] = []
        characters = 0
        for item in scored:
            chunk.append(item)
            characters += len(item[1]) if isinstance(item[1], str) else 0
            if len(chunk) == self.CHUNK_ROWS or characters >= self.CHUNK_CHARACTERS:
                yield chunk
                chunk, characters = [], 0
        if chunk:
            yield chunk


def _result(item: dict[str, Any]) -> dict[str, Any]:
    """A batch result as the predict API's `result` (without its place in the batch and its id)."""
    return {key: value for key, value in item.items() if key not in ("index", "predictionId")}


def _counts(inputs: BatchInputs) -> dict[str, Any]:
    """What the server learns of a batch it checked or scored."""
    return {"total": len(inputs.texts), "refused": len(inputs.refused), "callbackUrl": inputs.callback_url}


def _write_request(folder: Path, raw: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "request.json").write_bytes(raw)


def _safe(batch_id: str) -> str:
    """A batch id as a folder name; anything that is not a UUID matches no folder."""
    try:
        return str(uuid.UUID(batch_id))
    except ValueError:
        return "not-a-batch"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
