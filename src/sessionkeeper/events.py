"""A small event bus: several callbacks, and one that raises never breaks the caller."""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

E = TypeVar("E")
P = TypeVar("P")


class EventBus(Generic[E, P]):
    """Delivers ``(event, payload)`` to every subscribed callback, in subscription order."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[E, P], object]] = []
        self._guard = threading.Lock()

    def subscribe(self, callback: Callable[[E, P], object]) -> Callable[[], None]:
        """Add ``callback``; return a function that removes it again."""
        with self._guard:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._guard:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def emit(self, event: E, payload: P) -> None:
        """Call every callback; a callback's exception is logged and skipped."""
        with self._guard:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(event, payload)
            except Exception:
                # The caller's operation already happened; a listener's bug must not undo it.
                logger.exception("session event callback %r failed on %s", callback, event)

    def __len__(self) -> int:
        return len(self._callbacks)


class SessionEvent(enum.Enum):
    """What happened to a session; delivered to ``on_session_event`` callbacks."""

    CREATE = "create"  #: logged in, stored, or loaded
    CREATE_FAILED = "create-failed"  #: login failed
    UPDATE = "update"  #: tokens refreshed here, or a set refreshed elsewhere was adopted
    EXPIRED = "expired"  #: the server declared the refresh token dead; session removed
    DELETE = "delete"  #: cleared or logged out
    NETWORK_ERROR = "network-error"  #: refresh failed on network, 5xx or 429; session kept
    EXPIRING = "expiring"  #: the session's absolute end is near; sign in again before it
