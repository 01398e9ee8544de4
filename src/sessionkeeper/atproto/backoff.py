"""Fleet-wide backoff: a server's "wait until" is written to the store every process shares.

When createSession or a refresh is answered 429 with ``Retry-After`` or
``RateLimit-Reset``, one process learning it is not enough: every other
process sharing the store would knock once more each, and a fleet of N burns
N attempts per window of a budget (createSession: 30 per 5 minutes) that is
the account's, not the process's. So the answer's wait is stored in a small
record next to the session, capped at
`sessionkeeper.core.state.MAX_RETRY_AFTER`; every holder reads it
before it sends and waits instead. A refresh reads it under the session's
lock, so exactly one holder per window asks the server.

The records are not sessions: listings, ``store migrate``, ``prune`` and
``doctor`` ignore their names; a later success removes a spent one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from sessionkeeper.atproto.errors import RateLimitedError
from sessionkeeper.atproto.sidecar import RECORD_SUFFIX, beside_name, decode_record, finite_time
from sessionkeeper.core.flow import Delete, Flow, Get, Put
from sessionkeeper.core.lifetime import iso
from sessionkeeper.core.state import MAX_RETRY_AFTER
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

WAIT_PREFIX = "wait_"
WAIT_SUFFIX = RECORD_SUFFIX


@dataclass(frozen=True, slots=True)
class Wait:
    """Until when the server asked every client of this record to wait, and why."""

    until: float
    reason: str


def refresh_wait_name(session_name: str, did: str) -> str:
    """The record of the refreshes of ``did``'s session stored under ``session_name``."""
    return beside_name(WAIT_PREFIX, session_name, did)


def login_wait_name(service_url: str, identifier: str) -> str:
    """The record of createSession for ``identifier`` at ``service_url``.

    The reference server counts its budget per identifier exactly as sent; a
    digest keeps the e-mail address or handle out of the store's names.
    """
    key = f"{service_url.rstrip('/')}\n{identifier}".encode()
    return f"{WAIT_PREFIX}login_{hashlib.sha256(key).hexdigest()[:40]}{WAIT_SUFFIX}"


def encode_wait(wait: Wait) -> bytes:
    """Serialise a record."""
    return json.dumps({"until": wait.until, "reason": wait.reason}).encode()


def decode_wait(raw: bytes | None) -> Wait | None:
    """A stored record, or ``None`` when absent or unreadable (logged, then ignored)."""
    return decode_record(raw, _wait, "backoff")


def _wait(data: Any) -> Wait:
    return Wait(finite_time(data["until"], "until"), str(data.get("reason", "")))


def read_wait(name: str) -> Flow[Wait | None]:
    """Read the record ``name``."""
    return decode_wait((yield Get(name)))


def remaining(wait: Wait | None, now: float) -> float | None:
    """Seconds still to wait per ``wait``, or ``None`` when it has run out."""
    if wait is None:
        return None
    left = min(wait.until - now, MAX_RETRY_AFTER)  # a record from a skewed clock is capped too
    return left if left > 0 else None


def not_sent(what: str, name: str, wait: Wait, left: float) -> RateLimitedError:
    """The error for ``what`` held back by the record ``name``, with ``left`` seconds to go."""
    return RateLimitedError(
        f"{what} not sent: the server asked every client to wait until {iso(wait.until)} "
        f"({wait.reason}); {left:.0f} s more (recorded in the store as {name})",
        until=wait.until,
        retry_after=left,
        record=name,
    )


def record_wait(name: str, now: float, seconds: float, reason: str) -> Flow[None]:
    """Store that the server asked to wait ``seconds`` (capped) from ``now``."""
    until = now + min(max(seconds, 0.0), MAX_RETRY_AFTER)
    logger.warning(
        "the server asked to wait %.0f s (%s); every process sharing the store will",
        seconds,
        reason,
    )
    try:
        yield Put(name, encode_wait(Wait(until, reason)))
    except (StoreError, OSError) as exc:  # this process still waits (its own gate)
        logger.warning("could not store the wait in %s (%s)", name, exc)


def clear_wait(name: str, seen: Wait | None) -> Flow[None]:
    """Remove a spent record ``seen`` earlier (nothing to do when there was none)."""
    if seen is not None:
        yield Delete(name)
