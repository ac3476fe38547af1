"""The predict API's edge: every request gets an id (taken from `X-Request-ID` or made) that its log lines and its
answer carry; bodies are read within their limits; every error has the design doc's shape, `{"error": {"code",
"message", "details", "timestamp", "requestId"}}`."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from foundation.jsonlog import utc_millis
from inference.auth import ApiError
from inference.capture import new_id

log = logging.getLogger("pravah.serving")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    408: "REQUEST_TIMEOUT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "SERVICE_UNAVAILABLE",
}


def error_body(status: int, code: str, message: str, request_id: str, details: list | None = None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or [],
            "timestamp": utc_millis(),
            "requestId": request_id,
        }
    }


def _reply(request: Request, status: int, code: str, message: str, details=None, headers=None) -> Response:
    request_id = getattr(request.state, "request_id", "unknown")
    return _ErrorResponse(error_body(status, code, message, request_id, details), status, headers=headers)


def _api_error(request: Request, exc: ApiError) -> Response:
    return _reply(request, exc.status, exc.code, exc.message, exc.details, exc.headers)


def install_error_handlers(app: FastAPI) -> None:
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


class Guard:
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
