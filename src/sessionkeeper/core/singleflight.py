"""Lock, re-read, then adopt, produce or remove: the single flight every protocol runs.

Every holder of a shared session that finds it stale (an ATProto access token
due, an OAuth token set rejected, a HAC session answered with the login page)
runs `single_flight`. Under the store's lock for the session's name it
reads the stored value again. If another thread, process or machine renewed
it while we waited, that value is adopted as is; otherwise the protocol's
policy produces a new one (refresh, re-login), which is stored, or declares
the session dead, and it is removed. So the renewal, and the use of a one-time
refresh token, happens once among all holders.

A protocol supplies a `Policy`: how to decode, whether a stored value
is adoptable, which value to renew from, and how to produce (a flow that
classifies the server's answer as fresh, dead or unavailable).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sessionkeeper.core.flow import Delete, Flow, Get, Locked, Put
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

S = TypeVar("S")


class Verdict(enum.Enum):
    """What the server's answer to a renewal means for the session."""

    FRESH = "fresh"  #: a new value: store it
    DEAD = "dead"  #: the server declared the session dead: remove it
    UNAVAILABLE = "unavailable"  #: network error, 5xx or 429: keep the session, try later


@dataclass(frozen=True, slots=True)
class Produced(Generic[S]):
    """The classified result of one renewal attempt (see `Verdict`)."""

    verdict: Verdict
    value: S | None = None
    status: int | None = None
    error: str | None = None
    message: str | None = None
    retry_after: float | None = None
    failure: BaseException | None = None  #: the protocol's own error for a dead verdict


class Outcome(enum.Enum):
    """How a single flight ended."""

    ADOPTED = "adopted"  #: another holder had renewed; its value was taken over
    REFRESHED = "refreshed"  #: this holder produced and stored a new value
    REMOVED = "removed"  #: the server declared the session dead; it was removed
    UNAVAILABLE = "unavailable"  #: network error, 5xx or 429; the session was kept


@dataclass(frozen=True, slots=True)
class SingleFlightResult(Generic[S]):
    """What `single_flight` decided, the session it leaves, and what the server said."""

    outcome: Outcome
    session: S
    status: int | None = None
    error: str | None = None
    message: str | None = None
    retry_after: float | None = None
    failure: BaseException | None = None
    stored: bool = True  #: False when a new value could not be written (kept in memory)


class Policy(Protocol[S]):
    """The protocol-specific half of a single flight."""

    @property
    def name(self) -> str:
        """The store name of the session."""

    def decode(self, raw: bytes | None) -> S | None:
        """The stored session, or ``None`` when absent, corrupt or another account's."""

    def encode(self, value: S) -> bytes:
        """Serialise a new session for the store."""

    def adoptable(self, stored: S, known: S | None) -> bool:
        """Whether ``stored`` was renewed by another holder and can be used as is."""

    def base(self, stored: S | None, known: S | None) -> S | None:
        """The session to renew from: the newest one known (stored unless it is older)."""

    def produce(self, base: S | None) -> Flow[Produced[S]]:
        """Renew ``base`` (the only step that talks to the server) and classify the answer."""


class Successor(Protocol[S]):
    """What `write_back` needs: the name, the codec and the order of two values."""

    @property
    def name(self) -> str:
        """The store name of the session."""

    def decode(self, raw: bytes | None) -> S | None:
        """The stored session, or ``None`` when absent, corrupt or another account's."""

    def encode(self, value: S) -> bytes:
        """Serialise ``value`` for the store."""

    def replaces(self, value: S, stored: S) -> bool:
        """Whether ``value`` was renewed, directly or not, from ``stored``."""


def write_back(policy: Successor[S], value: S) -> Flow[bool]:
    """Store ``value``, a renewal whose write failed, if the store still holds what it renews.

    Under the lock, so no other holder's newer value or another sign-in is ever
    overwritten; returns whether it was written.
    """
    written: bool = yield Locked(policy.name, _write_back_locked(policy, value))
    return written


def _write_back_locked(policy: Successor[S], value: S) -> Generator[Any, Any, bool]:
    stored = policy.decode((yield Get(policy.name)))
    if stored is None or not policy.replaces(value, stored):
        return False  # removed, renewed by another holder, or replaced by a new sign-in
    yield Put(policy.name, policy.encode(value))
    return True


def single_flight(
    policy: Policy[S], known: S | None, *, lock_timeout: float | None = None
) -> Flow[SingleFlightResult[S]]:
    """Renew ``known`` at most once among all its holders (see the module docstring)."""
    result: SingleFlightResult[S] = yield Locked(
        policy.name, _under_lock(policy, known), lock_timeout
    )
    return result


def _under_lock(policy: Policy[S], known: S | None) -> Generator[Any, Any, SingleFlightResult[S]]:
    name = policy.name
    stored = policy.decode((yield Get(name)))
    if stored is not None and policy.adoptable(stored, known):
        return SingleFlightResult(Outcome.ADOPTED, stored)
    base = policy.base(stored, known)
    produced: Produced[S] = yield from policy.produce(base)

    def result(outcome: Outcome, session: S, *, stored: bool = True) -> SingleFlightResult[S]:
        return SingleFlightResult(
            outcome,
            session,
            status=produced.status,
            error=produced.error,
            message=produced.message,
            retry_after=produced.retry_after,
            failure=produced.failure,
            stored=stored,
        )

    if produced.verdict is Verdict.FRESH:
        fresh = produced.value
        if fresh is None:  # pragma: no cover - a policy bug
            raise TypeError("a fresh verdict without a value")
        try:
            yield Put(name, policy.encode(fresh))
        except (StoreError, OSError) as exc:
            # The server has renewed already: for rotating tokens the old refresh token
            # may be dead now, so dropping the new value would lose the session. Keep it
            # in memory; the next successful write stores it, and it is never replaced
            # by the older stored value (the policy's base/adoptable rules see to that).
            logger.error(
                "renewed %s but could not store the new tokens (%s); "
                "this process keeps them in memory",
                name,
                exc,
            )
            return result(Outcome.REFRESHED, fresh, stored=False)
        return result(Outcome.REFRESHED, fresh)
    if base is None:
        raise TypeError("a renewal without a base value can only be fresh")  # pragma: no cover
    if produced.verdict is Verdict.DEAD:
        if stored is not None:
            yield Delete(name)
        return result(Outcome.REMOVED, base)
    return result(Outcome.UNAVAILABLE, base)
