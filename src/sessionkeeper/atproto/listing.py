"""Reading every stored session of each ATProto kind; one bad entry never hides the others."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from sessionkeeper.atproto.codec import is_session_name, load_named_session, name_for_did
from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.oauth.session import OAuthSession, is_oauth_name, load_named_oauth
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.stores.base import Store, readable_items
from sessionkeeper.stores.errors import StoreError

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


def sessions_named(store: Store, identifier: str) -> list[AtpSessionData]:
    """The stored password sessions that ``identifier`` (DID, handle or e-mail) may name.

    What a login or a resume looks through, without decoding a large store: a
    DID reads its own entry only; a handle or an ASCII e-mail decodes only the
    entries whose bytes mention it (case aside), and every other identifier
    falls back to the whole listing. Callers still match the identifier
    exactly; this only narrows what is decoded.
    """
    given = identifier.strip()
    if given.startswith("did:"):
        try:
            name = name_for_did(given)
        except ValueError:
            return []  # not a DID a session could be stored under: nothing to reuse
        return _one(store, name)
    needle = given.removeprefix("@").lower()
    if not needle or not needle.isascii():
        return stored_sessions(store)
    wanted = needle.encode()
    return by_did(
        decoded(name, raw, load_named_session)
        for name, raw in readable_items(store, is_session_name, what="ATProto session")
        if wanted in raw.lower()
    )


def _one(store: Store, name: str) -> list[AtpSessionData]:
    try:
        raw = store.get(name)
    except (StoreError, OSError) as exc:
        logger.warning("skipping ATProto session %s: %s", name, exc)
        return []
    return by_did([None if raw is None else decoded(name, raw, load_named_session)])
