"""The sans-I/O engine: flows describe their I/O, one blocking and one asyncio driver do it.

A flow is a generator that yields operations and receives their results:
:class:`Send` (an ``httpx.Response``, or a :class:`NetworkFailure` when no
answer came), :class:`Get` (``bytes | None``), :class:`Put`, :class:`Delete`,
:class:`Locked` (what the inner flow returned, run while the store lock of a
name is held) and :class:`Call` (a blocking step that is not sans-I/O yet).
A failed operation is thrown back into the flow, which decides what it means:
a store write that fails after a server rotated tokens must not lose them.

Every protocol's decisions are written once as flows; :class:`BlockingDriver`
runs them with ``httpx.Client`` and blocking store calls, :class:`AsyncDriver`
with ``httpx.AsyncClient`` on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
    """Write a store name (outside a :class:`Locked` of that name it takes the lock itself)."""

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


Op = Send | Get | Put | Delete | Locked | Call
Flow = Generator[Op, Any, T]


def network_failure(exc: httpx.TransportError) -> NetworkFailure:
    """Describe a transport error by its type and text (which never holds a header value)."""
    return NetworkFailure(f"{type(exc).__name__}: {exc}")


def _step(flow: Generator[Any, Any, T], result: Any, failure: BaseException | None) -> Any:
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
                op = _step(flow, result, failure)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result, failure = self._perform(op), None
            except Exception as exc:
                result, failure = None, exc

    def _perform(self, op: Op) -> Any:
        store = self.store
        if isinstance(op, Send):
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


class _LockThread:
    """One worker thread that takes, uses and releases the store lock of one name.

    File locks belong to the thread that took them, so the asyncio driver does
    every store call of a locked flow on this thread while the flow's requests
    go out on the event loop.
    """

    def __init__(self, store: Store, name: str) -> None:
        self._store = store
        self.name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lock-{name}")
        self._held: AbstractContextManager[None] | None = None

    def _acquire(self, timeout: float | None) -> None:
        held = self._store.lock(self.name, timeout)
        held.__enter__()
        self._held = held

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(None, None, None)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on this name's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def acquire(self, timeout: float | None = None) -> None:
        """Take the store lock on the worker thread; a cancelled wait still releases it."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._acquire, timeout)
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            future.add_done_callback(lambda _: self._executor.submit(self._release))
            raise

    async def release(self) -> None:
        """Release the store lock on the thread that took it."""
        await asyncio.shield(self.run(self._release))

    def close(self) -> None:
        """Stop the worker thread."""
        self._executor.shutdown(wait=False)


class AsyncDriver:
    """Performs flows on the event loop: an ``httpx.AsyncClient``, store calls off the loop.

    Coroutines of one process take turns on a name through an ``asyncio.Lock``;
    processes through the store's lock, held by the name's worker thread.
    """

    def __init__(self, store: Store, http: httpx.AsyncClient) -> None:
        self.store = store
        self.http = http
        self._turns: dict[str, asyncio.Lock] = {}
        self._threads: dict[str, _LockThread] = {}
        self._running: set[asyncio.Future[Any]] = set()

    async def run(self, flow: Generator[Any, Any, T]) -> T:
        """Drive ``flow`` to its end and return its value."""
        return await self._run(flow, None)

    async def run_to_completion(self, flow: Generator[Any, Any, T]) -> T:
        """Drive ``flow`` in a task of its own that a cancelled caller does not stop.

        For flows that must not be cut between a server's answer and the store
        write (a refresh: the old refresh token is already spent).
        """
        task = asyncio.ensure_future(self._run(flow, None))
        self._running.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Future[Any]) -> None:
        self._running.discard(task)
        # Retrieving the exception marks it seen; a caller that awaited it got it already.
        if not task.cancelled() and task.exception() is not None:
            logger.debug("flow finished with %s", type(task.exception()).__name__)

    async def aclose(self) -> None:
        """Let flows still running finish, then stop the lock threads."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        for thread in self._threads.values():
            thread.close()
        self._threads.clear()

    async def _run(self, flow: Generator[Any, Any, T], thread: _LockThread | None) -> T:
        result: Any = None
        failure: BaseException | None = None
        while True:
            try:
                op = _step(flow, result, failure)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result, failure = await self._perform(op, thread), None
            except Exception as exc:
                result, failure = None, exc

    def _thread_for(self, name: str) -> _LockThread:
        thread = self._threads.get(name)
        if thread is None:
            thread = self._threads[name] = _LockThread(self.store, name)
        return thread

    def _turn(self, name: str) -> asyncio.Lock:
        turn = self._turns.get(name)
        if turn is None:
            turn = self._turns[name] = asyncio.Lock()
        return turn

    async def _perform(self, op: Op, thread: _LockThread | None) -> Any:
        if isinstance(op, Send):
            try:
                response = await self.http.request(
                    op.method, op.url, headers=op.headers, json=op.json, data=op.form
                )
                await response.aread()
                return response
            except httpx.TransportError as exc:
                return network_failure(exc)
        if isinstance(op, Locked):
            async with self._turn(op.name):
                held = self._thread_for(op.name)
                await held.acquire(op.timeout)
                try:
                    return await self._run(op.flow, held)
                finally:
                    await held.release()
        if isinstance(op, Call):
            return await asyncio.to_thread(op.function)
        locked = thread is not None and getattr(op, "name", None) == thread.name
        call, args = self._store_call(op, locked=locked)
        if thread is not None:  # every store call of a locked flow stays on the lock's thread
            return await thread.run(call, *args)
        return await asyncio.to_thread(call, *args)

    def _store_call(self, op: Op, *, locked: bool) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        store = self.store
        if isinstance(op, Get):
            return store.get, (op.name,)
        if isinstance(op, Put):
            return (store.put if locked else self._put_locked), (op.name, op.data)
        if isinstance(op, Delete):
            return (store.delete if locked else self._delete_locked), (op.name,)
        raise TypeError(f"unknown operation {op!r}")  # pragma: no cover

    def _put_locked(self, name: str, data: bytes) -> None:
        with self.store.lock(name):
            self.store.put(name, data)

    def _delete_locked(self, name: str) -> bool:
        with self.store.lock(name):
            return self.store.delete(name)
