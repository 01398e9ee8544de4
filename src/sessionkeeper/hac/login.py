"""Spring Security form login to HAC, as a flow of ordinary operations (at most four requests).

GET the login page (a session and a CSRF token), POST the form, then GET the
redirect target: Spring answers a successful login with a NEW ``JSESSIONID``
(session-fixation protection) and a NEW CSRF token, which only the next page
shows. The POST's 302 is never replayed as a POST (that answers 405).

The flow yields `Send` operations that a
driver performs through the client's gate (the user's auth hook, Basic
credentials of the base URL); it keeps the login's cookies itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sessionkeeper.core.flow import Flow, NetworkFailure, Send
from sessionkeeper.hac.cookies import ROUTE_COOKIE, SESSION_COOKIE, CookieJar, route_cookie_string
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.models import secret_prefix
from sessionkeeper.hac.pages import extract_csrf_token, is_login_page, login_error_text
from sessionkeeper.hac.transport import FORM_CONTENT_TYPE, REDIRECTS, unreachable
from sessionkeeper.hac.urls import HacUrls
from sessionkeeper.redaction import redact_url

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

OPERATION = "HAC login"
MAX_LOGIN_PAGE_REDIRECTS = 3
_HTML = {"Accept": "text/html"}


@dataclass(frozen=True)
class LoginResult:
    """What a successful login yields."""

    session_id: str
    csrf_token: str
    route_cookie: str | None  #: ``"ROUTE=value"`` (the original's format) or ``None``

    def __repr__(self) -> str:
        return (
            f"LoginResult(session_id={secret_prefix(self.session_id)}, "
            f"csrf_token={secret_prefix(self.csrf_token)}, route_cookie={self.route_cookie!r})"
        )


def login_failed(root: str, username: str, detail: str | None = None) -> HacAuthenticationError:
    """The error for refused credentials; it names the user and the URL, never the password."""
    suffix = f" ({detail})" if detail else ""
    return HacAuthenticationError(
        f"Login failed for user {username!r} at {root}: check the username and password{suffix}"
    )


def _send(
    urls: HacUrls,
    cookies: CookieJar,
    method: str,
    url: str,
    form: dict[str, str] | None = None,
    content_type: str | None = None,
) -> Flow[httpx.Response]:
    """One login request carrying the login's cookies; those the answer sets go back in.

    No answer, or a server fault (5xx), is a `HacClientError`, not a verdict
    on the credentials, so callers retry later instead of checking a password.
    """
    headers = dict(_HTML)
    if content_type is not None:
        headers["Content-Type"] = content_type
    cookie = cookies.header()
    if cookie:
        headers["Cookie"] = cookie
    import httpx  # loaded already: the flow runs on a client's driver

    try:
        answer: httpx.Response | NetworkFailure = yield Send(
            method, url, headers=headers, form=form
        )
    except httpx.HTTPError as exc:  # not a transport error (a body that cannot be decoded)
        raise unreachable(OPERATION, urls.root, f"{type(exc).__name__}: {exc}") from exc
    if isinstance(answer, NetworkFailure):
        raise unreachable(OPERATION, urls.root, answer.reason) from answer.cause
    cookies.absorb(answer.headers.get_list("set-cookie"))
    logger.debug("%s %s -> %d", method, redact_url(url), answer.status_code)
    if answer.status_code >= 500:
        raise HacClientError(
            f"{OPERATION}: HAC at {urls.root} answered HTTP {answer.status_code}; "
            "the server is failing or starting, try again later"
        )
    return answer


def _login_page(urls: HacUrls, cookies: CookieJar) -> Flow[httpx.Response]:
    url = urls.url("/login")
    for _ in range(MAX_LOGIN_PAGE_REDIRECTS + 1):
        response = yield from _send(urls, cookies, "GET", url)
        if response.status_code not in REDIRECTS:
            break
        url = urls.same_origin(response.headers.get("location", ""))
    else:
        raise HacAuthenticationError(f"{OPERATION}: the login page of {urls.root} loops")
    if response.status_code != 200:
        raise HacAuthenticationError(
            f"{OPERATION}: the login page {urls.url('/login')} answered "
            f"HTTP {response.status_code}; is this the HAC URL?"
        )
    return response


def login_flow(urls: HacUrls, credentials: dict[str, str]) -> Flow[LoginResult]:
    """Log in with ``credentials`` (``j_username``, ``j_password``, ...) and return the session."""
    username = credentials.get("j_username", "")
    cookies = CookieJar()
    page = yield from _login_page(urls, cookies)
    csrf = extract_csrf_token(page.text)
    if not csrf:
        raise HacAuthenticationError(
            f"{OPERATION}: no CSRF token in the login page of {urls.root}; is this HAC?"
        )
    response = yield from _send(
        urls,
        cookies,
        "POST",
        urls.url("/j_spring_security_check"),
        form={**credentials, "_csrf": csrf},
        content_type=FORM_CONTENT_TYPE,
    )
    if response.status_code in REDIRECTS:
        location = response.headers.get("location", "")
        if "login_error" in location or location.rstrip("/").endswith("/login"):
            raise login_failed(urls.root, username)
        page = yield from _send(urls, cookies, "GET", urls.same_origin(location))
    elif response.status_code == 200:
        if is_login_page(response.text):
            raise login_failed(urls.root, username, login_error_text(response.text))
        page = response  # some versions answer the POST with the page itself
    else:
        raise HacAuthenticationError(
            f"{OPERATION}: {urls.root} answered the login form with HTTP {response.status_code}"
        )
    if page.status_code in REDIRECTS or (page.status_code == 200 and is_login_page(page.text)):
        raise login_failed(urls.root, username)
    token = extract_csrf_token(page.text) if page.status_code == 200 else None
    if not token:
        # The page first asked for may not be HTML; the HAC home page always shows the token.
        page = yield from _send(urls, cookies, "GET", urls.url("/"))
        if page.status_code != 200 or is_login_page(page.text):
            raise login_failed(urls.root, username)
        token = extract_csrf_token(page.text)
    session_id = cookies.get(SESSION_COOKIE)
    if not token or not session_id:
        missing = " and ".join(
            name for name, value in (("JSESSIONID", session_id), ("CSRF token", token)) if not value
        )
        raise HacAuthenticationError(f"{OPERATION}: HAC at {urls.root} gave no {missing}")
    return LoginResult(session_id, token, route_cookie_string(cookies.get(ROUTE_COOKIE)))


__all__ = ["LoginResult", "login_failed", "login_flow"]
