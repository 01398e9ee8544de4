"""Fixed-window rate limits per key, with the ``RateLimit-*`` headers the reference sends."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from sessionkeeper.clock import Clock


@dataclass(frozen=True)
class Policy:
    """``points`` calls allowed per ``window`` seconds."""

    points: int
    window: float

    def header(self) -> str:
        """The ``RateLimit-Policy`` value, e.g. ``30;w=300``."""
        return f"{self.points};w={int(self.window)}"


@dataclass(frozen=True)
class RateDecision:
    """The verdict on one call and the headers that describe it."""

    allowed: bool
    policy: Policy
    remaining: int
    reset: int
    retry_after: int

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` headers, plus ``Retry-After`` when the call was refused."""
        headers = {
            "RateLimit-Limit": str(self.policy.points),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": self.policy.header(),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


@dataclass
class _Window:
    start: float
    used: int


class FixedWindowLimiter:
    """Several policies on one key; a call passes only if every policy has room.

    Like the reference's limiter, a window opens at the first call on a key and
    closes ``window`` seconds later; a refused call consumes nothing. The headers
    describe the tightest policy (the one with the fewest calls left).
    """

    def __init__(self, policies: list[Policy], clock: Clock) -> None:
        self._policies = policies
        self._clock = clock
        self._windows: dict[tuple[Policy, str], _Window] = {}
        self._guard = threading.Lock()

    def consume(self, key: str) -> RateDecision:
        """Count one call on ``key`` if allowed; return the decision either way."""
        now = self._clock.time()
        with self._guard:
            windows = [self._window(policy, key, now) for policy in self._policies]
            for policy, window in zip(self._policies, windows, strict=True):
                if window.used >= policy.points:
                    reset = window.start + policy.window
                    return RateDecision(
                        allowed=False,
                        policy=policy,
                        remaining=0,
                        reset=math.ceil(reset),
                        retry_after=max(1, math.ceil(reset - now)),
                    )
            for window in windows:
                window.used += 1
            tightest, window = min(
                zip(self._policies, windows, strict=True),
                key=lambda pair: pair[0].points - pair[1].used,
            )
            return RateDecision(
                allowed=True,
                policy=tightest,
                remaining=tightest.points - window.used,
                reset=math.ceil(window.start + tightest.window),
                retry_after=0,
            )

    def _window(self, policy: Policy, key: str, now: float) -> _Window:
        window = self._windows.get((policy, key))
        if window is None or now >= window.start + policy.window:
            window = _Window(start=now, used=0)
            self._windows[(policy, key)] = window
        return window
