"""The loopback redirect receiver of ``OAuthClient.login``: one request on 127.0.0.1.

Binds an ephemeral port on 127.0.0.1 (RFC 8252), waits for the browser's
redirect to the callback path, answers a small "you may close this window"
page and hands the redirect's parameters back.
"""

from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from sessionkeeper.atproto.errors import OAuthCallbackError

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>{title}</h1><p>{text}</p></body></html>"""


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the query carries the authorization code."""

    def do_GET(self) -> None:
        receiver: LoopbackReceiver = self.server.receiver  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path != receiver.path or not ({"code", "error"} & params.keys()):
            self.send_error(404)
            return
        if "error" in params:
            title, text = (
                "Sign-in not completed",
                (
                    f"The authorization server answered {html.escape(params['error'])}. "
                    "You may close this window."
                ),
            )
        else:
            title, text = "Signed in", "You may close this window and return to the application."
        page = _PAGE.format(title=title, text=text).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(page)
        receiver.deliver(params)


class LoopbackReceiver:
    """Receives one OAuth redirect on ``http://127.0.0.1:PORT{path}``."""

    def __init__(self, path: str = "/callback") -> None:
        self.path = path or "/"
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.receiver = self  # type: ignore[attr-defined]
        self._received = threading.Event()
        self._params: dict[str, str] | None = None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="oauth-loopback", daemon=True
        )

    @property
    def redirect_uri(self) -> str:
        """The redirect URI to send in the authorization request."""
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{self.path}"

    def deliver(self, params: dict[str, str]) -> None:
        """Keep the first redirect's parameters (called by the handler)."""
        if self._params is None:
            self._params = params
            self._received.set()

    def wait(self, timeout: float) -> dict[str, str]:
        """The redirect's parameters; `OAuthCallbackError` after ``timeout`` seconds."""
        if not self._received.wait(timeout):
            raise OAuthCallbackError(
                f"no redirect from the authorization server within {timeout:.0f} s "
                "(the sign-in was not completed in the browser)",
                error="timeout",
            )
        assert self._params is not None
        return self._params

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
