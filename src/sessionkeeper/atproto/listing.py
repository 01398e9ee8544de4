"""Reading every stored session of each ATProto kind; one bad entry never hides the others."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from sessionkeeper.atproto.codec import is_session_name, load_named_session
from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.oauth.session import OAuthSession, is_oauth_name, load_named_oauth
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.stores.base import Store, readable_items

logger = logging.getLogger(__name__)


S = TypeVar("S", AtpSessionData, OAuthSession)


def decoded(name: str, raw: bytes, load: Callable[..., S]) -> S | None:
    """The session ``load`` makes of the value stored as ``name``; ``None`` (warned) if corrupt.

    ``load`` checks the value against its name. With ``by_did``, for a caller
    that reads a store once for several kinds, as the listings below do for one.
    """
    try:
        return load(raw, name=name)
    except CorruptSessionError as exc:
        logger.warning("skipping %s", exc)
        return None


def by_did(sessions: Iterable[S | None]) -> list[S]:
    """The sessions (``None`` dropped), one per DID, the last read winning, sorted by DID."""
    found = {session.did: session for session in sessions if session is not None}
    return [found[did] for did in sorted(found)]


def _stored(
    store: Store, wanted: Callable[[str], bool], load: Callable[..., S], what: str
) -> list[S]:
    return by_did(
        decoded(name, raw, load) for name, raw in readable_items(store, wanted, what=what)
    )


def stored_sessions(store: Store) -> list[AtpSessionData]:
    """Every valid password session in ``store``, sorted by DID.

    Names that are not session files are ignored; corrupt files, entries the
    store cannot read (oversized, undecryptable, foreign plaintext in an
    encrypted store) and files whose DID does not match their name are
    skipped with a warning, so one bad entry never hides the others.
    """
    return _stored(store, is_session_name, load_named_session, "ATProto session")


def stored_oauth_sessions(store: Store) -> list[OAuthSession]:
    """Every valid OAuth session in ``store``, sorted by DID; bad entries skipped as above."""
    return _stored(store, is_oauth_name, load_named_oauth, "OAuth session")
