"""The two ways a bounded HTTP exchange is cut short, as httpx errors callers already catch.

Both subclass an ``httpx`` transport error, so every ``except httpx.HTTPError``
that turns network trouble into a "session kept, try later" error keeps doing
so, and `SessionkeeperError`, so they can be
caught by name.
"""

from __future__ import annotations

import httpx

from sessionkeeper.errors import SessionkeeperError


class DeadlineExceededError(httpx.TimeoutException, SessionkeeperError):
    """The whole exchange (connect, send, headers, body) took longer than its deadline."""


class ResponseTooLargeError(httpx.TransportError, SessionkeeperError):
    """The answer's body is larger than the cap set for this request."""


__all__ = ["DeadlineExceededError", "ResponseTooLargeError"]
