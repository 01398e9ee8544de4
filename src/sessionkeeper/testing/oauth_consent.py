"""Complete the reference PDS's OAuth sign-in and consent over HTTP, as its page would.

The ``@atproto/oauth-provider`` authorization page is a script that calls the
provider's API; `ConsentDriver` sends the same requests a browser
running it sends::

    GET  /oauth/authorize?client_id&request_uri     (sets the device, session and CSRF cookies)
    POST /@atproto/oauth-provider/~api/sign-in       (same-origin, CSRF header = cookie)
    POST /@atproto/oauth-provider/~api/consent       (answers the redirect page's URL)
    GET  /oauth/authorize/redirect?...                (303 to redirect_uri?iss&state&code)

Cookies are kept by hand: the provider marks its CSRF cookie ``Secure`` even
on ``http://localhost``, which httpx's cookie jar would never send back.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from sessionkeeper.errors import SessionkeeperError

_API = "/@atproto/oauth-provider/~api"
_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) sessionkeeper-consent/1.0"


class ConsentError(SessionkeeperError, RuntimeError):
    """The authorization page refused a step (names it and the HTTP status)."""


class ConsentDriver:
    """One "browser" (its own cookies) signing in and consenting on one authorization URL."""

    def __init__(self, authorize_url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(authorize_url)
        self.issuer = f"{parts.scheme}://{parts.netloc}"
        self.page_url = authorize_url
        self.cookies: dict[str, str] = {}
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _send(self, method: str, url: str, headers: dict[str, str], **kw: Any) -> httpx.Response:
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self._http.cookies.clear()  # only our own cookie header is sent
        response = self._http.request(
            method, url, headers={"User-Agent": _USER_AGENT, **headers}, **kw
        )
        for raw in response.headers.get_list("set-cookie"):
            name, _, rest = raw.partition("=")
            value = rest.split(";", 1)[0]
            if value == "" or "max-age=0" in raw.lower():
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return response

    def _api(self, endpoint: str, body: dict[str, Any], bearer: str | None) -> dict[str, Any]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Origin": self.issuer,
            "Referer": self.page_url,
            "Sec-Fetch-Mode": "same-origin",
            "Sec-Fetch-Site": "same-origin",
            "Sec-Fetch-Dest": "empty",
            "x-csrf-token": self.cookies.get("csrf-token", ""),
        }
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = self._send("POST", f"{self.issuer}{_API}{endpoint}", headers, json=body)
        if response.status_code != 200:
            raise ConsentError(
                f"{endpoint} answered HTTP {response.status_code}: {response.text[:200]}"
            )
        answer = response.json()
        if not isinstance(answer, dict):
            raise ConsentError(f"{endpoint} answered no JSON object")
        return answer

    def open_page(self) -> None:
        """Navigate to the authorization page (which sets the cookies the API needs)."""
        navigate = {
            "Accept": "text/html",
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
            "Sec-Fetch-Site": "cross-site",
        }
        response = self._send("GET", self.page_url, navigate)
        if response.status_code != 200:
            raise ConsentError(f"the authorization page answered HTTP {response.status_code}")

    def sign_in(self, username: str, password: str) -> dict[str, Any]:
        """Sign in; return the provider's answer (``account``, ``ephemeralToken``)."""
        return self._api(
            "/sign-in",
            {"locale": "en", "username": username, "password": password, "remember": False},
            None,
        )

    def consent(self, signed_in: dict[str, Any]) -> str:
        """Accept the consent screen; return the redirect URL (``redirect_uri?iss&state&code``)."""
        account = signed_in.get("account")
        did = account.get("did") if isinstance(account, dict) else None
        answer = self._api("/consent", {"did": did}, signed_in.get("ephemeralToken"))
        return self._follow(answer, "consent")

    def reject(self) -> str:
        """Decline the request; return the redirect URL (``...?error=access_denied``)."""
        return self._follow(self._api("/reject", {}, None), "reject")

    def _follow(self, answer: dict[str, Any], step: str) -> str:
        redirect_page = answer.get("url")
        if not isinstance(redirect_page, str):
            raise ConsentError(f"{step} answered no redirect page URL")
        headers = {
            "Referer": self.page_url,
            "Sec-Fetch-Mode": "navigate",
            "Sec-Fetch-Dest": "document",
            "Sec-Fetch-Site": "same-origin",
        }
        response = self._send("GET", redirect_page, headers)
        if response.status_code not in (302, 303):
            raise ConsentError(f"the redirect page answered HTTP {response.status_code}")
        return response.headers["location"]


def sign_in_and_consent(authorize_url: str, username: str, password: str) -> str:
    """Do what a user does in the browser; return the URL the browser is sent back to."""
    driver = ConsentDriver(authorize_url)
    try:
        driver.open_page()
        return driver.consent(driver.sign_in(username, password))
    finally:
        driver.close()
