"""The HTTP server of `pravah serve`: uvicorn, with the limits a public API needs that uvicorn leaves out.

uvicorn gives idle keep-alive connections a timeout and caps concurrent connections (`limit_concurrency`), but
waits forever for a request's headers: a client that sends them a byte at a time, or opens a connection and
sends nothing, holds it as long as it likes. The protocol here gives each request's headers a deadline
(`api.header_timeout_seconds`, from the connection's start or the request's first byte), and answers what the
server itself refuses (malformed HTTP, headers too slow) in the API's error format. Beyond the connection cap,
uvicorn answers its own plain-text 503.
"""

from __future__ import annotations

import json
from asyncio import TimerHandle, Transport
from http import HTTPStatus

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from inference.app import error_body
from inference.config import ServingConfig


def error_response(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response in the API's error format (before any request has an id), closing the
    connection."""
    body = json.dumps(error_body(status, code, message, "none")).encode()
    head = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, HTTPStatus(status).phrase.encode(), len(body)))  # fmt: skip
    return head + body


class GuardedProtocol(HttpToolsProtocol):
    header_timeout = 10.0  # set per server by build_server()
    _deadline: TimerHandle | None = None

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self.transport.write(error_response(400, "VALIDATION_ERROR", f"not an HTTP request: {msg}"))
        self.transport.close()

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            message = f"the request's headers did not arrive within {self.header_timeout:g} s"
            self.transport.write(error_response(408, "REQUEST_TIMEOUT", message))
            self.transport.close()


def build_server(app, config: ServingConfig, log_level: str = "warning") -> uvicorn.Server:
    """uvicorn serving `app` with the API's connection limits; `.run(sockets=[listener])` serves."""
    protocol = type("Protocol", (GuardedProtocol,), {"header_timeout": config.api.header_timeout_seconds})
    settings = uvicorn.Config(app, http=protocol, log_level=log_level, access_log=False,
                              timeout_keep_alive=config.api.keep_alive_seconds,
                              limit_concurrency=config.api.max_connections)  # fmt: skip
    return uvicorn.Server(settings)
