"""The loopback redirect receiver of ``OAuthClient.login``: one redirect on 127.0.0.1 or ::1.

Binds an ephemeral port on the loopback address the configured redirect URI
names (RFC 8252: ``127.0.0.1`` or ``[::1]``), waits for the browser's redirect
to the callback path carrying the ``state`` of the sign-in in progress,
answers a small "you may close this window" page and hands the redirect's
parameters back. Any other local process can reach the port, so a request
without that ``state`` is answered 400 and ignored: it cannot end the sign-in.
"""

from __future__ import annotations

import html
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qsl, urlsplit

from sessionkeeper.atproto.errors import OAuthCallbackError, OAuthError

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family:sans-serif;margin:3em"><h1>{title}</h1><p>{text}</p></body></html>"""

#: The loopback hosts a redirect URI may name, and the address each binds.
LOOPBACK_HOSTS = {"127.0.0.1": socket.AF_INET, "::1": socket.AF_INET6}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the query carries the authorization code."""

    def _answer(self, status: int, title: str, text: str) -> None:
        page = _PAGE.format(title=title, text=text).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(page)

    def do_GET(self) -> None:
        receiver: LoopbackReceiver = self.server.receiver  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path != receiver.path or not ({"code", "error"} & params.keys()):
            self.send_error(404)
            return
        if not receiver.expects(params.get("state")):
            self._answer(
                400,
                "Not this sign-in",
                "This redirect does not belong to the sign-in in progress; it was ignored.",
            )
            return
        if "error" in params:
            self._answer(
                200,
                "Sign-in not completed",
                f"The authorization server answered {html.escape(params['error'])}. "
                "You may close this window.",
            )
        else:
            self._answer(
                200, "Signed in", "You may close this window and return to the application."
            )
        receiver.deliver(params)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class LoopbackReceiver:
    """Receives one OAuth redirect on ``http://HOST:PORT{path}`` (HOST 127.0.0.1 or [::1])."""

    def __init__(self, path: str = "/callback", host: str = "127.0.0.1") -> None:
        if host not in LOOPBACK_HOSTS:
            raise OAuthError(f"a loopback redirect binds 127.0.0.1 or ::1, not {host!r}")
        self.path = path or "/"
        self.host = host
        server = _Server6 if LOOPBACK_HOSTS[host] == socket.AF_INET6 else _Server
        try:
            self._httpd = server((host, 0), _Handler)
        except OSError as exc:
            raise OAuthError(
                f"cannot listen on {host} for the loopback redirect ({exc.strerror or exc}); "
                "use a redirect_uri on another loopback address"
            ) from None
        self._httpd.receiver = self  # type: ignore[attr-defined]
        self._received = threading.Event()
        self._params: dict[str, str] | None = None
        self._state: str | None = None
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="oauth-loopback", daemon=True
        )

    @property
    def redirect_uri(self) -> str:
        """The redirect URI to send in the authorization request."""
        port = self._httpd.server_address[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port}{self.path}"

    def expect(self, state: str) -> None:
        """Accept only redirects carrying ``state`` (the sign-in's own); ignore all others."""
        self._state = state

    def expects(self, state: str | None) -> bool:
        """Whether a redirect with ``state`` is the one awaited (none is, before `expect`)."""
        return (
            self._state is not None
            and state is not None
            and secrets.compare_digest(state.encode(), self._state.encode())
        )

    def deliver(self, params: dict[str, str]) -> None:
        """Keep the first awaited redirect's parameters (called by the handler)."""
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
