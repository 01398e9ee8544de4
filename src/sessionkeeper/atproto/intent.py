"""Lost refresh answers, detected: each refresh records what it sent before it sends.

A refresh rotates the token on the server; if the process dies, or the
connection drops, after the server answered and before the new pair is
stored, the store keeps a pair whose refresh token the server has spent. The
next holder used to see only a generic ``ExpiredToken`` or ``invalid_grant``.

So, under the session's lock and before it sends, a refresh writes an intent
record beside the session: when, and a digest of the refresh token it is about
to spend (never the token). Storing the new pair finishes it: from then on the
stored token no longer matches the record's digest. A holder that finds the
stored token still matching an earlier intent knows a previous refresh of that
very token never got its answer stored. It sends it anyway: an app-password
server inside its grace period answers with the same next pair, and the
session is recovered without a createSession; a server that refuses (no
grace, or an OAuth server, which treats the reuse as a replay) removes the
session, and the error says the answer was lost, and when.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from sessionkeeper.atproto.sidecar import RECORD_SUFFIX, beside_name, decode_record, finite_time
from sessionkeeper.core.flow import Flow, Get, Put
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

INTENT_PREFIX = "intent_"
INTENT_SUFFIX = RECORD_SUFFIX


@dataclass(frozen=True, slots=True)
class Intent:
    """A refresh about to spend the refresh token with ``digest``, begun at ``at``."""

    at: float
    digest: str


def intent_name(session_name: str, did: str) -> str:
    """The intent record of ``did``'s session stored under ``session_name``."""
    return beside_name(INTENT_PREFIX, session_name, did)


def token_digest(token: str) -> str:
    """A digest that recognises a token without revealing it."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def encode_intent(intent: Intent) -> bytes:
    """Serialise a record."""
    return json.dumps({"at": intent.at, "digest": intent.digest}).encode()


def decode_intent(raw: bytes | None) -> Intent | None:
    """A stored record, or ``None`` when absent or unreadable (logged, then ignored)."""
    return decode_record(raw, _intent, "refresh intent")


def _intent(data: Any) -> Intent:
    digest = data["digest"]
    if not isinstance(digest, str):
        raise ValueError("digest is not a string")
    return Intent(finite_time(data["at"], "at"), digest)


def begin_refresh(name: str, token: str, now: float) -> Flow[Intent | None]:
    """Under the session's lock: record that ``token`` is about to be sent.

    Returns the earlier intent when it was for this very token: a refresh that
    sent it and never stored the answer.
    """
    digest = token_digest(token)
    earlier = decode_intent((yield Get(name)))
    try:
        yield Put(name, encode_intent(Intent(now, digest)))
    except (StoreError, OSError) as exc:
        # The refresh matters more than its record: it goes ahead, undetectable if lost.
        logger.warning("could not record the refresh intent %s (%s); refreshing anyway", name, exc)
    return earlier if earlier is not None and earlier.digest == digest else None
