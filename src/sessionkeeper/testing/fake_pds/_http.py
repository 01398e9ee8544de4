"""HTTP plumbing of the fake: parse a request, hand it to the app, write the answer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

from sessionkeeper.testing._server import BadBodyError, LoopbackHandler

logger = logging.getLogger(__name__)

_MAX_BODY = 10 * 1024 * 1024


@dataclass(frozen=True)
class HttpRequest:
    """One parsed request: method, path, query parameters, lowercased headers, body."""

    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, if present."""
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class HttpResponse:
    """An answer to write; ``error`` names the XRPC error it carries, for the counters."""

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def json_response(
    status: int, payload: Any, *, headers: dict[str, str] | None = None, error: str | None = None
) -> HttpResponse:
    """A JSON answer."""
    return HttpResponse(
        status=status,
        body=json.dumps(payload).encode("utf-8"),
        content_type="application/json; charset=utf-8",
        headers=dict(headers or {}),
        error=error,
    )


class Drop:
    """Marker: close the connection without writing any response."""

    def __repr__(self) -> str:
        return "DROP"


DROP: Final = Drop()


class HttpApp(Protocol):
    """What the handler needs from the fake that owns the server."""

    def handle_http(self, request: HttpRequest) -> HttpResponse | Drop:
        """Answer one request, or ``DROP`` it."""


class XrpcHandler(LoopbackHandler):
    """Reads each request fully, asks the owning fake for the answer, writes it."""

    server_version = "sessionkeeper-fake-pds"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection frees its thread after a minute

    def _app(self) -> HttpApp:
        app: HttpApp = self.server.owner  # type: ignore[attr-defined]
        return app

    def handle(self) -> None:
        """Serve the connection's requests; a client that hangs up is not an error."""
        try:
            super().handle()
        except (ConnectionError, TimeoutError) as exc:
            self.close_connection = True
            logger.debug("client connection ended: %s", type(exc).__name__)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._serve()

    def do_POST(self) -> None:
        """Serve a POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Serve a PUT (XRPC answers it with an error)."""
        self._serve()

    def do_DELETE(self) -> None:
        """Serve a DELETE (XRPC answers it with an error)."""
        self._serve()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method, path and status; never the query string (the control
        endpoints take passwords there) nor any header (tokens)."""
        path = urlsplit(getattr(self, "path", "")).path
        logger.debug("%s %s %s -> %s", self.address_string(), self.command, path, code)

    def log_message(self, format: str, *args: Any) -> None:
        """Route the server's other messages (errors) to ``logging``."""
        logger.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        try:
            body = self.read_body(_MAX_BODY)
        except BadBodyError as exc:
            self.close_connection = True
            self._write(
                json_response(400, {"error": "InvalidRequest", "message": str(exc)}),
            )
            return
        split = urlsplit(self.path)
        request = HttpRequest(
            method=self.command,
            path=split.path,
            params=parse_qs(split.query, keep_blank_values=True),
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        answer = self._app().handle_http(request)
        if isinstance(answer, Drop):
            self.close_connection = True
            return
        self._write(answer)

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        if response.content_type is not None:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)
