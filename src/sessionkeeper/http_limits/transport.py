"""httpx transports that give every request a total deadline and every answer a size cap.

Wrap any httpx transport: the request as a whole (connect, upload, headers,
body) must end within ``timeout`` seconds, and the body is counted while it
streams, so a hostile or broken server can neither hold a caller (and the
store lock it may hold) past its timeout nor fill its memory. Each request may
carry its own cap in ``request.extensions[MAX_BODY_EXTENSION]`` (HAC console
results are allowed more than a login page).

For httpx's own transports the deadline also reaches every socket operation
(see `sessionkeeper.http_limits.deadline`); a header trickle is cut at
the deadline, not after it. For any other transport it is checked between
body chunks.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from sessionkeeper.http_limits.deadline import AsyncDeadlineBackend, DeadlineBackend, deadline_at
from sessionkeeper.http_limits.errors import DeadlineExceededError, ResponseTooLargeError
from sessionkeeper.redaction import origin

MIB = 1024 * 1024
#: Cap of a JSON or HTML answer: sessions, XRPC results and HAC pages are far smaller.
DEFAULT_MAX_BODY = 4 * MIB
#: Request extension holding a per-request body cap in bytes (an ``int``).
MAX_BODY_EXTENSION = "sessionkeeper.max_body"
# A socket timeout set to the time left may wake a hair before the deadline.
_SLACK = 0.02
#: The encodings bounded clients accept: the ones whose decoded size is counted too.
ACCEPT_ENCODING = "gzip, deflate"
_COUNTED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})


def _origin(request: httpx.Request) -> str:
    # Scheme, host and port only: paths and queries may carry session ids.
    return origin(str(request.url))


class _DecodedSize:
    """Counts what a gzip/deflate body decodes to (httpx decodes it later, unbounded),
    so a small compressed answer cannot expand past the cap: a decompression bomb."""

    def __init__(self) -> None:
        # 32 + MAX_WBITS: a gzip or a zlib header, told apart by the data.
        self._decoder: zlib._Decompress | None = zlib.decompressobj(32 + zlib.MAX_WBITS)
        self._raw_tried = False
        self.size = 0

    def feed(self, data: bytes, limit: int) -> int:
        """Decode ``data`` (output discarded), stopping once past ``limit``; the size so far."""
        while data and self._decoder is not None and self.size <= limit:
            try:
                self.size += len(self._decoder.decompress(data, 65536))
            except zlib.error:
                if self._raw_tried or self.size:
                    self._decoder = None  # corrupt: httpx itself will raise DecodingError
                    break
                # Some servers send "deflate" without its zlib header.
                self._raw_tried = True
                self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            data = self._decoder.unconsumed_tail
        return self.size


@dataclass
class _Budget:
    """The deadline and byte allowance of one request, and the errors that end it."""

    request: httpx.Request
    timeout: float
    deadline: float
    max_body: int
    received: int = 0
    decoded: _DecodedSize | None = None

    @classmethod
    def start(cls, request: httpx.Request, timeout: float, default_max_body: int) -> _Budget:
        cap = request.extensions.get(MAX_BODY_EXTENSION, default_max_body)
        budget = cls(request, timeout, time.monotonic() + timeout, int(cap))
        # The pool wait comes first and is computed once: it may not exceed the total.
        timeouts = dict(request.extensions.get("timeout") or {})
        pool = timeouts.get("pool")
        timeouts["pool"] = timeout if pool is None else min(pool, timeout)
        request.extensions = {**request.extensions, "timeout": timeouts}
        return budget

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline - _SLACK

    def deadline_error(self) -> DeadlineExceededError:
        return DeadlineExceededError(
            f"{self.request.method} to {_origin(self.request)} got no complete answer "
            f"within its {self.timeout:g} s deadline",
            request=self.request,
        )

    def translate(self, exc: httpx.TimeoutException) -> httpx.TimeoutException:
        """The deadline error if the deadline is what ran out, else ``exc`` itself."""
        return self.deadline_error() if self.expired() else exc

    def too_large(self, size: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the answer of {_origin(self.request)} to {self.request.method} has more than "
            f"{self.max_body} bytes (at least {size}); refusing to read it",
            request=self.request,
        )

    def check_headers(self, response: httpx.Response) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            raise self.too_large(int(declared))
        # httpx decodes every encoding the header lists, in turn: only one counted one
        # (or none) is readable within the cap.
        listed = response.headers.get("content-encoding", "").lower().split(",")
        encodings = [e.strip() for e in listed if e.strip() not in ("", "identity")]
        if not encodings:
            return
        if len(encodings) > 1 or encodings[0] not in _COUNTED_ENCODINGS:
            raise ResponseTooLargeError(
                f"the answer of {_origin(self.request)} to {self.request.method} is encoded "
                f"{', '.join(encodings)!r}, whose decoded size cannot be bounded (asked for "
                f"{ACCEPT_ENCODING}); refusing to read it",
                request=self.request,
            )
        self.decoded = _DecodedSize()

    def count(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.max_body:
            raise self.too_large(self.received)
        if self.decoded is not None and self.decoded.feed(chunk, self.max_body) > self.max_body:
            raise self.too_large(self.decoded.size)
        if time.monotonic() > self.deadline:
            raise self.deadline_error()


def _bound_backend(transport: object) -> None:
    """Put the deadline under every socket operation of an httpx transport's pool."""
    # httpx does not expose its connection pool's network backend; it is read on
    # each new connection (plain pool and proxy pools alike), so swapping it here
    # covers every connection the transport will open.
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, DeadlineBackend | AsyncDeadlineBackend):
        return
    if isinstance(backend, httpcore.NetworkBackend):
        pool._network_backend = DeadlineBackend(backend)  # type: ignore[union-attr]
    elif isinstance(backend, httpcore.AsyncNetworkBackend):
        pool._network_backend = AsyncDeadlineBackend(backend)  # type: ignore[union-attr]


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        while True:
            with deadline_at(self._budget.deadline):
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
                except httpx.TimeoutException as exc:
                    raise self._budget.translate(exc) from exc
            self._budget.count(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncBoundedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, budget: _Budget) -> None:
        self._inner = inner
        self._budget = budget

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = self._inner.__aiter__()
        while True:
            with deadline_at(self._budget.deadline):
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    return
                except httpx.TimeoutException as exc:
                    raise self._budget.translate(exc) from exc
            self._budget.count(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class BoundedTransport(httpx.BaseTransport):
    """A blocking transport whose requests end within ``timeout`` s with at most ``max_body``."""

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        *,
        timeout: float,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._inner = inner if inner is not None else httpx.HTTPTransport()
        self.timeout = float(timeout)
        self.max_body = max_body
        _bound_backend(self._inner)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; its answer streams under the same deadline and cap."""
        budget = _Budget.start(request, self.timeout, self.max_body)
        with deadline_at(budget.deadline):
            try:
                response = self._inner.handle_request(request)
            except httpx.TimeoutException as exc:
                raise budget.translate(exc) from exc
        try:
            budget.check_headers(response)
        except ResponseTooLargeError:
            response.close()
            raise
        assert isinstance(response.stream, httpx.SyncByteStream)
        response.stream = _BoundedStream(response.stream, budget)
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self._inner.close()


class AsyncBoundedTransport(httpx.AsyncBaseTransport):
    """An async transport whose requests end within ``timeout`` s with at most ``max_body``."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        timeout: float,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self.timeout = float(timeout)
        self.max_body = max_body
        _bound_backend(self._inner)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; its answer streams under the same deadline and cap."""
        budget = _Budget.start(request, self.timeout, self.max_body)
        with deadline_at(budget.deadline):
            try:
                response = await self._inner.handle_async_request(request)
            except httpx.TimeoutException as exc:
                raise budget.translate(exc) from exc
        try:
            budget.check_headers(response)
        except ResponseTooLargeError:
            await response.aclose()
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _AsyncBoundedStream(response.stream, budget)
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def _bound_transports(
    client: httpx.Client | httpx.AsyncClient,
    timeout: float,
    max_body: int,
    client_options: dict[str, Any],
) -> None:
    # httpx builds its own transport and, from HTTP(S)_PROXY / NO_PROXY, one per
    # proxy, only when given no transport; so the client is built as usual and
    # each transport it made is wrapped. httpx has no public hook for this.
    def bounded(transport: Any) -> Any:
        if isinstance(transport, httpx.BaseTransport):
            return BoundedTransport(transport, timeout=timeout, max_body=max_body)
        if isinstance(transport, httpx.AsyncBaseTransport):
            return AsyncBoundedTransport(transport, timeout=timeout, max_body=max_body)
        return transport  # None: a NO_PROXY entry

    client._transport = bounded(client._transport)
    mounts: dict[Any, Any] = client._mounts
    for pattern, transport in mounts.items():
        mounts[pattern] = bounded(transport)
    # Only encodings whose decoded size the cap also counts (httpx would add br/zstd
    # when their packages are installed), unless the caller chose its own.
    if "accept-encoding" not in httpx.Headers(client_options.get("headers") or {}):
        client.headers["Accept-Encoding"] = ACCEPT_ENCODING


def bounded_client(
    timeout: float, *, max_body: int = DEFAULT_MAX_BODY, **client_options: Any
) -> httpx.Client:
    """An ``httpx.Client`` whose every request ends within ``timeout`` s, bodies capped.

    ``client_options`` go to ``httpx.Client`` (verify, headers, follow_redirects...);
    proxies from the environment are honoured and bounded alike.
    """
    client = httpx.Client(timeout=timeout, **client_options)
    _bound_transports(client, timeout, max_body, client_options)
    return client


def bounded_async_client(
    timeout: float, *, max_body: int = DEFAULT_MAX_BODY, **client_options: Any
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request ends within ``timeout`` s, bodies capped."""
    client = httpx.AsyncClient(timeout=timeout, **client_options)
    _bound_transports(client, timeout, max_body, client_options)
    return client
