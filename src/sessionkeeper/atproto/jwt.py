"""Just enough JWT: read the claims of a token without verifying it, to learn ``exp``.

Clients never hold the server's key, so they cannot verify; they only need to
know when a token runs out. Decoded ``exp`` values are cached by token, which
keeps the per-call "is it due?" check to a dictionary lookup. A payload that is
not a JSON object, or too deeply nested to decode, is a
`MalformedTokenError` (so ``except
SessionError`` catches it), never a crash.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from functools import lru_cache
from typing import Any

from sessionkeeper.atproto.errors import MalformedTokenError
from sessionkeeper.redaction import SECRET_PREFIX_CHARS as SECRET_PREFIX_CHARS
from sessionkeeper.redaction import redact_secret
from sessionkeeper.redaction import redact_secret as redact

#: Longest token decoded: real access and refresh JWTs are well under 4 KiB.
MAX_TOKEN_CHARS = 64 * 1024


def _b64url_decode(part: str) -> bytes:
    padded = part + "=" * (-len(part) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def decode_claims(token: str) -> dict[str, Any]:
    """Return the payload of ``token`` as a dict, or raise `MalformedTokenError`."""
    if not isinstance(token, str):
        raise MalformedTokenError(f"a JWT is a string, not {type(token).__name__}")
    if len(token) > MAX_TOKEN_CHARS:
        raise MalformedTokenError(
            f"token {redact_secret(token)} is not a JWT: "
            f"it has more than {MAX_TOKEN_CHARS} characters"
        )
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedTokenError(
            f"token {redact_secret(token)} is not a JWT: "
            f"expected 3 dot-separated parts, got {len(parts)}"
        )
    try:
        payload = json.loads(_b64url_decode(parts[1]))
    except (binascii.Error, UnicodeError, ValueError, RecursionError) as exc:
        raise MalformedTokenError(
            f"token {redact_secret(token)} is not a JWT: its payload is not base64url JSON"
        ) from exc
    if not isinstance(payload, dict):
        raise MalformedTokenError(
            f"token {redact_secret(token)} is not a JWT: payload is not an object"
        )
    return payload


def _claims_exp(token: str) -> float:
    exp = decode_claims(token).get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise MalformedTokenError(f"token {redact_secret(token)} has no numeric exp claim")
    try:
        seconds = float(exp)
    except OverflowError:  # an integer too large for a float
        seconds = math.inf
    if not math.isfinite(seconds):
        raise MalformedTokenError(f"token {redact_secret(token)} has an exp claim out of range")
    return seconds


@lru_cache(maxsize=1024)
def _cached_exp(token: str) -> float | None:
    try:
        return _claims_exp(token)
    except MalformedTokenError:
        return None


def token_expiry(token: str) -> float:
    """Return the ``exp`` claim of ``token`` in Unix seconds; raise if there is none."""
    exp = _cached_exp(token)
    if exp is None:
        _claims_exp(token)  # raises the precise reason
        raise MalformedTokenError(f"token {redact_secret(token)} has no numeric exp claim")
    return exp


def token_expiry_or_none(token: str | None) -> float | None:
    """Return the ``exp`` claim of ``token``, or ``None`` when it is missing or malformed."""
    if not token or not isinstance(token, str):
        return None
    return _cached_exp(token)


__all__ = [
    "MAX_TOKEN_CHARS",
    "SECRET_PREFIX_CHARS",
    "decode_claims",
    "redact",
    "token_expiry",
    "token_expiry_or_none",
]
