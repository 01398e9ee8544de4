"""What the shared ATProto machinery needs of a kind of session, and the rules every kind shares.

A kind tells the state, the single flight and the call loop what it needs of
one session type: the account, whether two sessions hold the same tokens,
when the access token expires, how sessions are named, stored and listed, and
which of two sets of one account is newer. The kinds themselves live with
their protocol: `sessionkeeper.atproto.password.kind` and
`sessionkeeper.atproto.oauth.kind`.
"""

from __future__ import annotations

import logging
from typing import Protocol, TypeVar

from sessionkeeper.atproto.errors import (
    CorruptSessionError,
    NoSessionError,
    SessionExpiredError,
    SessionNetworkError,
)
from sessionkeeper.core.state import StateErrors
from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)


S = TypeVar("S")


#: The errors every ATProto manager raises, whatever its kind.
ATPROTO_ERRORS = StateErrors(
    no_session=NoSessionError,
    expired=SessionExpiredError,
    network=SessionNetworkError,
)


class AtprotoKind(Protocol[S]):
    """A session type as the managers see it."""

    label: str
    remedy: str

    def account(self, session: S) -> str:
        """The DID the session belongs to."""

    def same(self, a: S, b: S) -> bool:
        """Whether two sessions hold the same tokens."""

    def expires_at(self, session: S) -> float | None:
        """When the access token expires."""

    def newer(self, a: S, b: S) -> bool:
        """Whether ``a`` is a later rotation than ``b`` (two sets of one account).

        Never judged by a local clock: holders on machines whose clocks differ
        must agree on it.
        """

    def name(self, did: str) -> str:
        """The store name of ``did``'s session."""

    def encode(self, session: S) -> bytes:
        """Serialise for the store."""

    def decode(self, raw: bytes, *, name: str) -> S:
        """Parse stored bytes; raise `CorruptSessionError` naming ``name``."""

    def dead(self, session: S, now: float) -> str | None:
        """Why no refresh can revive ``session`` any more, or ``None`` while it may be used.

        The one rule for the kind: the managers' pruning, ``store prune`` and
        ``store doctor`` all ask it.
        """

    def stored(self, store: Store) -> list[S]:
        """Every valid stored session of this kind, sorted by DID; bad entries skipped."""


def read_stored(kind: AtprotoKind[S], raw: bytes | None, name: str, did: str) -> S | None:
    """Decode a stored session for ``did``; corrupt or foreign data reads as absent (logged)."""
    if raw is None:
        return None
    try:
        stored = kind.decode(raw, name=name)
    except CorruptSessionError as exc:
        logger.warning("ignoring stored %s: %s", kind.label, exc)
        return None
    if kind.account(stored) != did:
        logger.warning("%s %s belongs to %s, not %s; ignoring it", kind.label, name, stored, did)
        return None
    return stored


def newest(kind: AtprotoKind[S], *sessions: S | None) -> S | None:
    """The newest of ``sessions`` by ``kind.newer`` (``None`` ones skipped).

    Sets that are not ordered go to the one given first: callers name the stored
    set first, since the store is where every holder's rotation lands.
    """
    best: S | None = None
    for session in sessions:
        if session is not None and (best is None or kind.newer(session, best)):
            best = session
    return best
