"""Keep HAC session ids out of httpx's and httpcore's logs.

With DEBUG logging on, httpcore logs every response's header list
(``Set-Cookie: JSESSIONID=...``, ``Location: /hac/login;jsessionid=...``) and
httpx logs each request URL at INFO, which ``-v`` shows. A session id is a
credential, so the client installs the core's redacting filter on those
loggers before its first request; see `sessionkeeper.redaction`.
"""

from __future__ import annotations

from sessionkeeper.redaction import (
    HTTP_LOGGERS,
    RedactingFilter,
    install_log_redaction,
    redact_text,
)

#: The loggers the filter is installed on.
TRACE_LOGGERS = HTTP_LOGGERS
#: The filter class (kept under its former name).
CookieRedactionFilter = RedactingFilter


def redact_cookies(message: str) -> str:
    """Hide every cookie value, credential header and session id in a trace message."""
    return redact_text(message)


def install_cookie_redaction() -> None:
    """Attach the redacting filter to httpx's and httpcore's loggers (once per process)."""
    install_log_redaction(TRACE_LOGGERS)


__all__ = ["CookieRedactionFilter", "install_cookie_redaction", "redact_cookies"]
