"""A per-request deadline every socket operation obeys, sync and async alike.

httpcore reads a response's headers inside one call, handing each socket read
the same per-read timeout: a server that sends one byte a second never trips
it. So the deadline lives below httpcore, in its network backend: each
connect, read, write and TLS handshake gets ``min(its own timeout, time left)``,
and none starts once the time is up. The request's deadline is carried by a
context variable, which is per thread for blocking clients and per task for
asyncio ones, so one connection pool serves concurrent requests correctly.
"""

from __future__ import annotations

import contextvars
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpcore

#: Monotonic time by which the current request must be done, if any.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sessionkeeper_http_deadline", default=None
)

SocketOption = Any  # httpcore's SOCKET_OPTION union


@contextmanager
def deadline_at(when: float) -> Iterator[None]:
    """Make ``when`` (``time.monotonic()`` seconds) the deadline of socket work inside."""
    token = _deadline.set(when)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline, ``None`` when there is none."""
    when = _deadline.get()
    return None if when is None else when - time.monotonic()


def clamp(timeout: float | None, error: type[Exception] = httpcore.ReadTimeout) -> float | None:
    """``timeout`` shortened to the time left; raise ``error`` when none is left."""
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise error("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A blocking stream whose every operation ends by the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read at most ``max_bytes`` before the per-read timeout or the deadline."""
        return self._inner.read(max_bytes, clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write ``buffer`` before the per-write timeout or the deadline."""
        self._inner.write(buffer, clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        """Close the socket."""
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """Handshake before the deadline; the TLS stream obeys it too."""
        tls = self._inner.start_tls(
            ssl_context, server_hostname, clamp(timeout, httpcore.ConnectTimeout)
        )
        return DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        """What the socket underneath says (``ssl_object``, ``is_readable``...)."""
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking backend with `DeadlineStream` connections."""

    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect before the deadline."""
        stream = self._inner.connect_tcp(
            host, port, clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect before the deadline."""
        stream = self._inner.connect_unix_socket(
            path, clamp(timeout, httpcore.ConnectTimeout), socket_options
        )
        return DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's connect retries)."""
        self._inner.sleep(seconds)


class AsyncDeadlineStream(httpcore.AsyncNetworkStream):
    """An asyncio/trio stream whose every operation ends by the request's deadline."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read at most ``max_bytes`` before the per-read timeout or the deadline."""
        return await self._inner.read(max_bytes, clamp(timeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write ``buffer`` before the per-write timeout or the deadline."""
        await self._inner.write(buffer, clamp(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        """Close the socket."""
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Handshake before the deadline; the TLS stream obeys it too."""
        tls = await self._inner.start_tls(
            ssl_context, server_hostname, clamp(timeout, httpcore.ConnectTimeout)
        )
        return AsyncDeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        """What the socket underneath says (``ssl_object``, ``is_readable``...)."""
        return self._inner.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """httpcore's async backend with `AsyncDeadlineStream` connections."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect before the deadline."""
        stream = await self._inner.connect_tcp(
            host, port, clamp(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return AsyncDeadlineStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect before the deadline."""
        stream = await self._inner.connect_unix_socket(
            path, clamp(timeout, httpcore.ConnectTimeout), socket_options
        )
        return AsyncDeadlineStream(stream)

    async def sleep(self, seconds: float) -> None:
        """Sleep (httpcore's connect retries)."""
        await self._inner.sleep(seconds)


__all__ = [
    "AsyncDeadlineBackend",
    "AsyncDeadlineStream",
    "DeadlineBackend",
    "DeadlineStream",
    "clamp",
    "deadline_at",
    "remaining",
]
