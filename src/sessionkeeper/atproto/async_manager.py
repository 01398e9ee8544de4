"""AsyncPersistentSessionManager: the asyncio shell around the sans-I/O core.

Coroutines of one process share a refresh through an ``asyncio.Lock`` per
DID. Processes share it through the store's lock, which blocks and (for file
locks) belongs to the thread that took it; so each DID gets one worker
thread that takes the store lock, does the store reads and writes, and
releases the lock, while the refresh request itself goes out on the event
loop with the ``httpx.AsyncClient``. The loop is never blocked.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from sessionkeeper.atproto import core
from sessionkeeper.atproto.auth import SessionAuth
from sessionkeeper.atproto.codec import decode_session, encode_session, name_for_did
from sessionkeeper.atproto.core import Delete, Get, NetworkFailure, Op, Put, Send
from sessionkeeper.atproto.errors import XrpcNetworkError
from sessionkeeper.atproto.facade import SessionStateView
from sessionkeeper.atproto.listing import prunable, stored_sessions
from sessionkeeper.atproto.manager import (
    DEFAULT_TIMEOUT,
    EARLY_REFRESH_FAILURES,
    resolve_store,
)
from sessionkeeper.atproto.state import SessionState
from sessionkeeper.atproto.types import AtpSessionData, AtpSessionEvent
from sessionkeeper.atproto.xrpc import (
    bearer,
    decode_result,
    is_rejected_access,
    validate_nsid,
    xrpc_url,
)
from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")


class _LockThread:
    """One worker thread that takes, uses and releases the store lock of one name."""

    def __init__(self, store: Store, name: str) -> None:
        self._store = store
        self._name = name
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lock-{name}")
        self._held: AbstractContextManager[None] | None = None

    def _acquire(self) -> None:
        held = self._store.lock(self._name)
        held.__enter__()
        self._held = held

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(None, None, None)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` on this name's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    async def acquire(self) -> None:
        """Take the store lock on the worker thread; a cancelled wait still releases it."""
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._acquire)
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


def _finished_refresh(
    running: set[asyncio.Future[AtpSessionData]],
) -> Callable[[asyncio.Future[AtpSessionData]], None]:
    """A done-callback that forgets a refresh task and logs a failure nobody awaited."""

    def done(task: asyncio.Future[AtpSessionData]) -> None:
        running.discard(task)
        # Retrieving the exception marks it seen; the caller that awaited it got it already.
        if not task.cancelled() and task.exception() is not None:
            logger.debug("refresh finished with %s", type(task.exception()).__name__)

    return done


class AsyncPersistentSessionManager(SessionStateView):
    """The asyncio twin of :class:`PersistentSessionManager`: same names, coroutines for I/O.

    ``session``, ``needs_refresh``, ``on_session_event`` and the auto-refresh
    switches stay synchronous because they do no I/O.
    """

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None,
        service_url: str,
        *,
        store: Store | None = None,
        refresh_margin: float = 120.0,
        auto_refresh: bool = True,
        http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = resolve_store(session_dir, store)
        self._state = SessionState(
            service_url=service_url,
            refresh_margin=refresh_margin,
            auto_refresh=auto_refresh,
            clock=clock or SYSTEM_CLOCK,
        )
        self._owns_http = http is None
        self._http = http if http is not None else httpx.AsyncClient(timeout=DEFAULT_TIMEOUT)
        self._refresh_locks: dict[str, asyncio.Lock] = {}
        self._lock_threads: dict[str, _LockThread] = {}
        self._refreshing: set[asyncio.Future[AtpSessionData]] = set()
        self.auth = SessionAuth(sync_source=None, async_source=self)
        """An ``httpx.Auth`` for ``httpx.AsyncClient`` that refreshes and retries once."""

    def __repr__(self) -> str:
        who = self.session.did if self.session else None
        return f"{type(self).__name__}({self.service_url!r}, store={self.store!r}, session={who!r})"

    # -- lifecycle ------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the HTTP client if the manager created it, and the lock threads.

        Refreshes still running (their callers may have been cancelled) finish first.
        """
        if self._refreshing:
            await asyncio.gather(*self._refreshing, return_exceptions=True)
        for thread in self._lock_threads.values():
            thread.close()
        self._lock_threads.clear()
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- I/O driver -----------------------------------------------------------------------

    async def _perform(self, op: Op, thread: _LockThread | None) -> Any:
        if isinstance(op, Send):
            try:
                response = await self._http.request(
                    op.method, op.url, headers=op.headers, json=op.json
                )
                await response.aread()
                return response
            except httpx.TransportError as exc:
                return NetworkFailure(f"{type(exc).__name__}: {exc}")
        if isinstance(op, Get):
            call: Callable[..., Any] = self.store.get
            args: tuple[Any, ...] = (op.name,)
        elif isinstance(op, Put):
            # Outside a locked flow a write takes the lock itself (see the sync driver).
            call = self.store.put if thread is not None else self._put_locked
            args = (op.name, op.data)
        elif isinstance(op, Delete):
            call = self.store.delete if thread is not None else self._delete_locked
            args = (op.name,)
        else:  # pragma: no cover
            raise TypeError(f"unknown operation {op!r}")
        if thread is not None:
            return await thread.run(call, *args)
        return await asyncio.to_thread(call, *args)

    async def _drive(self, flow: Generator[Op, Any, T], thread: _LockThread | None = None) -> T:
        # As in the sync driver: a failed operation is thrown into the flow to decide.
        result: Any = None
        failure: BaseException | None = None
        while True:
            try:
                op = flow.send(result) if failure is None else flow.throw(failure)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result, failure = await self._perform(op, thread), None
            except Exception as exc:
                result, failure = None, exc

    def _thread_for(self, name: str) -> _LockThread:
        thread = self._lock_threads.get(name)
        if thread is None:
            thread = self._lock_threads[name] = _LockThread(self.store, name)
        return thread

    async def _locked(self, name: str, flow: Generator[Op, Any, T]) -> T:
        """Drive ``flow`` while holding the store lock of ``name`` (on its worker thread)."""
        thread = self._thread_for(name)
        await thread.acquire()
        try:
            return await self._drive(flow, thread)
        finally:
            await thread.release()

    # -- sessions -------------------------------------------------------------------------

    async def login(
        self, identifier: str, password: str, *, auth_factor_token: str | None = None
    ) -> AtpSessionData:
        """Create a session with createSession (always), store it and make it current."""
        flow = core.login_flow(
            identifier,
            password,
            auth_factor_token=auth_factor_token,
            service_url=self._state.service_url,
            now=self._state.clock.time(),
        )
        try:
            session, endpoint = await self._drive(flow)
        except Exception:
            self._state.emit(AtpSessionEvent.CREATE_FAILED, None)
            raise
        self._state.become_current(session, endpoint)
        logger.info("logged in as %s (%s)", session.handle, session.did)
        self._state.emit(AtpSessionEvent.CREATE, session)
        return session

    def _put_locked(self, name: str, data: bytes) -> None:
        with self.store.lock(name):
            self.store.put(name, data)

    def _delete_locked(self, name: str) -> bool:
        with self.store.lock(name):
            return self.store.delete(name)

    async def store_session(self, data: AtpSessionData) -> None:
        """Persist ``data`` under its DID and make it current."""
        name = name_for_did(data.did)
        await asyncio.to_thread(self._put_locked, name, encode_session(data))
        self._state.become_current(data)
        self._state.emit(AtpSessionEvent.CREATE, data)

    async def load_session(self, did: str) -> AtpSessionData | None:
        """Load the stored session of ``did`` and make it current; ``None`` if there is none."""
        name = name_for_did(did)
        raw = await asyncio.to_thread(self.store.get, name)
        if raw is None:
            return None
        session = decode_session(raw, name=name)
        if session.did != did:
            logger.warning(
                "session file %s holds %s, not %s; not loading it", name, session.did, did
            )
            return None
        self._state.become_current(session)
        self._state.emit(AtpSessionEvent.CREATE, session)
        return session

    async def list_sessions(self) -> list[str]:
        """DIDs of every stored session (read from the files; others are skipped)."""
        return [session.did for session in await self.sessions()]

    async def sessions(self) -> list[AtpSessionData]:
        """Every stored session, without making any of them current."""
        return await asyncio.to_thread(stored_sessions, self.store)

    async def clear_session(self) -> None:
        """Remove the current session from memory and the store (no server call)."""
        session = self._state.session
        if session is None:
            return
        await asyncio.to_thread(self._delete_locked, name_for_did(session.did))
        self._state.forget(session.did)
        self._state.emit(AtpSessionEvent.DELETE, session)

    async def logout(self) -> None:
        """Revoke the session on the server (deleteSession), then clear it locally."""
        session = self._state.require()
        name = name_for_did(session.did)
        async with self._refresh_lock(session.did):
            await self._locked(name, core.logout_flow(session, service_url=self._state.service_url))
        self._state.forget(session.did)
        logger.info("logged out %s", session.did)
        self._state.emit(AtpSessionEvent.DELETE, session)

    def _prune_blocking(self) -> list[AtpSessionData]:
        removed = []
        for session in prunable(self.store, self._state.clock.time()):
            name = name_for_did(session.did)
            with self.store.lock(name):
                current = core.read_stored(self.store.get(name), name, session.did)
                if current is None or current.refresh_jwt != session.refresh_jwt:
                    continue
                self.store.delete(name)
            removed.append(session)
        return removed

    async def prune_expired_sessions(self) -> list[str]:
        """Remove stored sessions whose refresh token has expired; return their DIDs."""
        removed = await asyncio.to_thread(self._prune_blocking)
        for session in removed:
            self._state.forget(session.did)
            self._state.emit(AtpSessionEvent.EXPIRED, session)
        return [session.did for session in removed]

    # -- refresh --------------------------------------------------------------------------

    def _refresh_lock(self, did: str) -> asyncio.Lock:
        lock = self._refresh_locks.get(did)
        if lock is None:
            lock = self._refresh_locks[did] = asyncio.Lock()
        return lock

    async def refresh_token(self) -> AtpSessionData:
        """Refresh the current session now (or adopt a pair another process refreshed)."""
        return await self._refresh(self._state.require(), force=True)

    async def _refresh(self, known: AtpSessionData, *, force: bool = False) -> AtpSessionData:
        # The refresh runs as a task of its own that a cancelled caller (a timeout) does not
        # stop: cut between the server's rotation and the store write, it would lose the new
        # pair while the old refresh token is already spent.
        task = asyncio.ensure_future(self._refresh_single_flight(known, force=force))
        self._refreshing.add(task)
        task.add_done_callback(_finished_refresh(self._refreshing))
        return await asyncio.shield(task)

    async def _refresh_single_flight(self, known: AtpSessionData, *, force: bool) -> AtpSessionData:
        state = self._state
        async with self._refresh_lock(known.did):
            # A coroutine that waited here may find the pair already refreshed by another.
            if not force:
                fresher = state.refreshed_meanwhile(known)
                if fresher is not None:
                    return fresher
            state.check_gate(known.did)
            flow = core.refresh_flow(
                known,
                service_url=state.service_url,
                now=state.clock.time(),
            )
            result = await self._locked(name_for_did(known.did), flow)
            return state.apply_refresh(known, result)

    async def session_for_call(self) -> AtpSessionData:
        """The current session, refreshed first when due (auto refresh on)."""
        session = self._state.require()
        if self._state.auto_refresh and self._state.needs_refresh(session):
            try:
                session = await self._refresh(session)
            except EARLY_REFRESH_FAILURES as exc:
                # The token may still be valid for a while: use it rather than fail.
                if core.is_expired(session.access_jwt, self._state.clock.time()):
                    raise
                logger.info(
                    "proactive refresh failed (%s); using the current token until exp",
                    type(exc).__name__,
                )
        return session

    async def refresh_rejected(self, used: AtpSessionData) -> AtpSessionData:
        """Refresh after the server refused ``used``'s access token."""
        return await self._refresh(used)

    # -- XRPC -----------------------------------------------------------------------------

    async def query(self, nsid: str, params: dict[str, Any] | None = None) -> Any:
        """Call an XRPC query (GET) with the session; return the decoded JSON or ``None``."""
        return await self._call("GET", nsid, params, None)

    async def procedure(self, nsid: str, data: Any = None) -> Any:
        """Call an XRPC procedure (POST JSON) with the session; return the decoded answer."""
        return await self._call("POST", nsid, None, data)

    async def _send_call(
        self, method: str, nsid: str, session: AtpSessionData, params: Any, data: Any
    ) -> httpx.Response:
        url = xrpc_url(self._state.endpoint(session.did), nsid)
        try:
            return await self._http.request(
                method, url, params=params, json=data, headers=bearer(session.access_jwt)
            )
        except httpx.TransportError as exc:
            raise XrpcNetworkError(f"{nsid} failed: {type(exc).__name__}: {exc}") from exc

    async def _call(self, method: str, nsid: str, params: Any, data: Any) -> Any:
        validate_nsid(nsid)
        session = await self.session_for_call()
        response = await self._send_call(method, nsid, session, params, data)
        if self._state.auto_refresh and is_rejected_access(response):
            session = await self.refresh_rejected(session)
            response = await self._send_call(method, nsid, session, params, data)
        return decode_result(response, nsid, now=self._state.clock.time())
