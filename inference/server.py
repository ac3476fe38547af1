"""The HTTP server of `pravah serve`: uvicorn, with the limits a public API needs that uvicorn leaves out.

uvicorn gives idle keep-alive connections a timeout and caps concurrent connections (`limit_concurrency`), but
waits forever for a request's headers and body: a client that sends them a byte at a time, or opens a
connection and sends nothing, holds it as long as it likes. The protocol here gives each request's headers a
deadline (`api.header_timeout_seconds`, from the connection's start or the request's first byte) and its body
another (`api.body_timeout_seconds`, from the end of the headers), and answers what the server itself refuses
(malformed HTTP, too slow) in the API's error format. Beyond the connection cap,
uvicorn answers its own plain-text 503.
"""

from __future__ import annotations

import json
from asyncio import TimerHandle, Transport
from http import HTTPStatus

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from inference.config import ServingConfig
from inference.guard import error_body


def error_response(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response in the API's error format (before any request has an id), closing the
    connection."""
    body = json.dumps(error_body(status, code, message, "none")).encode()
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % (
        status,
        HTTPStatus(status).phrase.encode(),
        len(body),
    )
    return head + body


class GuardedProtocol(HttpToolsProtocol):
    """Deadlines for a request's headers and for its body, armed only while one is still arriving: a request
    that comes whole in one read (nearly all) costs no timer at all."""

    header_timeout = 10.0  # set per server by build_server()
    body_timeout = 10.0
    _phase: str | None = None  # "headers" or "body" while that part of a request is still arriving
    _deadline: TimerHandle | None = None
    _deadline_phase: str | None = None

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase = "headers"  # a connection that sends nothing is held no longer than slow headers
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = "headers"

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase = "body"

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self.transport.write(error_response(400, "VALIDATION_ERROR", f"not an HTTP request: {msg}"))
        self.transport.close()

    def _watch(self) -> None:
        """After each read: a deadline for the part still arriving (kept if it is the same part), none else."""
        if self._phase == self._deadline_phase:
            return
        self._disarm()
        if self._phase is not None and not self.transport.is_closing():
            seconds = self.header_timeout if self._phase == "headers" else self.body_timeout
            self._deadline = self.loop.call_later(seconds, self._too_slow, self._phase)
            self._deadline_phase = self._phase

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self._deadline_phase = None

    def _too_slow(self, phase: str) -> None:
        self._deadline = self._deadline_phase = None
        if self.transport.is_closing():
            return
        if phase == "body" and self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # answered already (a 413 before the whole body): only the connection goes
            return
        seconds = self.header_timeout if phase == "headers" else self.body_timeout
        message = f"the request's {'headers' if phase == 'headers' else 'body'} did not arrive within {seconds:g} s"
        self.transport.write(error_response(408, "REQUEST_TIMEOUT", message))
        self.transport.close()


def build_server(app, config: ServingConfig, log_level: str = "warning") -> uvicorn.Server:
    """uvicorn serving `app` with the API's connection limits; `.run(sockets=[listener])` serves."""
    protocol = type(
        "Protocol",
        (GuardedProtocol,),
        {"header_timeout": config.api.header_timeout_seconds, "body_timeout": config.api.body_timeout_seconds},
    )
    settings = uvicorn.Config(
        app,
        http=protocol,
        log_level=log_level,
        access_log=False,
        timeout_keep_alive=config.api.keep_alive_seconds,
        limit_concurrency=config.api.max_connections,
    )
    server = uvicorn.Server(settings)
    app.state.server = server  # what a held request looks at to learn that the server is stopping
    return server
