"""Recognising session files in any store, without importing the protocol packages.

Maintenance (migrate, prune, doctor) works on stores that may hold both
protocols' sessions and foreign files. A session is recognised by its name:

- HAC: ``session_<32 hex>.json`` (md5 of ``base_url:username:environment``), the
  original hac-client-core's cache file, nine ``SessionMetadata`` fields;
- ATProto: ``did_<...>.json``, the Rust SDK's file, camelCase keys.

The shape checks here are deliberately the loaders' rules in miniature, so a
file they pass is one the protocol packages load.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import math
import re
from typing import Any

HAC_NAME = re.compile(r"^session_[0-9a-f]{32}\.json$")
ATPROTO_NAME = re.compile(r"^did_[A-Za-z0-9._%:-]+\.json$")


class SessionKind(enum.Enum):
    """Which protocol a session file belongs to."""

    HAC = "hac"
    ATPROTO = "atproto"


def kind_of(name: str) -> SessionKind | None:
    """Return the protocol of a store name, or ``None`` for a file that is no session."""
    if HAC_NAME.match(name):
        return SessionKind.HAC
    if ATPROTO_NAME.match(name):
        return SessionKind.ATPROTO
    return None


_HAC_FIELDS: dict[str, tuple[type, ...]] = {
    "session_id": (str,),
    "csrf_token": (str,),
    "route_cookie": (str, type(None)),
    "environment": (str,),
    "base_url": (str,),
    "username": (str,),
    "created_at": (int, float),
    "last_used_at": (int, float),
    "is_authenticated": (bool,),
}
_HAC_OPTIONAL = {"is_authenticated"}

_ATPROTO_FIELDS: dict[str, tuple[type, ...]] = {
    "accessJwt": (str,),
    "refreshJwt": (str,),
    "handle": (str,),
    "did": (str,),
    "email": (str, type(None)),
    "emailConfirmed": (bool, type(None)),
    "emailAuthFactor": (bool, type(None)),
    "active": (bool,),
    "status": (str, type(None)),
}
_ATPROTO_REQUIRED = {"accessJwt", "refreshJwt", "handle", "did"}


class ShapeError(ValueError):
    """A session file whose content is not what its name promises."""


def parse_session(kind: SessionKind, data: bytes) -> dict[str, Any]:
    """Return the JSON document of a session file, or raise :class:`ShapeError` saying why."""
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ShapeError("is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ShapeError(f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:  # json gives up on deep nesting this way, not with a ValueError
        raise ShapeError("nests too deeply to be a session") from None
    except ValueError:  # e.g. an integer of thousands of digits
        raise ShapeError("holds a number too long to be a session's") from None
    if not isinstance(document, dict):
        raise ShapeError(f"holds a JSON {type(document).__name__}, not an object")
    if kind is SessionKind.HAC:
        fields, required = _HAC_FIELDS, set(_HAC_FIELDS) - _HAC_OPTIONAL
        unknown = set(document) - set(fields)
        if unknown:
            raise ShapeError(f"has fields a HAC session does not have: {sorted(unknown)}")
    else:
        fields, required = _ATPROTO_FIELDS, _ATPROTO_REQUIRED
    missing = required - set(document)
    if missing:
        raise ShapeError(f"lacks the fields {sorted(missing)}")
    for key, types in fields.items():
        if key in document and (
            not isinstance(document[key], types)
            or (bool not in types and isinstance(document[key], bool))
        ):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ShapeError(f"has {key!r} of type {type(document[key]).__name__}, not {wanted}")
    if kind is SessionKind.HAC:
        for key in ("created_at", "last_used_at"):
            if not _finite(document[key]):
                raise ShapeError(f"has {key!r} out of range (not a finite time)")
    if kind is SessionKind.ATPROTO and not str(document["did"]).startswith("did:"):
        raise ShapeError("holds a 'did' that is not a DID")
    return document


def _finite(number: float) -> bool:
    """Whether ``number`` is a finite float, or an int that converts to one."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def jwt_expiry(token: str) -> float | None:
    """Return a JWT's ``exp`` claim (no signature check), or ``None`` if it has none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool) and _finite(exp):
        return float(exp)
    return None


__all__ = ["SessionKind", "ShapeError", "jwt_expiry", "kind_of", "parse_session"]
