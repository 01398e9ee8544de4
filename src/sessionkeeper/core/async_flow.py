"""The asyncio driver of the sans-I/O engine (`sessionkeeper.core.flow`).

Requests go out on the event loop with ``httpx.AsyncClient``; store calls run
off the loop, and every store call of a locked flow on one worker thread per
name, because file locks belong to the thread that took them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import httpx

from sessionkeeper.core.flow import Call, Delete, Get, Locked, Op, Put, Send, network_failure, step
from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
                op = step(flow, result, failure)
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
