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


def decoded(items: Iterable[tuple[str, bytes]], load: Callable[..., S]) -> list[S]:
    """The sessions ``load`` makes of stored ``(name, bytes)``, sorted by DID; corrupt ones skipped.

    For a caller that has read a store once for several kinds; each kind's
    ``load`` checks the value against its name, as the listings below do.
    """
    found: dict[str, S] = {}
    for name, raw in items:
        try:
            session = load(raw, name=name)
        except CorruptSessionError as exc:
            logger.warning("skipping %s", exc)
            continue
        found[session.did] = session
    return [found[did] for did in sorted(found)]


def stored_sessions(store: Store) -> list[AtpSessionData]:
    """Every valid password session in ``store``, sorted by DID.

    Names that are not session files are ignored; corrupt files, entries the
    store cannot read (oversized, undecryptable, foreign plaintext in an
    encrypted store) and files whose DID does not match their name are
    skipped with a warning, so one bad entry never hides the others.
    """
    return decoded(
        readable_items(store, is_session_name, what="ATProto session"), load_named_session
    )


def stored_oauth_sessions(store: Store) -> list[OAuthSession]:
    """Every valid OAuth session in ``store``, sorted by DID; bad entries skipped as above."""
    return decoded(readable_items(store, is_oauth_name, what="OAuth session"), load_named_oauth)
