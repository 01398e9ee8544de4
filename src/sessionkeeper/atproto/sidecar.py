"""What every record kept beside an ATProto session shares: its name, and a tolerant read.

The refresh intent, the rate-limit wait and the issuer record each live in a
store entry of their own (see `sessionkeeper.atproto.records`). Each is named
after the session it belongs to, and each is read the same way: a record that
cannot be read is logged and ignored, never allowed to stop a refresh or a login.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import Any, TypeVar

from sessionkeeper.atproto.codec import did_name

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Every record is a JSON document.
RECORD_SUFFIX = ".json"


def beside_name(prefix: str, session_name: str, did: str) -> str:
    """The name of the ``prefix`` record of ``did``'s session stored as ``session_name``."""
    kind = session_name.split("did_", 1)[0]  # "" for password sessions, "oauth_" for OAuth
    return did_name(did, prefix + kind, RECORD_SUFFIX)


def finite_time(value: Any, field: str) -> float:
    """``value`` as seconds since the epoch; ``ValueError`` naming ``field`` if it is none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} is not a time")
    try:
        seconds = float(value)
    except OverflowError:  # an integer too large for a float
        seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError(f"{field} is not a time")
    return seconds


def decode_record(raw: bytes | None, parse: Callable[[Any], T], what: str) -> T | None:
    """``parse`` of the JSON in ``raw``; ``None`` when absent or unreadable (logged, ignored)."""
    if raw is None:
        return None
    try:
        return parse(json.loads(raw))
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        logger.warning("ignoring an unreadable %s record (%s)", what, type(exc).__name__)
        return None
