"""Keep cookie values out of httpcore's wire-level DEBUG traces.

With DEBUG logging on, httpcore logs every response's header list, which
holds ``Set-Cookie: JSESSIONID=...``. A session id is a credential, so the
client installs a filter on those loggers that shortens cookie values to a
6-character prefix before any handler sees the record.
"""

from __future__ import annotations

import logging
import re
import threading

#: httpcore's trace loggers (one per connection layer).
TRACE_LOGGERS = ("httpcore.http11", "httpcore.http2", "httpcore.connection", "httpcore.proxy")

# A header tuple as httpcore reprs it: (b'Set-Cookie', b'NAME=VALUE; Path=/')
_COOKIE_HEADER = re.compile(r"(?i)(b'(?:set-)?cookie',\s*b')([^']*)(')")
_PAIR = re.compile(r"([^=;\s]+)=([^;]*)")

_installed = False
_install_guard = threading.Lock()


def _shorten_pairs(value: str) -> str:
    def shorten(match: re.Match[str]) -> str:
        name, secret = match.group(1), match.group(2)
        if name.lower() in {"path", "domain", "expires", "max-age", "samesite"}:
            return match.group(0)
        return f"{name}={secret[:6]}..." if len(secret) > 6 else match.group(0)

    return _PAIR.sub(shorten, value)


def redact_cookies(message: str) -> str:
    """Shorten every cookie value in an httpcore trace message."""
    return _COOKIE_HEADER.sub(
        lambda m: m.group(1) + _shorten_pairs(m.group(2)) + m.group(3), message
    )


class CookieRedactionFilter(logging.Filter):
    """Rewrites trace records so cookie values show at most a short prefix."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; never drops it."""
        if isinstance(record.msg, str) and "ookie" in record.msg:
            record.msg = redact_cookies(record.msg)
        return True


def install_cookie_redaction() -> None:
    """Attach :class:`CookieRedactionFilter` to httpcore's trace loggers (once per process)."""
    global _installed
    with _install_guard:
        if _installed:
            return
        redaction = CookieRedactionFilter()
        for name in TRACE_LOGGERS:
            logging.getLogger(name).addFilter(redaction)
        _installed = True


__all__ = ["CookieRedactionFilter", "install_cookie_redaction", "redact_cookies"]
