"""The public predict API (the design doc's `/api/v1/ml/...`): FastAPI, served by uvicorn locally
(`pravah serve`) and by Lambda behind API Gateway in the cloud.

Every error has the design doc's shape, `{"error": {"code", "message", "details", "timestamp",
"requestId"}}`; every request has an id (taken from `X-Request-ID` or made) that its log lines and its
answer carry.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from foundation.home import Home
from foundation.jsonlog import utc_millis
from inference.auth import ApiError, Authenticator, RateLimiter
from inference.batch import BatchJobs, CallbackRefused
from inference.capture import new_id
from inference.config import ServingConfig
from inference.inputs import BatchRequest, InputRefused, Limits, PredictRequest, read_predict
from inference.keys import KeyStore
from inference.metrics import prometheus
from inference.openapi import SECURED, document, request_body, serve_docs
from inference.service import EndpointService, ModelFailed, NotReady, answer_body

log = logging.getLogger("pravah.serving")
API = "/api/v1/ml"
NO_OPENTELEMETRY = {"tracing": False, "metrics": False, "logs": False}  # /metrics and JSON logs are the API's own
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# -- the API's bodies (the OpenAPI document is generated from these) ------------------------------------------
class Alternative(BaseModel):
    value: str
    confidence: float


class Result(BaseModel):
    prediction: str | float = Field(description="The label (a classification) or the value (a regression)")
    confidence: float | None = Field(description="The label's probability; null for a regression")
    alternatives: list[Alternative]


class PredictResponse(BaseModel):
    predictionId: str
    result: Result
    processingTime: float = Field(description="Milliseconds")
    modelVersion: str
    timestamp: str


class BatchAccepted(BaseModel):
    batchId: str
    status: str
    refused: int = Field(description="Items that cannot be scored: each has its error in the results")
    estimatedCompletionTime: str
    statusUrl: str


class BatchItemResult(BaseModel):
    index: int = Field(description="The item's place in the batch's inputs")
    predictionId: str | None = Field(None, description="What labels name later (pravah monitor labels add)")
    prediction: str | float | None = None
    confidence: float | None = None
    alternatives: list[Alternative] | None = None
    error: dict[str, str] | None = Field(None, description="Why this item was not scored: code, field, message")


class BatchResults(BaseModel):
    batchId: str
    results: list[BatchItemResult] = Field(description="One per input, in input order")


class BatchStatus(BaseModel):
    batchId: str
    status: str
    total: int
    refused: int
    submittedAt: str
    estimatedCompletionTime: str
    completedAt: str | None = None
    modelVersion: str | None = None
    error: str | None = None
    callbackUrl: str | None = None
    callbackStatus: str | None = None
    resultsUrl: str | None = None


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]
    timestamp: str
    requestId: str


class ErrorResponse(BaseModel):
    error: ErrorBody


WAIT = (
    "Seconds to hold the answer while the batch is processing: it comes as soon as the batch ends (long "
    "polling), so that a client need not ask again and again"
)
ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 413, 429, 500, 501, 503)}


# -- the app --------------------------------------------------------------------------------------------------
def create_app(home: Home, endpoint: str, config: ServingConfig, service: EndpointService | None = None) -> FastAPI:
    service = service or EndpointService(home, endpoint, config)
    auth = Authenticator(config.auth, KeyStore(home))
    limiter = RateLimiter(config.rate_limit)
    batches = BatchJobs(home, config.batch.allow_loopback_callbacks, config.batch.keep_days)
    limits = Limits(config.api.max_text_chars, config.api.max_batch_items)
    responses: Counter[int] = Counter()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start(address=app.state.address)
        if batches.resume(service, limits):
            log.info("scoring again the batches a stopped server left unfinished")
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="Pravah predict API", version="1.0.0", lifespan=lifespan, telemetry=NO_OPENTELEMETRY,
                  docs_url=None, redoc_url=None,  # served from installed assets by serve_docs
                  description=f"Predictions of endpoint `{endpoint}`. Errors: " + "`{error: {code, message, "
                  "details: [{field, message}], timestamp, requestId}}`.")  # fmt: skip
    app.state.address = ""

    def caller(request: Request) -> str:
        """Who calls (ApiError 401 when no key or token holds), within their rate limit. A plain call in each
        route rather than a FastAPI dependency, which costs a resolution per request; the OpenAPI document
        shows the schemes all the same (inference/openapi.py)."""
        key = token = None
        for name, value in request.scope["headers"]:  # one pass over the raw headers (names come lower-cased)
            if name == b"x-api-key" and key is None:
                key = value.decode("latin-1")
            elif name == b"authorization" and token is None:
                token = value.decode("latin-1")
        who = auth.caller(key, token, request.scope.get("aws.event"))
        limiter.take(who)
        return who

    @app.post(f"{API}/predict", response_model=PredictResponse, responses=ERRORS, tags=["predictions"],
              openapi_extra=request_body(PredictRequest) | SECURED)  # fmt: skip
    async def predict(request: Request):
        """Classify one text: the label, its confidence and the next most likely labels."""  # see _Guard.direct
        who = caller(request)
        try:
            item, sent = read_predict(await request.body(), limits, service.input_columns())
        except InputRefused as exc:
            raise _refusal(exc) from None
        variant, result, milliseconds = await _answer(service.predict(item))
        answer = answer_body(new_id(), result, milliseconds, variant.version)
        content = orjson.dumps(answer)
        if service.capture:
            service.capture.offer(variant.name, answer["predictionId"], sent, content.decode())
        if service.shadow:  # scored once this task yields: after the answer is on its way
            service.copy_to_shadow(item, sent, answer)
        if log.isEnabledFor(logging.INFO):
            log.info("Prediction completed", extra={"requestId": request.state.request_id, "userId": who,
                     "metadata": {"processingTime": answer["processingTime"], "modelVersion": variant.name,
                                  "confidence": result["confidence"]}})  # fmt: skip
        return Response(content, media_type="application/json")

    @app.post(f"{API}/batch-predict", status_code=202, response_model=BatchAccepted, responses=ERRORS,
              tags=["predictions"], openapi_extra=request_body(BatchRequest) | SECURED)  # fmt: skip
    async def batch_predict(request: Request):
        """Accept up to `api.max_batch_items` texts; poll `statusUrl` (or give a `callbackUrl`) for the results.
        Items that cannot be scored get an error in the results (the others are scored); a batch of which none
        can be scored is a 400."""
        who = caller(request)
        if not config.batch.enabled:
            raise ApiError(501, "NOT_IMPLEMENTED", "batch prediction is not served here (on AWS, large batches run as "
                           "SageMaker Batch Transform jobs)")  # fmt: skip
        if not service.ready:
            raise ApiError(503, "SERVICE_UNAVAILABLE", "no model is loaded yet; retry shortly",
                           headers={"Retry-After": "1"})  # fmt: skip
        try:
            job = await batches.accept(service, who, await request.body(), limits)
        except InputRefused as exc:
            raise _refusal(exc) from None
        except CallbackRefused as exc:
            raise ApiError.invalid("callbackUrl", str(exc)) from None
        return JSONResponse({"batchId": job.batchId, "status": job.status, "refused": job.refused,
                             "estimatedCompletionTime": job.estimatedCompletionTime,
                             "statusUrl": f"{API}/batch/{job.batchId}/status"}, status_code=202)  # fmt: skip

    def readable(path: str, **options):
        """A GET route that answers HEAD too (HEAD left out of the OpenAPI document, where it would repeat GET's
        operation)."""

        def register(function):
            app.head(path, **(options | {"include_in_schema": False}))(function)
            return app.get(path, **options)(function)

        return register

    def own_batch(batch_id: str, who: str):
        job = batches.get(batch_id)
        if job is None:
            raise ApiError(404, "NOT_FOUND", f"no batch '{batch_id}'")
        if job.caller != who:
            raise ApiError(403, "FORBIDDEN", "this batch belongs to another caller")
        return job

    @readable(f"{API}/batch/{{batch_id}}/status", response_model=BatchStatus, responses=ERRORS, tags=["predictions"],
              openapi_extra=SECURED)  # fmt: skip
    async def batch_status(batch_id: str, request: Request, wait: float = Query(0, ge=0, le=30, description=WAIT)):
        """A batch's progress; `resultsUrl` once it is completed."""
        job = own_batch(batch_id, caller(request))
        if job.status == "processing" and wait:
            server = getattr(request.app.state, "server", None)  # uvicorn's, when build_server made it
            await batches.wait(batch_id, wait, lambda: bool(server and server.should_exit))
            job = own_batch(batch_id, caller(request))
        shown = job.public()
        shown["resultsUrl"] = f"{API}/batch/{batch_id}/results" if job.status == "completed" else None
        return JSONResponse(shown)

    @readable(f"{API}/batch/{{batch_id}}/results", responses={**ERRORS, 200: {"model": BatchResults}},
              tags=["predictions"], openapi_extra=SECURED)  # fmt: skip
    async def batch_results(batch_id: str, request: Request):
        """The predictions of a completed batch, in input order."""
        job = own_batch(batch_id, caller(request))
        if job.status != "completed":
            raise ApiError(404, "NOT_FOUND", f"batch '{batch_id}' has no results ({job.status})")
        return FileResponse(batches.results_path(batch_id), media_type="application/json")

    @readable(f"{API}/model-info", responses=ERRORS, tags=["model"], openapi_extra=SECURED)
    async def model_info(request: Request):
        """The model behind the endpoint: name, version, family, metrics, languages, labels, variants."""
        caller(request)
        try:
            return JSONResponse(service.model_info())
        except NotReady as exc:
            raise ApiError(503, "SERVICE_UNAVAILABLE", str(exc), headers={"Retry-After": "1"}) from None

    @readable("/health", tags=["operations"])
    async def health():
        """The process is alive."""
        return {"status": "ok"}

    @readable("/ready", responses={503: {"model": ErrorResponse}}, tags=["operations"])
    async def ready():
        """A model is loaded and taking traffic."""
        if not service.ready:
            raise ApiError(503, "SERVICE_UNAVAILABLE", "no model is loaded yet", headers={"Retry-After": "1"})
        return {"status": "ready", "variants": service.weights}

    @readable("/metrics", response_class=PlainTextResponse, tags=["operations"],
              openapi_extra=SECURED if config.api.metrics_need_key else None)  # fmt: skip
    async def metrics(request: Request):
        """Prometheus text: requests, errors, latency quantiles and traffic weight per variant (behind a key
        when `api.metrics_need_key`)."""
        if config.api.metrics_need_key:
            caller(request)
        counters = {}
        if service.capture:
            counters = {"capture_written_total": service.capture.written,
                        "capture_dropped_total": service.capture.dropped,
                        "capture_unsampled_total": service.capture.unsampled}  # fmt: skip
        shadow = service.shadow_stats if service.shadow else None  # an ended shadow's figures: endpoints show
        text = prometheus(endpoint, service.stats, service.weights, responses, counters, shadow)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    _install_error_handlers(app)
    app.add_middleware(_Guard, limits=(config.api.max_body_bytes, config.api.max_batch_body_bytes), responses=responses,
                       direct={("POST", f"{API}/predict"): predict})  # fmt: skip
    document(app, [PredictRequest, BatchRequest], service.input_columns)
    serve_docs(app, readable)
    return app


async def _answer(prediction):
    try:
        return await prediction
    except NotReady as exc:
        raise ApiError(503, "SERVICE_UNAVAILABLE", str(exc), headers={"Retry-After": "1"}) from None
    except ModelFailed as exc:
        raise ApiError(500, "MODEL_ERROR", str(exc)) from None


def _refusal(refused: InputRefused) -> ApiError:
    details = [{"field": field, "message": message} for field, message in refused.details[:100]]
    message = details[0]["message"] if len(details) == 1 else f"{len(refused.details)} fields cannot be taken"
    return ApiError(400, "VALIDATION_ERROR", message, details)


# -- errors ---------------------------------------------------------------------------------------------------
_CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
          405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
          429: "RATE_LIMITED",
          500: "INTERNAL_ERROR", 501: "NOT_IMPLEMENTED", 503: "SERVICE_UNAVAILABLE"}  # fmt: skip


def error_body(status: int, code: str, message: str, request_id: str, details: list | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or [], "timestamp": utc_millis(),
                      "requestId": request_id}}  # fmt: skip


def _reply(request: Request, status: int, code: str, message: str, details=None, headers=None) -> Response:
    request_id = getattr(request.state, "request_id", "unknown")
    return _ErrorResponse(error_body(status, code, message, request_id, details), status, headers=headers)


def _api_error(request: Request, exc: ApiError) -> Response:
    return _reply(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return _api_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        details = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"] if part != "body"]
            if error["type"] == "json_invalid":
                details.append({"field": "body", "message": f"not valid JSON: {error.get('ctx', {}).get('error', '')}"})
            else:
                details.append({"field": ".".join(loc) or "body", "message": error["msg"]})
        return _reply(request, 400, "VALIDATION_ERROR", "the request is not valid", details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = _CODES.get(exc.status_code, "ERROR")
        return _reply(request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error", extra={"requestId": getattr(request.state, "request_id", "unknown")})
        return _reply(request, 500, "INTERNAL_ERROR", "internal error; quote the requestId when reporting it")


class _ErrorResponse(JSONResponse):
    """An error answer, as ASCII JSON: whatever a message quotes of a bad request, it can be sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class _Guard:
    """ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs a task per request): request ids, body
    limits, response counting. A body is read whole before the app sees it, within a size limit however it is
    sent (Content-Length or chunked): too large is a readable 413 (what is sent is read to a bound first, so the
    client sees the answer instead of a reset connection). A body too slow gets its 408 from the server's
    protocol (inference/server.py).

    `direct` routes (method and path to handler) are called from here rather than through FastAPI's routing
    and dependency solving, about 50 us of one core per request, a tenth of a predict's: FastAPI still
    documents them, and their ApiErrors get the same answers."""

    DRAIN_BYTES = 64 * 2**20  # an oversized body is read (and dropped) up to this before its 413 is sent

    def __init__(self, app, limits: tuple[int, int], responses: Counter[int], direct: dict[tuple[str, str], Any]):
        self.app, self.limits, self.responses, self.direct = app, limits, responses, direct

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else f"req-{new_id()}"
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                self.responses[message["status"]] += 1
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        length = headers.get(b"content-length", b"0")
        limit = self.limits[1] if scope["path"].endswith("/batch-predict") else self.limits[0]
        too_large = f"the body is larger than {limit} bytes"
        if not length.isdigit():
            return await self._refuse(send_with_id, request_id, 400, "the Content-Length header is not a number")
        kind = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if scope["method"] in {"POST", "PUT", "PATCH"} and kind != b"application/json":
            message = f"the body must be JSON, sent with Content-Type: application/json (not {kind.decode('latin-1')})"
            return await self._refuse(send_with_id, request_id, 415, message)
        if int(length) > self.DRAIN_BYTES:  # not worth reading: answered at once, and the connection closed
            return await self._refuse(send_with_id, request_id, 413, too_large)
        chunks, size = [], 0
        while size <= self.DRAIN_BYTES:  # a body too slow to arrive is the server's protocol's (inference/server.py)
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if size <= limit:
                chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if size > limit:
            return await self._refuse(send_with_id, request_id, 413, too_large)
        body = b"".join(chunks)
        delivered = False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()  # the client's disconnect, when it comes
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        root, path = scope.get("root_path", ""), scope["path"]
        handler = self.direct.get((scope["method"], path[len(root) :] if root and path.startswith(root) else path))
        if handler is None:
            return await self.app(scope, replay, send_with_id)
        request = Request(scope, replay)
        try:
            response = await handler(request)
        except ApiError as exc:
            response = _api_error(request, exc)
        await response(scope, replay, send_with_id)

    async def _refuse(self, send, request_id: str, status: int, message: str) -> None:
        body = json.dumps(error_body(status, _CODES[status], message, request_id), ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
