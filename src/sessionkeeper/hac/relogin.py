"""The HAC re-login as a single-flight policy: adopt a session another holder opened, or log in.

A HAC session dies with the server's restart, a node fail-over or 120 minutes
of idleness; every process sharing the cache then meets the dead session at
once. Each runs the core's single flight on the session's cache name: under
the lock it re-reads the cache, adopts a session that differs from the one
that died (another holder logged in already), and otherwise logs in once and
saves. A login refused for the stale session's user removes that session.
The login itself is a flow of ordinary requests (`login_flow`),
performed by the same driver as the lock and the store calls around it.
"""

from __future__ import annotations

from collections.abc import Callable

from sessionkeeper.clock import Clock
from sessionkeeper.core.flow import Flow
from sessionkeeper.core.singleflight import Produced, Verdict
from sessionkeeper.hac.errors import HacAuthenticationError
from sessionkeeper.hac.login import login_flow
from sessionkeeper.hac.session import (
    SessionMetadata,
    decode_session,
    encode_session,
    session_key,
    session_name,
)
from sessionkeeper.hac.urls import HacUrls


class HacRelogin:
    """The single-flight policy of one HAC session key (base URL, user, environment).

    ``known`` (the session that died, ``None`` on a cold start) is compared by
    session id: a cached session with another id was opened by someone else.
    ``force`` always logs in (a caller asked for fresh credentials to be checked).
    ``credentials`` is asked only when a login happens (a handler may prompt).
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        environment: str,
        *,
        urls: HacUrls,
        credentials: Callable[[], dict[str, str]],
        clock: Clock,
        force: bool = False,
    ) -> None:
        self.base_url = base_url
        self.username = username
        self.environment = environment
        self.name = session_name(base_url, username, environment)
        self._urls = urls
        self._credentials = credentials
        self._clock = clock
        self._force = force
        self._stored: SessionMetadata | None = None

    def decode(self, raw: bytes | None) -> SessionMetadata | None:
        """The cached session of exactly this key (corrupt or another key's: absent)."""
        session = decode_session(raw) if raw is not None else None
        if session is not None and session_key(session) != (
            self.base_url,
            self.username,
            self.environment,
        ):
            session = None
        self._stored = session
        return session

    def encode(self, value: SessionMetadata) -> bytes:
        """The original library's nine-field file."""
        return encode_session(value)

    def adoptable(self, stored: SessionMetadata, known: SessionMetadata | None) -> bool:
        """A cached session other than the one that died."""
        return not self._force and (known is None or stored.session_id != known.session_id)

    def base(
        self, stored: SessionMetadata | None, known: SessionMetadata | None
    ) -> SessionMetadata | None:
        """The cached session when it is the dead one itself (it is removed if login fails)."""
        if stored is not None and known is not None and stored.session_id == known.session_id:
            return stored
        return None

    def produce(self, base: SessionMetadata | None) -> Flow[Produced[SessionMetadata]]:
        """Log in (three requests, see `sessionkeeper.hac.login`) and build the session."""
        try:
            result = yield from login_flow(self._urls, self._credentials())
        except HacAuthenticationError as exc:
            if base is None:
                raise
            # The server refused the user and the cached session is the dead one.
            return Produced(Verdict.DEAD, failure=exc, message=str(exc))
        now = self._clock.time()
        return Produced(
            Verdict.FRESH,
            SessionMetadata(
                session_id=result.session_id,
                csrf_token=result.csrf_token,
                route_cookie=result.route_cookie,
                environment=self.environment,
                base_url=self.base_url,
                username=self.username,
                created_at=self._stored.created_at if self._stored is not None else now,
                last_used_at=now,
                is_authenticated=True,
            ),
        )
