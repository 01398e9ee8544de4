"""Injectable clocks, so expiry, timeouts and refresh margins can be tested without sleeping."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock seconds since the epoch, and a way to wait."""

    def time(self) -> float:
        """Return the current Unix time in seconds."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        """Return ``time.time()``."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Call ``time.sleep``."""
        time.sleep(seconds)


class ManualClock:
    """A clock that moves only when told to; ``sleep`` advances it instantly."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._guard = threading.Lock()

    def time(self) -> float:
        """Return the clock's current time."""
        with self._guard:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        with self._guard:
            self._now += seconds

    def set(self, now: float) -> None:
        """Set the clock to ``now``."""
        with self._guard:
            self._now = now

    def sleep(self, seconds: float) -> None:
        """Advance instead of waiting."""
        self.advance(seconds)


SYSTEM_CLOCK = SystemClock()
