"""The part of both session managers that does no I/O: state, settings, events."""

from __future__ import annotations

from collections.abc import Callable

from sessionkeeper.atproto.state import SessionCallback, SessionState
from sessionkeeper.atproto.types import AtpSessionData


class SessionStateView:
    """Reads and switches of a manager's in-memory state, shared by the sync and async shells."""

    _state: SessionState

    def __repr__(self) -> str:
        session = self._state.session
        who = session.did if session else None
        return f"{type(self).__name__}({self._state.service_url!r}, session={who!r})"

    @property
    def session(self) -> AtpSessionData | None:
        """The current session, or ``None``."""
        return self._state.session

    @property
    def service_url(self) -> str:
        """The service (entryway or PDS) that creates and refreshes sessions."""
        return self._state.service_url

    @property
    def refresh_margin(self) -> float:
        """Seconds before the access token's exp at which it is refreshed."""
        return self._state.refresh_margin

    @property
    def auto_refresh(self) -> bool:
        """Whether calls refresh proactively and reactively."""
        return self._state.auto_refresh

    @property
    def pds_endpoint(self) -> str:
        """Where XRPC calls of the current session go (didDoc's PDS, else the service)."""
        session = self._state.session
        return self._state.endpoint(session.did) if session else self._state.service_url

    def enable_auto_refresh(self) -> None:
        """Turn proactive and reactive refresh on."""
        self._state.auto_refresh = True

    def disable_auto_refresh(self) -> None:
        """Turn proactive and reactive refresh off (calls use the token as it is)."""
        self._state.auto_refresh = False

    def needs_refresh(self) -> bool:
        """Whether the current access token is within ``refresh_margin`` of its exp."""
        return self._state.needs_refresh()

    def on_session_event(self, callback: SessionCallback) -> Callable[[], None]:
        """Subscribe ``callback(event, session | None)``; return an unsubscribe function."""
        return self._state.events.subscribe(callback)
