"""Bounded HTTP: a total deadline per request and a cap on every answer's body.

Every HTTP client of sessionkeeper (HAC and ATProto, blocking and asyncio) is
built here, so a server that trickles bytes or sends an endless body costs a
caller at most its timeout and a few MiB.
"""

from sessionkeeper.http_limits.errors import DeadlineExceededError, ResponseTooLargeError
from sessionkeeper.http_limits.transport import (
    DEFAULT_MAX_BODY,
    MAX_BODY_EXTENSION,
    MIB,
    AsyncBoundedTransport,
    BoundedTransport,
    bounded_async_client,
    bounded_client,
)

__all__ = [
    "DEFAULT_MAX_BODY",
    "MAX_BODY_EXTENSION",
    "MIB",
    "AsyncBoundedTransport",
    "BoundedTransport",
    "DeadlineExceededError",
    "ResponseTooLargeError",
    "bounded_async_client",
    "bounded_client",
]
