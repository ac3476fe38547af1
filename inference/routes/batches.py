"""Batches: accepted at once, scored in the background, polled (long polling) or called back."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from inference.auth import ApiError
from inference.batch import CallbackRefused
from inference.bodies import ERRORS, BatchAccepted, BatchResults, BatchStatus
from inference.inputs import BatchRequest, InputRefused
from inference.openapi import SECURED, request_body
from inference.routes import API, caller, readable, refusal, serving

router = APIRouter(tags=["predictions"])
WAIT = (
    "Seconds to hold the answer while the batch is processing: it comes as soon as the batch ends (long "
    "polling), so that a client need not ask again and again"
)


@router.post(
    f"{API}/batch-predict",
    status_code=202,
    response_model=BatchAccepted,
    responses=ERRORS,
    openapi_extra=request_body(BatchRequest) | SECURED,
)
async def batch_predict(request: Request):
    """Accept up to `api.max_batch_items` texts; poll `statusUrl` (or give a `callbackUrl`) for the results.
    Items that cannot be scored get an error in the results (the others are scored); a batch of which none
    can be scored is a 400."""
    who = caller(request)
    shared = serving(request)
    if not shared.config.batch.enabled:
        message = "batch prediction is not served here (on AWS, large batches run as SageMaker Batch Transform jobs)"
        raise ApiError(501, "NOT_IMPLEMENTED", message)
    if not shared.service.ready:
        raise ApiError(
            503, "SERVICE_UNAVAILABLE", "no model is loaded yet; retry shortly", headers={"Retry-After": "1"}
        )
    try:
        job = await shared.batches.accept(shared.service, who, await request.body(), shared.limits)
    except InputRefused as exc:
        raise refusal(exc) from None
    except CallbackRefused as exc:
        raise ApiError.invalid("callbackUrl", str(exc)) from None
    accepted = {
        "batchId": job.batchId,
        "status": job.status,
        "refused": job.refused,
        "estimatedCompletionTime": job.estimatedCompletionTime,
        "statusUrl": f"{API}/batch/{job.batchId}/status",
    }
    return JSONResponse(accepted, status_code=202)


@readable(
    router, f"{API}/batch/{{batch_id}}/status", response_model=BatchStatus, responses=ERRORS, openapi_extra=SECURED
)
async def batch_status(batch_id: str, request: Request, wait: float = Query(0, ge=0, le=30, description=WAIT)):
    """A batch's progress; `resultsUrl` once it is completed."""
    job = _own_batch(request, batch_id)
    if job.status == "processing" and wait:
        server = getattr(request.app.state, "server", None)  # uvicorn's, when build_server made it
        await serving(request).batches.wait(batch_id, wait, lambda: bool(server and server.should_exit))
        job = _own_batch(request, batch_id)
    shown = job.public()
    shown["resultsUrl"] = f"{API}/batch/{batch_id}/results" if job.status == "completed" else None
    return JSONResponse(shown)


@readable(
    router,
    f"{API}/batch/{{batch_id}}/results",
    responses={**ERRORS, 200: {"model": BatchResults}},
    openapi_extra=SECURED,
)
async def batch_results(batch_id: str, request: Request):
    """The predictions of a completed batch, in input order."""
    job = _own_batch(request, batch_id)
    if job.status != "completed":
        raise ApiError(404, "NOT_FOUND", f"batch '{batch_id}' has no results ({job.status})")
    return FileResponse(serving(request).batches.results_path(batch_id), media_type="application/json")


def _own_batch(request: Request, batch_id: str):
    """The caller's batch: 404 if there is none, 403 if it is another caller's."""
    who = caller(request)
    job = serving(request).batches.get(batch_id)
    if job is None:
        raise ApiError(404, "NOT_FOUND", f"no batch '{batch_id}'")
    if job.caller != who:
        raise ApiError(403, "FORBIDDEN", "this batch belongs to another caller")
    return job
