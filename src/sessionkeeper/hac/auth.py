"""Pluggable authentication for the HAC client.

:class:`BasicAuthHandler` supplies the Spring Security form login
(``j_username``/``j_password``). Subclass :class:`AuthHandler` to add
headers to every request (a bearer token in front of HAC, for example).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import final

import httpx


class AuthHandler(ABC):
    """Supplies login credentials and may decorate every outgoing request."""

    @abstractmethod
    def apply_auth(self, request: httpx.Request) -> httpx.Request:
        """Return ``request`` with any per-request authentication applied."""

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


__all__ = ["AuthHandler", "BasicAuthHandler"]
