"""The few cookies a HAC client keeps, without domain scoping.

``http.cookiejar`` refuses to send cookies set by bare host names such as
``localhost`` or ``commerce-server``; HAC only needs ``JSESSIONID`` and the
load balancer's ``ROUTE`` sent back to the same origin, so a plain mapping
per client does the job.
"""

from __future__ import annotations

from collections.abc import Iterable

SESSION_COOKIE = "JSESSIONID"
ROUTE_COOKIE = "ROUTE"


def parse_set_cookie(header: str) -> tuple[str, str, bool] | None:
    """Return ``(name, value, deleted)`` of one ``Set-Cookie`` header, or ``None`` if malformed.

    ``deleted`` is true for ``Max-Age=0`` (or negative), how servers expire a cookie.
    """
    first, _, attributes = header.partition(";")
    name, sep, value = first.partition("=")
    name = name.strip()
    if not sep or not name:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    deleted = False
    for attribute in attributes.split(";"):
        key, _, raw = attribute.partition("=")
        if key.strip().lower() == "max-age":
            try:
                deleted = int(raw.strip()) <= 0
            except ValueError:
                deleted = False
    return name, value, deleted


class CookieJar:
    """Cookies of one HAC origin, sent back on every request to it."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"CookieJar(names={sorted(self._values)!r})"

    def get(self, name: str) -> str | None:
        """The value of ``name``, if set."""
        return self._values.get(name)

    def put(self, name: str, value: str) -> None:
        """Set ``name`` to ``value``."""
        self._values[name] = value

    def clear(self) -> None:
        """Forget every cookie."""
        self._values.clear()

    def absorb(self, set_cookie_headers: Iterable[str]) -> set[str]:
        """Apply ``Set-Cookie`` headers; return the names whose value changed."""
        changed: set[str] = set()
        for header in set_cookie_headers:
            parsed = parse_set_cookie(header)
            if parsed is None:
                continue
            name, value, deleted = parsed
            if deleted:
                if self._values.pop(name, None) is not None:
                    changed.add(name)
            elif self._values.get(name) != value:
                self._values[name] = value
                changed.add(name)
        return changed

    def header(self) -> str:
        """The ``Cookie`` request header value ('' when empty)."""
        return "; ".join(f"{name}={value}" for name, value in self._values.items())


def route_cookie_string(value: str | None) -> str | None:
    """The persisted form of the route cookie: ``"ROUTE=value"`` (the original's format)."""
    return f"{ROUTE_COOKIE}={value}" if value else None


def split_route_cookie(route_cookie: str | None) -> tuple[str, str] | None:
    """``"ROUTE=value"`` → ``("ROUTE", "value")``; a bare value is taken as ROUTE's."""
    if not route_cookie:
        return None
    name, sep, value = route_cookie.partition("=")
    if not sep:
        return ROUTE_COOKIE, route_cookie.strip()
    return name.strip() or ROUTE_COOKIE, value.strip()


__all__ = [
    "ROUTE_COOKIE",
    "SESSION_COOKIE",
    "CookieJar",
    "parse_set_cookie",
    "route_cookie_string",
    "split_route_cookie",
]
