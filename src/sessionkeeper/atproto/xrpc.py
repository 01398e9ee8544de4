"""XRPC requests and answers as data: URLs, error bodies, Retry-After, decoded results.

Nothing here performs I/O; the sync and async managers send what these
functions describe and hand the responses back to them.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import httpx

from sessionkeeper.atproto.errors import XrpcError
from sessionkeeper.core.state import MAX_RETRY_AFTER

CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
GET_SESSION = "com.atproto.server.getSession"
DELETE_SESSION = "com.atproto.server.deleteSession"

#: 400 error names meaning "this access token no longer works": past its exp, or one
#: the server can no longer verify (its signing key changed). Either way the call loop
#: refreshes once; a refresh the server refuses too ends the session (no endless 400s).
EXPIRED_ACCESS_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})

NSID_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]*(\.[a-zA-Z0-9-]+){2,}$")


def validate_nsid(nsid: object) -> str:
    """Return ``nsid`` if it looks like an NSID (``com.example.method``), else ``ValueError``."""
    if not isinstance(nsid, str) or len(nsid) > 317 or not NSID_RE.match(nsid):
        shown = nsid[:60] if isinstance(nsid, str) else type(nsid).__name__
        raise ValueError(f"{shown!r} is not an NSID (expected e.g. com.atproto.repo.listRecords)")
    return nsid


def xrpc_url(base_url: str, nsid: str) -> str:
    """Return ``{base}/xrpc/{nsid}``."""
    return f"{base_url.rstrip('/')}/xrpc/{nsid}"


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def json_value(content: bytes) -> Any:
    """Decode a server's JSON answer; `ValueError` for anything that is not JSON.

    That includes nesting too deep for the parser (``[[[[...``, a ``RecursionError``
    inside `json.loads`), so a hostile answer is an ordinary bad answer.
    """
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("the JSON nests too deeply") from None


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The JSON object ``response`` carries; ``None`` for a body that is not one.

    Not JSON, not UTF-8, nested too deeply, or another JSON value: each caller
    names the refusal in its own error.
    """
    try:
        document = json_value(response.content)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def error_body(response: httpx.Response) -> tuple[str | None, str | None]:
    """Return the ``(error, message)`` of an XRPC error body; ``(None, None)`` if there is none."""
    document = json_object(response)
    if document is None:
        return None, None
    error = document.get("error")
    message = document.get("message")
    return (
        error if isinstance(error, str) else None,
        message if isinstance(message, str) else None,
    )


def is_rejected_access(response: httpx.Response) -> bool:
    """Whether a call refused its access token: 401, or 400 ExpiredToken or InvalidToken."""
    if response.status_code == 401:
        return True
    if response.status_code == 400:
        return error_body(response)[0] in EXPIRED_ACCESS_ERRORS
    return False


def _parse_wait(headers: Mapping[str, str], now: float) -> float | None:
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        try:
            return float(value)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is not None:
            return when.timestamp() - now
    reset = headers.get("ratelimit-reset")
    if reset:
        try:
            return float(reset) - now
        except ValueError:
            return None
    return None


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait per ``Retry-After`` (seconds or HTTP date) or ``RateLimit-Reset``,
    within ``[0, MAX_RETRY_AFTER]``; ``None`` when the server did not say (or said NaN)."""
    wait = _parse_wait(headers, now)
    if wait is None or math.isnan(wait):
        return None
    return min(max(0.0, wait), MAX_RETRY_AFTER)


def raise_for_error(response: httpx.Response, nsid: str, *, now: float) -> None:
    """Raise `XrpcError` unless ``response`` is a 2xx."""
    if 200 <= response.status_code < 300:
        return
    error, message = error_body(response)
    exc = XrpcError(response.status_code, error, message, nsid=nsid)
    exc.retry_after = retry_after(response.headers, now)
    raise exc


def decode_result(response: httpx.Response, nsid: str, *, now: float) -> Any:
    """Return the decoded JSON of a 2xx answer, ``None`` if empty, raw bytes if not JSON."""
    raise_for_error(response, nsid, now=now)
    content = response.content
    if not content:
        return None
    kind = response.headers.get("content-type", "")
    if "json" in kind or not kind:
        try:
            return json_value(content)
        except ValueError:
            if "json" in kind:
                raise XrpcError(
                    response.status_code, "InvalidResponse", "body is not valid JSON", nsid=nsid
                ) from None
    return content
