"""HTTP to HAC: the bounded client, the gate every request passes, the dead-session verdict.

Every request to HAC passes `HacGate` (the user's ``AuthHandler`` hook,
then the base URL's Basic credentials): the login flow's and logout's as the
client's own auth, the console calls' through
`HacAuthorizer`, which the call loop drives.

The HTTP stack (httpx, httpcore and the bounded client on them) loads when the
first `HacTransport` is built, as httpx itself defers httpcore: code
that imports ``hac_client_core`` and exits before sending anything (a script's
``--help``, a bad argument, test collection) never pays for it.
"""

from __future__ import annotations

import base64
import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.cookies import SESSION_COOKIE, CookieJar, split_route_cookie
from sessionkeeper.hac.errors import HacClientError
from sessionkeeper.hac.models import SessionInfo
from sessionkeeper.hac.pages import is_login_page
from sessionkeeper.hac.session import SessionMetadata
from sessionkeeper.hac.urls import HacUrls
from sessionkeeper.redaction import redact_text, redact_url

if TYPE_CHECKING:
    import ssl

    import httpx

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Answers HAC gives to a request whose session (or CSRF token) is dead.
DEAD_SESSION_STATUSES = frozenset({401, 403, 405})
#: Body cap of console results (FlexibleSearch rows, script output and the log of
#: ``/initlog/log``): they grow with the user's data, unlike pages and JSON status
#: answers, which keep the default cap (``http_limits.DEFAULT_MAX_BODY``, 4 MiB).
CONSOLE_RESULT_MAX_BODY = 64 * 1024 * 1024
CONSOLE_RESULT_PATHS = ("/console/flexsearch/execute", "/console/scripting/execute", "/initlog/log")


def body_cap(url: str) -> int | None:
    """The body cap of a request to ``url`` when it differs from the default one."""
    path = urlsplit(url).path.rstrip("/")
    return CONSOLE_RESULT_MAX_BODY if path.endswith(CONSOLE_RESULT_PATHS) else None


@functools.cache
def _verifying_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~150 ms; one context serves every client of the process.
    import httpx

    return httpx.create_ssl_context()


def tls_verification(origin: str, ignore_ssl: bool) -> ssl.SSLContext | bool:
    """What to hand httpx as ``verify``.

    Plain ``http://`` never performs a TLS handshake (every request goes to this
    origin; redirects are resolved against it), so it needs no CA bundle.
    """
    if ignore_ssl or origin.startswith("http://"):
        return False
    return _verifying_ssl_context()


def unreachable(operation: str, root: str, reason: str) -> HacClientError:
    """The error for a request that got no answer; its text never holds a cookie."""
    return HacClientError(redact_text(f"{operation}: cannot reach HAC at {root} ({reason})"))


def basic_authorization(credentials: tuple[str, str]) -> str:
    """The ``Authorization`` value of Basic ``credentials`` (UTF-8, as httpx sends them)."""
    user, password = credentials
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class HacGate:
    """What every request to one HAC origin carries besides its session.

    The user's `AuthHandler` decorates it first, then the base URL's
    user part goes as Basic auth (a gate in front of HAC), as httpx sends
    credentials from a URL, so every URL shown in errors and logs has none.
    """

    def __init__(self, auth_handler: AuthHandler, basic: tuple[str, str] | None) -> None:
        self.auth_handler = auth_handler
        self._authorization = basic_authorization(basic) if basic is not None else None

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Return ``request`` (or the handler's replacement) ready to go out."""
        request = self.auth_handler.apply_auth(request)
        if self._authorization is not None:
            request.headers["Authorization"] = self._authorization
        return request


def session_cookies(info: SessionInfo | SessionMetadata) -> CookieJar:
    """The cookies that carry ``info``: ``JSESSIONID`` and the load balancer's route."""
    cookies = CookieJar()
    cookies.put(SESSION_COOKIE, info.session_id)
    route = split_route_cookie(info.route_cookie)
    if route is not None:
        cookies.put(*route)
    return cookies


def is_dead_session(response: httpx.Response, result_marker: str | None = None) -> bool:
    """True when HAC answered with its verdict that the session (or CSRF token) is dead.

    ``result_marker`` is a string only a real result page contains (an HTML
    result may echo user content that mentions the login form).
    """
    status = response.status_code
    if status in DEAD_SESSION_STATUSES:
        return True
    if status in REDIRECTS:
        return "login" in response.headers.get("location", "")
    if status != 200 or "json" in response.headers.get("content-type", ""):
        # A JSON body is an answer, even one that mentions the login form.
        return False
    body = response.text
    if result_marker is not None and result_marker in body:
        return False
    return is_login_page(body)


class HacTransport:
    """Sends requests to one HAC origin with explicit cookie jars, never following redirects."""

    def __init__(
        self, urls: HacUrls, auth_handler: AuthHandler, *, timeout: float, ignore_ssl: bool
    ) -> None:
        import http.cookiejar

        from sessionkeeper.hac.gate_auth import GateAuth
        from sessionkeeper.http_limits import bounded_client

        self.urls = urls
        self.auth_handler = auth_handler
        self.gate = HacGate(auth_handler, urls.basic_auth)
        # Every request must end within ``timeout`` seconds in all (not per read), with
        # a capped body: a trickling or endless answer cannot hold the caller or its
        # session lock, nor fill its memory.
        self.http = bounded_client(
            timeout,
            # Requests sent without an auth of their own (the login flow, logout) pass
            # the gate here; console calls pass it in their authorizer.
            auth=GateAuth(self.gate),
            verify=tls_verification(urls.origin, ignore_ssl),
            follow_redirects=False,
            headers={"User-Agent": "sessionkeeper-hac"},
            # httpx's own jar is shared by every thread of the client: a cookie one
            # thread's answer set would ride on another thread's request. It accepts
            # nothing; each request carries its own cookies (see cookies.py).
            cookies=http.cookiejar.CookieJar(
                policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            ),
        )

    def check_open(self, operation: str) -> None:
        """Raise a clear error when this client was closed."""
        if self.http.is_closed:
            raise HacClientError(f"{operation}: this HacClient was closed; create a new one")

    def build(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Request:
        """A request to ``url`` with the body cap its path calls for."""
        from sessionkeeper.http_limits import MAX_BODY_EXTENSION

        cap = body_cap(url)
        return self.http.build_request(
            method,
            url,
            data=data,
            json=json_body,
            headers=headers,
            params=params,
            extensions={MAX_BODY_EXTENSION: cap} if cap is not None else None,
        )

    def send(
        self,
        method: str,
        url: str,
        operation: str,
        cookies: CookieJar,
        *,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request carrying ``cookies``; cookies the answer sets go back into it."""
        import httpx

        self.check_open(operation)
        request = self.build(
            method, url, data=data, json_body=json_body, headers=headers, params=params
        )
        cookie = cookies.header()
        if cookie:
            request.headers["Cookie"] = cookie
        try:
            response = self.http.send(request)
        except httpx.HTTPError as exc:
            raise unreachable(operation, self.urls.root, f"{type(exc).__name__}: {exc}") from exc
        cookies.absorb(response.headers.get_list("set-cookie"))
        logger.debug("%s %s -> %d", method, redact_url(request.url.path), response.status_code)
        return response

    def close(self) -> None:
        """Close the connections."""
        self.http.close()


__all__ = [
    "CONSOLE_RESULT_MAX_BODY",
    "DEAD_SESSION_STATUSES",
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "REDIRECTS",
    "HacGate",
    "HacTransport",
    "basic_authorization",
    "body_cap",
    "is_dead_session",
    "session_cookies",
    "tls_verification",
    "unreachable",
]
