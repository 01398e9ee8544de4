"""The sans-I/O engine: flows describe their I/O, one blocking and one asyncio driver do it.

A flow is a generator that yields operations and receives their results:
`Send` (an ``httpx.Response``, or a `NetworkFailure` when no
answer came), `Get` (``bytes | None``), `Put`, `Delete`,
`Locked` (what the inner flow returned, run while the store lock of a
name is held) and `Call` (a blocking step that is not sans-I/O yet).
A failed operation is thrown back into the flow, which decides what it means:
a store write that fails after a server rotated tokens must not lose them.

Every protocol's decisions are written once as flows; `BlockingDriver`
runs them with ``httpx.Client`` and blocking store calls,
`AsyncDriver` with ``httpx.AsyncClient`` on
the event loop (a module of its own, so blocking users never import asyncio).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # the HTTP stack loads with the first client (see hac.transport)
    import httpx

    from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send one HTTP request; the flow receives an ``httpx.Response`` or a NetworkFailure."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    json: Any = field(default=None, repr=False)
    form: dict[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Get:
    """Read a store name; the flow receives ``bytes | None``."""

    name: str


@dataclass(frozen=True, slots=True)
class Put:
    """Write a store name (outside a `Locked` of that name it takes the lock itself)."""

    name: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove a store name; the flow receives whether it existed."""

    name: str


@dataclass(frozen=True, slots=True)
class Locked:
    """Run ``flow`` while holding the store lock of ``name``; receive what it returned."""

    name: str
    flow: Generator[Any, Any, Any] = field(repr=False)
    timeout: float | None = None  #: the store's default wait when ``None``


@dataclass(frozen=True, slots=True)
class Call:
    """Run a blocking callable (a protocol step that does its own I/O); receive its result."""

    function: Callable[[], Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class NetworkFailure:
    """A request that got no HTTP answer (refused, reset, timed out)."""

    reason: str
    #: The transport error itself, for callers that chain it (``raise ... from cause``).
    cause: BaseException | None = field(default=None, repr=False, compare=False)


Op = Send | Get | Put | Delete | Locked | Call
Flow = Generator[Op, Any, T]


def network_failure(exc: httpx.TransportError) -> NetworkFailure:
    """Describe a transport error by its type and text (which never holds a header value)."""
    return NetworkFailure(f"{type(exc).__name__}: {exc}", exc)


def step(flow: Generator[Any, Any, T], result: Any, failure: BaseException | None) -> Any:
    """Resume ``flow`` with an operation's result, or throw its failure into it."""
    return flow.send(result) if failure is None else flow.throw(failure)


class BlockingDriver:
    """Performs flows with blocking calls: an ``httpx.Client`` and a store."""

    def __init__(self, store: Store, http: httpx.Client) -> None:
        self.store = store
        self.http = http

    def run(self, flow: Generator[Any, Any, T]) -> T:
        """Drive ``flow`` to its end and return its value."""
        result: Any = None
        failure: BaseException | None = None
        while True:
            try:
                op = step(flow, result, failure)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result, failure = self._perform(op), None
            except Exception as exc:
                result, failure = None, exc

    def _perform(self, op: Op) -> Any:
        store = self.store
        if isinstance(op, Send):
            import httpx

            try:
                response = self.http.request(
                    op.method, op.url, headers=op.headers, json=op.json, data=op.form
                )
                response.read()
                return response
            except httpx.TransportError as exc:
                return network_failure(exc)
        if isinstance(op, Get):
            return store.get(op.name)
        # Store locks are re-entrant within a thread, so a write inside a Locked of the
        # same name costs nothing extra, and a write outside one still lands between
        # other holders' read-modify-write sequences, never inside one.
        if isinstance(op, Put):
            with store.lock(op.name):
                store.put(op.name, op.data)
            return None
        if isinstance(op, Delete):
            with store.lock(op.name):
                return store.delete(op.name)
        if isinstance(op, Locked):
            with store.lock(op.name, op.timeout):
                return self.run(op.flow)
        if isinstance(op, Call):
            return op.function()
        raise TypeError(f"unknown operation {op!r}")  # pragma: no cover
