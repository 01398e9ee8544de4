"""The in-memory state of a session manager, and what each single-flight outcome does to it.

Holds the current session, the auto-refresh switch, the Retry-After gates and
the event bus, generic over the session type (an ATProto password pair, an
OAuth token set). Everything here is free of I/O, so the blocking and the
asyncio managers of every kind apply outcomes the same way.
"""

from __future__ import annotations

import logging
import threading
from typing import Generic, Protocol, TypeVar

from sessionkeeper.clock import Clock
from sessionkeeper.core.lifetime import Lifetime, iso
from sessionkeeper.core.singleflight import Outcome, SingleFlightResult
from sessionkeeper.events import EventBus, SessionEvent

logger = logging.getLogger(__name__)

S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)

#: The longest wait a server's Retry-After may impose on refreshes (1 hour): a hostile
#: or broken answer (a ``Retry-After`` of 1e9) must not block a long-running process
#: forever. XRPC answers are capped to it as they are read, and the gate again here.
MAX_RETRY_AFTER = 3600.0

#: How long before a session's absolute end the ``expiring`` event warns (3 days).
DEFAULT_EXPIRING_WITHIN = 3 * 86400.0


class SessionKind(Protocol[S_contra]):
    """What the state needs to know of one session type."""

    label: str  #: how errors name it ("session", "OAuth session")
    remedy: str  #: what a user does when it is dead ("log in again")

    def account(self, session: S_contra) -> str:
        """The account the session belongs to (a DID)."""

    def same(self, a: S_contra, b: S_contra) -> bool:
        """Whether two sessions hold the same tokens."""

    def expires_at(self, session: S_contra) -> float | None:
        """When the access token expires (``None``: unknown, then never proactively due)."""

    def lifetime(self, session: S_contra) -> Lifetime:
        """When the access token, the refresh token and the whole session end."""


class SessionState(Generic[S]):
    """The current session and the rules for changing it; thread-safe."""

    def __init__(
        self,
        kind: SessionKind[S],
        *,
        refresh_margin: float,
        auto_refresh: bool,
        clock: Clock,
        errors: StateErrors,
    ) -> None:
        if refresh_margin < 0:
            raise ValueError(f"refresh_margin must be >= 0 seconds, not {refresh_margin}")
        self.kind = kind
        self.refresh_margin = float(refresh_margin)
        self.auto_refresh = auto_refresh
        self.clock = clock
        self.errors = errors
        self.events: EventBus[SessionEvent, S | None] = EventBus()
        self._session: S | None = None
        self._not_before: dict[str, float] = {}
        #: A set this holder renewed but could not store: written back on the next use.
        self._unstored: S | None = None
        self._guard = threading.Lock()
        #: Warn with ``expiring`` once the session's absolute end is this close (seconds).
        self.expiring_within = DEFAULT_EXPIRING_WITHIN
        self._warned: set[tuple[str, float]] = set()

    # -- reading ------------------------------------------------------------------------

    @property
    def session(self) -> S | None:
        """The current session, or ``None``."""
        return self._session

    def require(self) -> S:
        """The current session, or the kind's "no session" error."""
        session = self._session
        if session is None:
            raise self.errors.no_session(
                f"no {self.kind.label}: log in, authorize or load a session first"
            )
        return session

    def is_due(self, session: S, margin: float) -> bool:
        """Whether ``session``'s access token expires within ``margin`` seconds."""
        exp = self.kind.expires_at(session)
        return exp is not None and self.clock.time() > exp - margin

    def is_expired(self, session: S) -> bool:
        """Whether ``session``'s access token is past its expiry (unknown: not expired)."""
        exp = self.kind.expires_at(session)
        return exp is not None and self.clock.time() >= exp

    def needs_refresh(self, session: S | None = None) -> bool:
        """Whether ``session`` (default: the current one) is within the refresh margin."""
        session = session if session is not None else self._session
        return session is not None and self.is_due(session, self.refresh_margin)

    # -- changing -----------------------------------------------------------------------

    def become_current(self, session: S) -> None:
        """Make ``session`` current."""
        with self._guard:
            self._session = session

    def forget(self, account: str) -> S | None:
        """Drop the current session if it belongs to ``account``; return what was dropped."""
        with self._guard:
            current = self._session
            if current is not None and self.kind.account(current) == account:
                self._session = None
                return current
            return None

    def unstored(self) -> S | None:
        """The current session if it is a renewal whose store write failed, else ``None``."""
        with self._guard:
            pending, current = self._unstored, self._session
            if pending is not None and current is not None and self.kind.same(pending, current):
                return pending
            return None

    def stored_back(self, session: S) -> None:
        """Forget that ``session`` awaits its write (it was written, or is superseded)."""
        with self._guard:
            if self._unstored is not None and self.kind.same(self._unstored, session):
                self._unstored = None

    def emit(self, event: SessionEvent, session: S | None) -> None:
        """Deliver ``event`` to every callback."""
        who = self.kind.account(session) if session is not None else None
        logger.debug("session event %s for %s", event.value, who)
        self.events.emit(event, session)

    def warn_if_ending(self, session: S) -> None:
        """Emit ``expiring`` (once per session end) when the absolute end is near.

        No refresh moves that end, so the warning is the app's cue to have its
        user sign in again before it; sessions without one never warn.
        """
        end = self.kind.lifetime(session).session_ends_at
        if end is None or end - self.clock.time() > self.expiring_within:
            return
        account = self.kind.account(session)
        with self._guard:
            if (account, end) in self._warned:
                return
            self._warned.add((account, end))
        logger.warning(
            "the %s of %s ends at %s; %s before then",
            self.kind.label,
            account,
            iso(end),
            self.kind.remedy,
        )
        self.emit(SessionEvent.EXPIRING, session)

    # -- refresh ------------------------------------------------------------------------

    def check_gate(self, account: str) -> None:
        """Raise the kind's network error while a server's Retry-After for ``account`` runs."""
        until = self._not_before.get(account)
        if until is None:
            return
        wait = until - self.clock.time()
        if wait > 0:
            raise self.errors.network(
                f"refresh of {account} not attempted: the server asked to wait {wait:.0f} s more",
                status=None,
                retry_after=wait,
            )
        with self._guard:
            self._not_before.pop(account, None)

    def refreshed_meanwhile(self, known: S) -> S | None:
        """The in-memory session if another thread already replaced ``known`` with a fresh one."""
        current = self._session
        if (
            current is not None
            and self.kind.account(current) == self.kind.account(known)
            and not self.kind.same(current, known)
            and not self.is_expired(current)
        ):
            return current
        return None

    def adopt(self, known: S, session: S) -> bool:
        """Make ``session`` current while ``known``'s account still is; return if it is new.

        A refresh that finishes after an account switch never overwrites the other
        account's session.
        """
        account = self.kind.account(known)
        with self._guard:
            current = self._session
            already = current is not None and self.kind.same(current, session)
            if current is not None and self.kind.account(current) == account:
                self._session = session
            self._not_before.pop(account, None)
        return not already

    def apply(self, known: S, result: SingleFlightResult[S]) -> S:
        """Update memory and emit events for a single-flight outcome; raise for failures."""
        account = self.kind.account(known)
        label = self.kind.label
        if result.outcome in (Outcome.REFRESHED, Outcome.ADOPTED):
            session = result.session
            if result.outcome is Outcome.REFRESHED:
                logger.info("refreshed the %s of %s", label, account)
            with self._guard:
                # A renewal that is only in memory must reach the store on the next use:
                # another holder restoring meanwhile would replay the spent token.
                self._unstored = session if not result.stored else None
            if self.adopt(known, session):
                self.emit(SessionEvent.UPDATE, session)
            return session
        if result.outcome is Outcome.REMOVED:
            self.forget(account)
            reason = " ".join(part for part in (result.error, result.message) if part)
            logger.warning("%s of %s is dead (%s); removed it", label, account, reason)
            self.emit(SessionEvent.EXPIRED, result.session)
            if result.failure is not None:  # the protocol's own words for the verdict
                raise result.failure
            raise self.errors.expired(
                f"the {label} of {account} has expired or was revoked"
                f" (HTTP {result.status} {reason}); {self.kind.remedy}",
                error=result.error,
                status=result.status,
            )
        # UNAVAILABLE: keep the session, remember the server's wish to wait (capped).
        wait = min(result.retry_after, MAX_RETRY_AFTER) if result.retry_after else None
        if wait:
            with self._guard:
                self._not_before[account] = self.clock.time() + wait
        detail = result.message or ""
        if result.status is not None:
            detail = " ".join(p for p in (f"HTTP {result.status}", result.error, detail) if p)
        logger.warning("refresh of the %s of %s failed: %s; kept it", label, account, detail)
        self.emit(SessionEvent.NETWORK_ERROR, result.session)
        if result.failure is not None:  # the protocol's own words (e.g. a recorded wait)
            raise result.failure
        raise self.errors.network(
            f"refresh of {account} failed ({detail}); the {label} was kept",
            status=result.status,
            retry_after=wait,
        )


class NoSessionFactory(Protocol):
    """Builds the kind's "no session" error."""

    def __call__(self, message: str, /) -> Exception:
        """The error for ``message``."""


class ExpiredFactory(Protocol):
    """Builds the kind's "session dead" error."""

    def __call__(self, message: str, /, *, error: str | None, status: int | None) -> Exception:
        """The error for ``message``."""


class NetworkFactory(Protocol):
    """Builds the kind's "try later" error."""

    def __call__(
        self, message: str, /, *, status: int | None, retry_after: float | None
    ) -> Exception:
        """The error for ``message``."""


class StateErrors:
    """The error classes a state raises, so each protocol keeps its own hierarchy."""

    def __init__(
        self, *, no_session: NoSessionFactory, expired: ExpiredFactory, network: NetworkFactory
    ) -> None:
        self.no_session = no_session
        self.expired = expired
        self.network = network
