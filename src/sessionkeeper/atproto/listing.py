"""Reading every stored session: listing accounts and finding expired ones to prune."""

from __future__ import annotations

import logging

from sessionkeeper.atproto.codec import SESSION_PREFIX, SESSION_SUFFIX, decode_session, name_for_did
from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.stores.base import Store, iter_items

logger = logging.getLogger(__name__)


def stored_sessions(store: Store) -> list[AtpSessionData]:
    """Every valid session in ``store``, sorted by DID.

    Names that are not session files, corrupt files and files whose DID does
    not match their name are skipped (and logged), so one bad file never
    hides the others.
    """
    found: dict[str, AtpSessionData] = {}
    for name, raw in iter_items(store):
        if not (name.startswith(SESSION_PREFIX) and name.endswith(SESSION_SUFFIX)):
            continue
        try:
            session = decode_session(raw, name=name)
        except CorruptSessionError as exc:
            logger.warning("skipping %s", exc)
            continue
        if name_for_did(session.did) != name:
            logger.warning("skipping %s: it holds the session of %s", name, session.did)
            continue
        found[session.did] = session
    return [found[did] for did in sorted(found)]


def prunable(store: Store, now: float) -> list[AtpSessionData]:
    """Stored sessions whose refresh token is past its exp (no refresh can revive them)."""
    dead = []
    for session in stored_sessions(store):
        exp = session.refresh_expires_at
        if exp is not None and now >= exp:
            dead.append(session)
    return dead
