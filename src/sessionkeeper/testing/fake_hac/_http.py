"""HTTP plumbing of the fake HAC: parse a request, hand it to the fake, write the answer."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from sessionkeeper.testing._server import BadBodyError, LoopbackHandler
from sessionkeeper.testing.fake_hac._sessions import HacSession

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 * 1024
CONTROL_PREFIX = "/__fake__/"


@dataclass
class HacResponse:
    """A response before it is written to the socket."""

    status: int
    body: bytes = b""
    content_type: str = "text/html;charset=UTF-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def html(cls, text: str, status: int = 200) -> HacResponse:
        """An HTML answer."""
        return cls(status, text.encode("utf-8"))

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> HacResponse:
        """A JSON answer."""
        return cls(status, json.dumps(payload).encode("utf-8"), "application/json;charset=UTF-8")

    @classmethod
    def redirect(cls, location: str) -> HacResponse:
        """A 302 to ``location``."""
        return cls(302, b"", headers=[("Location", location)])


@dataclass
class HacRequest:
    """One parsed request as the fake's routes see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    cookies: dict[str, list[str]]
    body: bytes
    session: HacSession | None = None
    new_cookies: list[str] = field(default_factory=list)

    @property
    def is_xhr(self) -> bool:
        """True for AJAX requests (``X-Requested-With: XMLHttpRequest``)."""
        return self.headers.get("x-requested-with", "").lower() == "xmlhttprequest"

    def form(self) -> dict[str, str]:
        """Query and form-encoded body parameters (first value wins, query first)."""
        params: dict[str, list[str]] = {k: list(v) for k, v in self.query.items()}
        content_type = self.headers.get("content-type", "application/x-www-form-urlencoded")
        if "application/x-www-form-urlencoded" in content_type.lower() and self.body:
            text = self.body.decode("utf-8", errors="replace")
            for key, values in parse_qs(text, keep_blank_values=True, encoding="utf-8").items():
                params.setdefault(key, []).extend(values)
        return {key: values[0] for key, values in params.items() if values}


def _parse_cookies(header: str) -> dict[str, list[str]]:
    cookies: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            cookies.setdefault(name.strip(), []).append(value.strip().strip('"'))
    return cookies


class HacApp(Protocol):
    """What the handler needs from the fake that owns the server."""

    latency: float

    def count_request(self, method: str, path: str) -> None:
        """Record one HAC request."""

    def dispatch(self, request: HacRequest) -> HacResponse:
        """Answer one HAC request."""

    def control(self, method: str, path: str, query: dict[str, list[str]]) -> HacResponse:
        """Answer one ``/__fake__/...`` control request."""


class HacHandler(LoopbackHandler):
    """Reads each request, asks the owning fake for the answer, writes it like Tomcat."""

    server_version = "Apache-Coyote/1.1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Route the server's other messages to ``logging``."""
        logger.debug("fake HAC: " + format, *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log method and path only: a query string may carry a token."""
        path = urlsplit(self.path).path if hasattr(self, "path") else "-"
        logger.debug("fake HAC: %s %s -> %s", getattr(self, "command", "-"), path, code)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._handle("GET")

    def do_POST(self) -> None:
        """Serve a POST."""
        self._handle("POST")

    def do_PUT(self) -> None:
        """Serve a PUT."""
        self._handle("PUT")

    def do_DELETE(self) -> None:
        """Serve a DELETE."""
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        """Serve a PATCH."""
        self._handle("PATCH")

    def do_HEAD(self) -> None:
        """Serve a HEAD."""
        self._handle("HEAD")

    def _handle(self, method: str) -> None:
        fake: HacApp = self.server.owner  # type: ignore[attr-defined]
        try:
            split = urlsplit(self.path)
            if split.path.startswith(CONTROL_PREFIX):
                self.read_body(MAX_BODY)
                self._send(fake.control(method, split.path, parse_qs(split.query)))
                return
            fake.count_request(method, split.path)
            body = self.read_body(MAX_BODY)
            if fake.latency > 0:
                time.sleep(fake.latency)
            request = HacRequest(
                method=method,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                cookies=_parse_cookies(", ".join(self.headers.get_all("Cookie") or [])),
                body=body,
            )
            self._send(fake.dispatch(request), head=method == "HEAD")
        except BadBodyError as exc:
            self.close_connection = True
            self._send(HacResponse.html(f"<h1>400 Bad Request</h1><p>{exc}</p>", 400))
        except ConnectionError:
            # The client hung up (a killed process, a timeout): nobody to answer.
            logger.debug("fake HAC: client of %s %s went away", method, urlsplit(self.path).path)
            self.close_connection = True
        except Exception:
            logger.exception("fake HAC failed on %s %s", method, urlsplit(self.path).path)
            self.close_connection = True
            self._send(HacResponse.html("<h1>500 Internal Server Error</h1>", 500))

    def _send(self, response: HacResponse, *, head: bool = False) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(response.body)
