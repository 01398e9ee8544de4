"""Servlet sessions and Spring Security CSRF tokens as the fake HAC keeps them.

Spring Security 6 (SAP Commerce 2211) renders the session's raw CSRF token
through ``XorCsrfTokenRequestAttributeHandler``: ``base64url(mask + (mask XOR
token))`` with a fresh random mask per request, so the rendered string differs
on every page while every rendering stays valid for the session.
"""

from __future__ import annotations

import base64
import hmac
import logging
import secrets
import threading
import uuid
from dataclasses import dataclass, field

from sessionkeeper.clock import Clock

logger = logging.getLogger(__name__)


def mask_csrf_token(raw: str) -> str:
    """Return one freshly XOR-masked rendering of ``raw`` (differs on every call)."""
    token = raw.encode("utf-8")
    mask = secrets.token_bytes(len(token))
    masked = bytes(a ^ b for a, b in zip(mask, token, strict=True))
    return base64.urlsafe_b64encode(mask + masked).decode("ascii")


def unmask_csrf_token(rendered: str) -> str | None:
    """Recover the raw token from a masked rendering, or ``None`` if it is not one."""
    try:
        padded = rendered + "=" * (-len(rendered) % 4)
        combined = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None
    if not combined or len(combined) % 2:
        return None
    half = len(combined) // 2
    raw = bytes(a ^ b for a, b in zip(combined[:half], combined[half:], strict=True))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def csrf_token_matches(raw: str, presented: str | None) -> bool:
    """True when ``presented`` is the raw token or any masked rendering of it."""
    if not presented:
        return False
    if hmac.compare_digest(presented.encode("utf-8"), raw.encode("utf-8")):
        return True
    unmasked = unmask_csrf_token(presented)
    return unmasked is not None and hmac.compare_digest(
        unmasked.encode("utf-8"), raw.encode("utf-8")
    )


def _new_session_id() -> str:
    # Tomcat's ids: 32 upper-case hex characters.
    return secrets.token_hex(16).upper()


@dataclass
class HacSession:
    """One servlet session: its id, CSRF secret, user and bookkeeping."""

    session_id: str
    csrf_raw: str
    node: str | None
    last_used: float
    user: str | None = None
    saved_request: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"HacSession(id={self.session_id[:6]}..., user={self.user!r}, node={self.node!r})"


class SessionTable:
    """Thread-safe sessions with an inactivity timeout measured by an injectable clock."""

    def __init__(self, clock: Clock, timeout: float) -> None:
        self._clock = clock
        self.timeout = timeout
        self._sessions: dict[str, HacSession] = {}
        self._guard = threading.Lock()

    def create(self, node: str | None) -> HacSession:
        """Start a new anonymous session on ``node``."""
        session = HacSession(
            session_id=_new_session_id(),
            csrf_raw=str(uuid.uuid4()),
            node=node,
            last_used=self._clock.time(),
        )
        with self._guard:
            self._sessions[session.session_id] = session
        return session

    def lookup(self, session_id: str | None, node: str | None) -> HacSession | None:
        """Return the live session for ``session_id`` and touch it, or ``None``.

        A session is dead when unknown, idle longer than ``timeout``, or
        created on another node than the one now serving (after a failover).
        """
        if not session_id:
            return None
        now = self._clock.time()
        with self._guard:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_used > self.timeout:
                logger.debug("session %s... timed out", session_id[:6])
                del self._sessions[session_id]
                return None
            if session.node != node:
                return None
            session.last_used = now
            return session

    def change_id(self, session: HacSession) -> HacSession:
        """Give ``session`` a new id and CSRF secret; the old id dies (fixation protection)."""
        with self._guard:
            self._sessions.pop(session.session_id, None)
            session.session_id = _new_session_id()
            session.csrf_raw = str(uuid.uuid4())
            session.last_used = self._clock.time()
            self._sessions[session.session_id] = session
        return session

    def invalidate(self, session_id: str) -> None:
        """Kill one session."""
        with self._guard:
            self._sessions.pop(session_id, None)

    def kill_all(self) -> None:
        """Kill every session, as a server restart does."""
        with self._guard:
            self._sessions.clear()

    def kill_node(self, node: str | None) -> None:
        """Kill every session that was created on ``node``."""
        with self._guard:
            for session_id in [s for s, v in self._sessions.items() if v.node == node]:
                del self._sessions[session_id]

    def count_authenticated(self, node: str | None) -> int:
        """Number of live logged-in sessions served by ``node``."""
        now = self._clock.time()
        with self._guard:
            return sum(
                1
                for s in self._sessions.values()
                if s.user is not None and s.node == node and now - s.last_used <= self.timeout
            )
