"""The public predict API (the design doc's `/api/v1/ml/...`): FastAPI, served by uvicorn locally
(`pravah serve`) and by Lambda behind API Gateway in the cloud.

Every error has the design doc's shape, `{"error": {"code", "message", "details", "timestamp",
"requestId"}}`; every request has an id (taken from `X-Request-ID` or made) that its log lines and its
answer carry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import uuid
from collections import Counter
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from artifact.text import language_code
from foundation.home import Home
from foundation.jsonlog import utc_millis
from inference.auth import ApiError, Authenticator, RateLimiter
from inference.batch import BatchJobs, CallbackRefused, check_callback_url
from inference.config import ServingConfig
from inference.keys import KeyStore
from inference.metrics import prometheus
from inference.service import EndpointService, ModelFailed, NotReady

log = logging.getLogger("pravah.serving")
API = "/api/v1/ml"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# -- the API's bodies (the OpenAPI document is generated from these) ------------------------------------------
class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")
    language: str | None = Field(None, description="ISO 639-1 (hi), ISO 639-3 (hin) or FLORES-200 (hin_Deva)")
    context: str | None = None


class PredictInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(description="The text to classify, in any of the model's languages")
    metadata: Metadata | None = None


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: PredictInput


class Alternative(BaseModel):
    value: str
    confidence: float


class Result(BaseModel):
    prediction: str
    confidence: float
    alternatives: list[Alternative]


class PredictResponse(BaseModel):
    predictionId: str
    result: Result
    processingTime: float = Field(description="Milliseconds")
    modelVersion: str
    timestamp: str


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    inputs: list[PredictInput]
    callbackUrl: str | None = Field(None, description="https URL POSTed the status once, when the batch is done")


class BatchAccepted(BaseModel):
    batchId: str
    status: str
    estimatedCompletionTime: str
    statusUrl: str


class BatchStatus(BaseModel):
    batchId: str
    status: str
    total: int
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


ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 413, 429, 500, 501, 503)}


# -- the app --------------------------------------------------------------------------------------------------
def create_app(home: Home, endpoint: str, config: ServingConfig, service: EndpointService | None = None) -> FastAPI:
    service = service or EndpointService(home, endpoint, config)
    auth = Authenticator(config.auth, KeyStore(home))
    limiter = RateLimiter(config.rate_limit)
    batches = BatchJobs(home, config.batch.allow_loopback_callbacks)
    responses: Counter[int] = Counter()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start(address=app.state.address)
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="Pravah predict API", version="1.0.0", lifespan=lifespan,
                  description=f"Predictions of endpoint `{endpoint}`. Errors: " + "`{error: {code, message, "
                  "details: [{field, message}], timestamp, requestId}}`.")  # fmt: skip
    app.state.address = ""
    app.add_middleware(_Guard, limits=(config.api.max_body_bytes, config.api.max_batch_body_bytes), responses=responses,
                       body_timeout=config.api.body_timeout_seconds)  # fmt: skip
    api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="a key from `pravah keys create NAME`")
    bearer = HTTPBearer(auto_error=False, description="a JWT from the configured issuer")

    async def caller(request: Request, key: str | None = Depends(api_key), _token: Any = Depends(bearer)) -> str:  # noqa: B008
        who = auth.caller(key, request.headers.get("authorization"), request.scope.get("aws.event"))
        limiter.take(who)
        return who

    @app.post(f"{API}/predict", response_model=PredictResponse, responses=ERRORS, tags=["predictions"])
    async def predict(body: PredictRequest, request: Request, who: str = Depends(caller)):
        """Classify one text: the label, its confidence and the next most likely labels."""
        check_values(body.model_dump(exclude_none=True))
        text = _checked_text(body.input, "input", config)
        variant, prediction, milliseconds = await _answer(service.predict(text))
        answer = {
            "predictionId": str(uuid.uuid4()),
            "result": prediction.as_result(),
            "processingTime": round(milliseconds, 3),
            "modelVersion": str(variant.version),
            "timestamp": utc_millis(),
        }  # fmt: skip
        if service.capture:
            service.capture.offer(variant.name, answer["predictionId"], body.model_dump(exclude_none=True), answer)
        log.info("Prediction completed", extra={"requestId": request.state.request_id, "userId": who,
                 "metadata": {"processingTime": answer["processingTime"], "modelVersion": variant.name,
                              "confidence": round(prediction.confidence, 4)}})  # fmt: skip
        return JSONResponse(answer)

    @app.post(f"{API}/batch-predict", status_code=202, response_model=BatchAccepted, responses=ERRORS,
              tags=["predictions"])  # fmt: skip
    async def batch_predict(body: BatchRequest, who: str = Depends(caller)):
        """Accept up to `api.max_batch_items` texts; poll `statusUrl` (or give a `callbackUrl`) for the results."""
        if not config.batch.enabled:
            raise ApiError(501, "NOT_IMPLEMENTED", "batch prediction is not served here (on AWS, large batches run as "
                           "SageMaker Batch Transform jobs)")  # fmt: skip
        check_values(body.model_dump(exclude_none=True))
        if not body.inputs:
            raise ApiError.invalid("inputs", "inputs is empty")
        if len(body.inputs) > config.api.max_batch_items:
            message = f"{len(body.inputs)} inputs; at most {config.api.max_batch_items} per batch"
            raise ApiError.invalid("inputs", message)
        texts = [_checked_text(item, f"inputs.{i}", config) for i, item in enumerate(body.inputs)]
        if body.callbackUrl:
            try:
                check_callback_url(body.callbackUrl, config.batch.allow_loopback_callbacks)
            except CallbackRefused as exc:
                raise ApiError.invalid("callbackUrl", str(exc)) from None
        if not service.ready:
            raise ApiError(503, "SERVICE_UNAVAILABLE", "no model is loaded yet; retry shortly",
                           headers={"Retry-After": "1"})  # fmt: skip
        job = batches.submit(service, who, [{"text": t} for t in texts], body.callbackUrl)
        return JSONResponse({"batchId": job.batchId, "status": job.status, "estimatedCompletionTime":
                             job.estimatedCompletionTime, "statusUrl": f"{API}/batch/{job.batchId}/status"},
                            status_code=202)  # fmt: skip

    def own_batch(batch_id: str, who: str):
        job = batches.get(batch_id)
        if job is None:
            raise ApiError(404, "NOT_FOUND", f"no batch '{batch_id}'")
        if job.caller != who:
            raise ApiError(403, "FORBIDDEN", "this batch belongs to another caller")
        return job

    @app.api_route(
        f"{API}/batch/{{batch_id}}/status",
        methods=["GET", "HEAD"],
        response_model=BatchStatus,
        responses=ERRORS,
        tags=["predictions"],
    )
    async def batch_status(batch_id: str, who: str = Depends(caller)):
        """A batch's progress; `resultsUrl` once it is completed."""
        job = own_batch(batch_id, who)
        shown = job.public()
        shown["resultsUrl"] = f"{API}/batch/{batch_id}/results" if job.status == "completed" else None
        return JSONResponse(shown)

    @app.api_route(f"{API}/batch/{{batch_id}}/results", methods=["GET", "HEAD"], responses=ERRORS, tags=["predictions"])
    async def batch_results(batch_id: str, who: str = Depends(caller)):
        """The predictions of a completed batch, in input order."""
        job = own_batch(batch_id, who)
        if job.status != "completed":
            raise ApiError(404, "NOT_FOUND", f"batch '{batch_id}' has no results ({job.status})")
        return FileResponse(batches.results_path(batch_id), media_type="application/json")

    @app.api_route(f"{API}/model-info", methods=["GET", "HEAD"], responses=ERRORS, tags=["model"])
    async def model_info(_: str = Depends(caller)):
        """The model behind the endpoint: name, version, family, metrics, languages, labels, variants."""
        try:
            return JSONResponse(service.model_info())
        except NotReady as exc:
            raise ApiError(503, "SERVICE_UNAVAILABLE", str(exc), headers={"Retry-After": "1"}) from None

    @app.api_route("/health", methods=["GET", "HEAD"], tags=["operations"])
    async def health():
        """The process is alive."""
        return {"status": "ok"}

    @app.api_route("/ready", methods=["GET", "HEAD"], responses={503: {"model": ErrorResponse}}, tags=["operations"])
    async def ready():
        """A model is loaded and taking traffic."""
        if not service.ready:
            raise ApiError(503, "SERVICE_UNAVAILABLE", "no model is loaded yet", headers={"Retry-After": "1"})
        return {"status": "ready", "variants": service.weights}

    @app.api_route("/metrics", methods=["GET", "HEAD"], response_class=PlainTextResponse, tags=["operations"])
    async def metrics(request: Request, key: str | None = Depends(api_key)):
        """Prometheus text: requests, errors, latency quantiles and traffic weight per variant (behind a key
        when `api.metrics_need_key`)."""
        if config.api.metrics_need_key:
            auth.caller(key, request.headers.get("authorization"), request.scope.get("aws.event"))
        counters = {}
        if service.capture:
            counters = {"capture_written_total": service.capture.written,
                        "capture_dropped_total": service.capture.dropped,
                        "capture_unsampled_total": service.capture.unsampled}  # fmt: skip
        return PlainTextResponse(prometheus(endpoint, service.stats, service.weights, responses, counters),
                                 media_type="text/plain; version=0.0.4")  # fmt: skip

    _install_error_handlers(app)
    return app


async def _answer(prediction):
    try:
        return await prediction
    except NotReady as exc:
        raise ApiError(503, "SERVICE_UNAVAILABLE", str(exc), headers={"Retry-After": "1"}) from None
    except ModelFailed as exc:
        raise ApiError(500, "MODEL_ERROR", str(exc)) from None


def check_values(value: Any, where: str = "") -> None:
    """Refuse, before scoring, what JSON lets through but no model, log or capture file can hold: a string that
    is not valid Unicode (a lone surrogate such as \\ud800) and NaN or Infinity, naming the field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            message = f"not valid Unicode: a lone surrogate (U+{ord(value[exc.start]):04X}) at character {exc.start}"
            raise ApiError.invalid(where or "body", message) from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ApiError.invalid(where or "body", f"{value} is not a number JSON allows")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_values(key, where or "body")
            check_values(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_values(item, f"{where}.{index}")


def _checked_text(item: PredictInput, where: str, config: ServingConfig) -> str:
    text = item.text
    if not text.strip():
        raise ApiError.invalid(f"{where}.text", "the text is empty")
    if len(text) > config.api.max_text_chars:
        raise ApiError.invalid(f"{where}.text", f"{len(text)} characters; at most {config.api.max_text_chars}")
    language = item.metadata.language if item.metadata else None
    if language is not None and language_code(language) is None:
        message = f"unknown language '{language}': use an ISO 639-1 code (hi), ISO 639-3 (hin) or FLORES-200 (hin_Deva)"
        raise ApiError.invalid(f"{where}.metadata.language", message)
    return text


# -- errors ---------------------------------------------------------------------------------------------------
_CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
          405: "METHOD_NOT_ALLOWED", 408: "REQUEST_TIMEOUT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
          429: "RATE_LIMITED",
          500: "INTERNAL_ERROR", 501: "NOT_IMPLEMENTED", 503: "SERVICE_UNAVAILABLE"}  # fmt: skip


def error_body(status: int, code: str, message: str, request_id: str, details: list | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or [], "timestamp": utc_millis(),
                      "requestId": request_id}}  # fmt: skip


def _install_error_handlers(app: FastAPI) -> None:
    def reply(request: Request, status: int, code: str, message: str, details=None, headers=None):
        request_id = getattr(request.state, "request_id", "unknown")
        return _ErrorResponse(error_body(status, code, message, request_id, details), status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return reply(request, exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        details = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"] if part != "body"]
            if error["type"] == "json_invalid":
                details.append({"field": "body", "message": f"not valid JSON: {error.get('ctx', {}).get('error', '')}"})
            else:
                details.append({"field": ".".join(loc) or "body", "message": error["msg"]})
        return reply(request, 400, "VALIDATION_ERROR", "the request is not valid", details)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        code = _CODES.get(exc.status_code, "ERROR")
        return reply(request, exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error", extra={"requestId": getattr(request.state, "request_id", "unknown")})
        return reply(request, 500, "INTERNAL_ERROR", "internal error; quote the requestId when reporting it")


class _ErrorResponse(JSONResponse):
    """An error answer, as ASCII JSON: whatever a message quotes of a bad request, it can be sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


class _Guard:
    """ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs a task per request): request ids, body
    limits, response counting. A body is read whole before the app sees it, within a size limit and a time
    limit however it is sent (Content-Length or chunked): too large is a readable 413 (what is sent is read to
    a bound first, so the client sees the answer instead of a reset connection), too slow a 408."""

    DRAIN_BYTES = 64 * 2**20  # an oversized body is read (and dropped) up to this before its 413 is sent

    def __init__(self, app, limits: tuple[int, int], responses: Counter[int], body_timeout: float):
        self.app, self.limits, self.responses, self.body_timeout = app, limits, responses, body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.fullmatch(given) else f"req-{uuid.uuid4()}"
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
        try:
            async with asyncio.timeout(self.body_timeout):
                while size <= self.DRAIN_BYTES:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    size += len(message.get("body", b""))
                    if size <= limit:
                        chunks.append(message.get("body", b""))
                    if not message.get("more_body"):
                        break
        except TimeoutError:
            message = f"the body did not arrive within {self.body_timeout:g} s"
            return await self._refuse(send_with_id, request_id, 408, message)
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

        await self.app(scope, replay, send_with_id)

    async def _refuse(self, send, request_id: str, status: int, message: str) -> None:
        body = json.dumps(error_body(status, _CODES[status], message, request_id), ensure_ascii=False).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
