"""ATProto's view of the core's JWT decoding (`sessionkeeper.jwt`).

The decoding lives once in the core; here its errors become the ATProto
package's `MalformedTokenError`, so
``except SessionError`` keeps catching them.
"""

from __future__ import annotations

from typing import Any

from sessionkeeper import jwt as _core
from sessionkeeper.atproto.errors import MalformedTokenError
from sessionkeeper.jwt import token_expiry_or_none as token_expiry_or_none
from sessionkeeper.redaction import SECRET_PREFIX_CHARS as SECRET_PREFIX_CHARS
from sessionkeeper.redaction import redact_secret as redact


def decode_claims(token: str) -> dict[str, Any]:
    """Return the payload of ``token`` as a dict, or raise `MalformedTokenError`."""
    try:
        return _core.decode_claims(token)
    except _core.MalformedTokenError as exc:
        raise MalformedTokenError(str(exc)) from exc.__cause__


def token_expiry(token: str) -> float:
    """Return the ``exp`` claim of ``token`` in Unix seconds; raise if there is none."""
    try:
        return _core.token_expiry(token)
    except _core.MalformedTokenError as exc:
        raise MalformedTokenError(str(exc)) from exc.__cause__


__all__ = [
    "SECRET_PREFIX_CHARS",
    "decode_claims",
    "redact",
    "token_expiry",
    "token_expiry_or_none",
]
