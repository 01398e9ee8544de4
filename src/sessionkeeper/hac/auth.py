"""Pluggable authentication for the HAC client.

`BasicAuthHandler` supplies the Spring Security form login
(``j_username``/``j_password``). Subclass `AuthHandler` to add
headers to every request (a bearer token in front of HAC, for example).

Handlers written for the original hac-client-core receive a
``requests.PreparedRequest`` (its documented contract): an ``apply_auth`` not
annotated with ``httpx.Request`` is handed a PreparedRequest built from the
outgoing request, and what it changes (headers, URL, method, body) is copied
back. ``requests`` is imported only for such handlers.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, final

if TYPE_CHECKING:
    import httpx
    import requests


def _speaks_httpx(apply_auth: Callable[..., Any]) -> bool:
    """True when ``apply_auth``'s request parameter is annotated as an ``httpx.Request``."""
    annotations = {k: v for k, v in getattr(apply_auth, "__annotations__", {}).items()}
    annotations.pop("return", None)
    if not annotations:
        return False
    first = next(iter(annotations.values()))
    text = first if isinstance(first, str) else f"{first.__module__}.{first.__qualname__}"
    return "httpx" in text or text in {"Request", "httpx.Request"}


def to_prepared_request(request: httpx.Request) -> requests.PreparedRequest:
    """A ``requests.PreparedRequest`` with ``request``'s method, URL, headers and body."""
    import requests
    from requests.structures import CaseInsensitiveDict

    prepared = requests.PreparedRequest()
    prepared.method = request.method
    prepared.url = str(request.url)
    prepared.headers = CaseInsensitiveDict(request.headers.items())
    prepared.body = request.content or None
    return prepared


def from_prepared_request(prepared: Any, original: httpx.Request) -> httpx.Request:
    """``original`` with what a handler changed on its PreparedRequest view applied."""
    import httpx

    if isinstance(prepared, httpx.Request):
        return prepared
    body = prepared.body.encode("utf-8") if isinstance(prepared.body, str) else prepared.body
    if body != (original.content or None):
        return httpx.Request(
            prepared.method or original.method,
            prepared.url or str(original.url),
            headers=[
                (name, value)
                for name, value in prepared.headers.items()
                if name.lower() not in {"content-length", "transfer-encoding"}
            ],
            content=body or b"",
            extensions=original.extensions,
        )
    original.method = (prepared.method or original.method).upper()
    if prepared.url and prepared.url != str(original.url):
        original.url = httpx.URL(prepared.url)
    wanted = {name.lower(): value for name, value in prepared.headers.items()}
    for name in list(original.headers.keys()):
        if name.lower() not in wanted:
            del original.headers[name]
    for name, value in prepared.headers.items():
        if original.headers.get(name) != value:
            original.headers[name] = value
    return original


def _adapted(
    apply_auth: Callable[[Any, Any], Any],
) -> Callable[[Any, httpx.Request], httpx.Request]:
    @functools.wraps(apply_auth)
    def apply_auth_on_prepared_request(self: Any, request: httpx.Request) -> httpx.Request:
        import httpx

        if not isinstance(request, httpx.Request):
            result: httpx.Request = apply_auth(self, request)
            return result
        prepared = to_prepared_request(request)
        returned = apply_auth(self, prepared)
        return from_prepared_request(prepared if returned is None else returned, request)

    return apply_auth_on_prepared_request


class AuthHandler(ABC):
    """Supplies login credentials and may decorate every outgoing request."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("apply_auth")
        if own is None or not callable(own) or getattr(own, "__isabstractmethod__", False):
            return
        if not _speaks_httpx(own):
            cls.apply_auth = _adapted(own)  # type: ignore[assignment,method-assign]

    @abstractmethod
    def apply_auth(self, request: Any) -> Any:
        """Return ``request`` with any per-request authentication applied.

        ``request`` is an ``httpx.Request`` when the method is annotated so, else a
        ``requests.PreparedRequest`` (the original library's contract).
        """

    @abstractmethod
    def get_initial_credentials(self) -> dict[str, str]:
        """Return the login form fields, e.g. ``{"j_username": ..., "j_password": ...}``."""


@final
class BasicAuthHandler(AuthHandler):
    """Form login with a username and password; the password never shows in a repr."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self._password: str | None = password

    def __repr__(self) -> str:
        return f"BasicAuthHandler(username={self.username!r}, password=***)"

    def apply_auth(self, request: httpx.Request) -> httpx.Request:
        """Form login needs nothing on each request: the session cookie carries it."""
        return request

    def get_initial_credentials(self) -> dict[str, str]:
        """Return ``j_username`` and ``j_password``; callable again for every re-login."""
        return {"j_username": self.username, "j_password": self._password or ""}

    def __del__(self) -> None:
        # Drop the reference early; the string itself lives on until collected.
        self._password = None


__all__ = ["AuthHandler", "BasicAuthHandler", "from_prepared_request", "to_prepared_request"]
