"""In-memory state shared by the sync and async managers, and what each outcome does to it.

Holds the current session, the PDS endpoint learnt from didDoc, the
auto-refresh switch, the Retry-After gates and the event bus. Everything here
is free of I/O, so both managers apply outcomes the same way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sessionkeeper.atproto.core import (
    RefreshOutcome,
    RefreshResult,
    is_due,
    is_expired,
    same_pair,
)
from sessionkeeper.atproto.errors import (
    NoSessionError,
    SessionExpiredError,
    SessionNetworkError,
)
from sessionkeeper.atproto.types import AtpSessionData, AtpSessionEvent
from sessionkeeper.clock import Clock
from sessionkeeper.events import EventBus

logger = logging.getLogger(__name__)

SessionCallback = Callable[[AtpSessionEvent, AtpSessionData | None], object]


class SessionState:
    """The current session and the rules for changing it; thread-safe."""

    def __init__(
        self, *, service_url: str, refresh_margin: float, auto_refresh: bool, clock: Clock
    ):
        if refresh_margin < 0:
            raise ValueError(f"refresh_margin must be >= 0 seconds, not {refresh_margin}")
        self.service_url = service_url.rstrip("/")
        self.refresh_margin = float(refresh_margin)
        self.auto_refresh = auto_refresh
        self.clock = clock
        self.events: EventBus[AtpSessionEvent, AtpSessionData | None] = EventBus()
        self._session: AtpSessionData | None = None
        self._endpoints: dict[str, str] = {}
        self._not_before: dict[str, float] = {}
        self._guard = threading.Lock()

    # -- reading ------------------------------------------------------------------------

    @property
    def session(self) -> AtpSessionData | None:
        """The current session, or ``None``."""
        return self._session

    def require(self) -> AtpSessionData:
        """The current session, or :class:`NoSessionError`."""
        session = self._session
        if session is None:
            raise NoSessionError("no ATProto session: log in or load a session first")
        return session

    def endpoint(self, did: str) -> str:
        """Where XRPC calls for ``did`` go: its PDS from didDoc, else the service URL."""
        return self._endpoints.get(did, self.service_url)

    def needs_refresh(self, session: AtpSessionData | None = None) -> bool:
        """Whether ``session`` (default: the current one) is within the refresh margin."""
        session = session if session is not None else self._session
        if session is None:
            return False
        return is_due(session.access_jwt, self.clock.time(), self.refresh_margin)

    # -- changing -----------------------------------------------------------------------

    def become_current(self, session: AtpSessionData, endpoint: str | None = None) -> None:
        """Make ``session`` current (and remember its PDS endpoint, when known)."""
        with self._guard:
            self._session = session
            if endpoint:
                self._endpoints[session.did] = endpoint

    def forget(self, did: str) -> AtpSessionData | None:
        """Drop the current session if it belongs to ``did``; return what was dropped."""
        with self._guard:
            current = self._session
            if current is not None and current.did == did:
                self._session = None
                return current
            return None

    def emit(self, event: AtpSessionEvent, session: AtpSessionData | None) -> None:
        """Deliver ``event`` to every callback."""
        logger.debug("session event %s for %s", event.value, session.did if session else None)
        self.events.emit(event, session)

    # -- refresh ------------------------------------------------------------------------

    def check_gate(self, did: str) -> None:
        """Raise :class:`SessionNetworkError` while a server's Retry-After for ``did`` runs."""
        until = self._not_before.get(did)
        if until is None:
            return
        wait = until - self.clock.time()
        if wait > 0:
            raise SessionNetworkError(
                f"refresh of {did} not attempted: the server asked to wait {wait:.0f} s more",
                retry_after=wait,
            )
        with self._guard:
            self._not_before.pop(did, None)

    def refreshed_meanwhile(self, known: AtpSessionData) -> AtpSessionData | None:
        """The in-memory session if another thread already replaced ``known`` with a fresh pair."""
        current = self._session
        if (
            current is not None
            and current.did == known.did
            and not same_pair(current, known)
            and not is_expired(current.access_jwt, self.clock.time())
        ):
            return current
        return None

    def apply_refresh(self, known: AtpSessionData, result: RefreshResult) -> AtpSessionData:
        """Update memory and emit events for a refresh outcome; raise for failures.

        Memory changes only when the current account is still ``known.did``:
        a refresh that finishes after an account switch never overwrites the
        other account's session.
        """
        did = known.did
        if result.outcome in (RefreshOutcome.REFRESHED, RefreshOutcome.ADOPTED):
            session = result.session
            with self._guard:
                current = self._session
                already = current is not None and same_pair(current, session)
                if current is not None and current.did == did:
                    self._session = session
                if result.endpoint:
                    self._endpoints[did] = result.endpoint
                self._not_before.pop(did, None)
            if result.outcome is RefreshOutcome.REFRESHED:
                logger.info("refreshed the session of %s", did)
            if not already:
                self.emit(AtpSessionEvent.UPDATE, session)
            return session
        if result.outcome is RefreshOutcome.REMOVED:
            self.forget(did)
            reason = " ".join(part for part in (result.error, result.message) if part)
            logger.warning("session of %s is dead (%s); removed it", did, reason or result.status)
            self.emit(AtpSessionEvent.EXPIRED, result.session)
            raise SessionExpiredError(
                f"the session of {did} has expired or was revoked"
                f" (HTTP {result.status} {reason}); log in again",
                error=result.error,
                status=result.status,
            )
        # UNAVAILABLE: keep the session, remember the server's wish to wait.
        if result.retry_after:
            with self._guard:
                self._not_before[did] = self.clock.time() + result.retry_after
        detail = result.message or ""
        if result.status is not None:
            detail = f"HTTP {result.status} {result.error or ''} {detail}".strip()
        logger.warning("refresh of %s failed: %s; session kept", did, detail)
        self.emit(AtpSessionEvent.NETWORK_ERROR, result.session)
        raise SessionNetworkError(
            f"refresh of {did} failed ({detail}); the session was kept",
            status=result.status,
            retry_after=result.retry_after,
        )
