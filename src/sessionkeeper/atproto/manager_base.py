"""What every ATProto session manager does, once, generic over the kind of session.

The blocking and the asyncio shells differ only in their driver: each
operation is a flow (or the core's single flight) that
`BlockingDriver` or
`AsyncDriver` performs. The app-password and the
OAuth managers differ only in their kind, their refresh policy and how they
sign requests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx

from sessionkeeper.atproto.errors import SessionNetworkError, XrpcNetworkError
from sessionkeeper.atproto.home import default_store
from sessionkeeper.atproto.kinds import ATPROTO_ERRORS, AtprotoKind, read_stored
from sessionkeeper.atproto.records import remove_session
from sessionkeeper.atproto.refresh import TokenRefreshPolicy
from sessionkeeper.atproto.xrpc import decode_result, validate_nsid, xrpc_url
from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.core.async_flow import AsyncDriver
from sessionkeeper.core.call_loop import Authorizer, SessionAuth, ThreadedSource
from sessionkeeper.core.flow import BlockingDriver, Call, Flow, Get, Locked, Put
from sessionkeeper.core.lifetime import Lifetime
from sessionkeeper.core.singleflight import single_flight, write_back
from sessionkeeper.core.state import SessionState
from sessionkeeper.events import SessionEvent
from sessionkeeper.http_limits import bounded_async_client, bounded_client
from sessionkeeper.lifecycle import AsyncClosing, Closing
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

S = TypeVar("S")

#: Why a proactive refresh may fail while the current token still works: the server is
#: away (network, 5xx, 429), or the store is (down, full, its lock held past the timeout).
EARLY_REFRESH_FAILURES = (SessionNetworkError, StoreError)

#: Seconds a request of a manager's own client may take in all (a total deadline, so a
#: trickling server cannot hold a refresh, and the store lock, for longer).
DEFAULT_TIMEOUT = 30.0


def manager_store(session_dir: str | os.PathLike[str] | None, store: Store | None) -> Store:
    """The store to use: ``store``, else a DirectoryStore on ``session_dir``, else
    ``$SESSIONKEEPER_STORE``, else the per-user default (the CLI's choice too)."""
    if store is not None:
        return store
    if session_dir is None:
        return default_store()
    return DirectoryStore(session_dir)


# --- flows both shells run ---------------------------------------------------------------


def store_flow(kind: AtprotoKind[S], session: S) -> Flow[None]:
    """Write ``session`` under its DID's name (the write takes the name's lock)."""
    yield Put(kind.name(kind.account(session)), kind.encode(session))


def load_flow(kind: AtprotoKind[S], did: str) -> Flow[S | None]:
    """Read and decode ``did``'s stored session; ``None`` if absent or another account's.

    A corrupt entry raises `CorruptSessionError`.
    """
    name = kind.name(did)
    raw = yield Get(name)
    if raw is None:
        return None
    session = kind.decode(raw, name=name)
    if kind.account(session) != did:
        logger.warning("%s %s holds %s, not %s; not loading it", kind.label, name, session, did)
        return None
    return session


def remove_flow(kind: AtprotoKind[S], did: str) -> Flow[bool]:
    """Remove ``did``'s stored session."""
    removed: bool = yield from remove_session(kind.name(did), did)
    return removed


def prune_flow(kind: AtprotoKind[S], session: S) -> Flow[bool]:
    """Under the lock: remove ``session`` if the store still holds that very set."""
    did = kind.account(session)
    name = kind.name(did)

    def locked() -> Flow[bool]:
        current = read_stored(kind, (yield Get(name)), name, did)
        if current is None or not kind.same(current, session):
            return False  # refreshed or removed meanwhile
        yield from remove_session(name, did)
        return True

    removed: bool = yield Locked(name, locked())
    return removed


class _ManagerState(Generic[S]):
    """The in-memory half both shells share: state, settings, events, repr."""

    _state: SessionState[S]
    _kind: AtprotoKind[S]
    store: Store

    def __repr__(self) -> str:
        session = self._state.session
        who = self._kind.account(session) if session is not None else None
        return f"{type(self).__name__}({self._where()}store={self.store!r}, session={who!r})"

    def _where(self) -> str:
        return ""

    @property
    def session(self) -> S | None:
        """The current session, or ``None``."""
        return self._state.session

    @property
    def lifetime(self) -> Lifetime | None:
        """When the current session's tokens and the session end; ``None`` without one."""
        session = self._state.session
        return self._kind.lifetime(session) if session is not None else None

    @property
    def expiring_within(self) -> float:
        """Seconds before the session's absolute end at which ``expiring`` is emitted."""
        return self._state.expiring_within

    @expiring_within.setter
    def expiring_within(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"expiring_within must be >= 0 seconds, not {seconds}")
        self._state.expiring_within = float(seconds)

    @property
    def refresh_margin(self) -> float:
        """Seconds before the access token's expiry at which it is refreshed."""
        return self._state.refresh_margin

    @property
    def auto_refresh(self) -> bool:
        """Whether calls refresh proactively and reactively."""
        return self._state.auto_refresh

    def enable_auto_refresh(self) -> None:
        """Turn proactive and reactive refresh on."""
        self._state.auto_refresh = True

    def disable_auto_refresh(self) -> None:
        """Turn proactive and reactive refresh off (calls use the token as it is)."""
        self._state.auto_refresh = False

    def needs_refresh(self) -> bool:
        """Whether the current access token is within ``refresh_margin`` of its expiry."""
        return self._state.needs_refresh()

    def on_session_event(
        self, callback: Callable[[SessionEvent, S | None], object]
    ) -> Callable[[], None]:
        """Subscribe ``callback(event, session | None)``; return an unsubscribe function."""
        return self._state.events.subscribe(callback)

    def _new_state(self, refresh_margin: float, auto_refresh: bool, clock: Clock | None) -> None:
        self._state = SessionState(
            self._kind,
            refresh_margin=refresh_margin,
            auto_refresh=auto_refresh,
            clock=clock or SYSTEM_CLOCK,
            errors=ATPROTO_ERRORS,
        )

    # -- hooks of each kind --------------------------------------------------------------

    def _policy(self, known: S) -> TokenRefreshPolicy[S]:
        raise NotImplementedError  # pragma: no cover

    def _after_refresh(self, policy: TokenRefreshPolicy[S]) -> None:
        """What a kind learns from a refresh besides the session (a PDS endpoint)."""

    def _xrpc_base(self, session: S) -> str:
        raise NotImplementedError  # pragma: no cover

    def _loaded(self, session: S) -> S:
        self._state.become_current(session)
        self._state.emit(SessionEvent.CREATE, session)
        self._state.warn_if_ending(session)
        return session

    def _cleared(self, session: S) -> None:
        self._state.forget(self._kind.account(session))
        self._state.emit(SessionEvent.DELETE, session)

    def _pruned(self, sessions: list[tuple[S, bool]]) -> list[str]:
        removed = []
        for session, gone in sessions:
            if gone:
                did = self._kind.account(session)
                removed.append(did)
                self._state.forget(did)
                self._state.emit(SessionEvent.EXPIRED, session)
        return removed

    def _prunable(self, sessions: list[S]) -> list[S]:
        """The sessions the kind's one rule calls dead (the rule ``store prune`` applies too)."""
        now = self._state.clock.time()
        return [s for s in sessions if self._kind.dead(s, now) is not None]


class BlockingManager(_ManagerState[S], Closing):
    """The blocking shell: flows run on a `BlockingDriver`; thread-safe."""

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None,
        store: Store | None,
        refresh_margin: float,
        auto_refresh: bool,
        http: httpx.Client | None,
        clock: Clock | None,
        authorizer: Authorizer[S],
    ) -> None:
        self.store = manager_store(session_dir, store)
        self._new_state(refresh_margin, auto_refresh, clock)
        self._owns_http = http is None
        self._http = http if http is not None else bounded_client(DEFAULT_TIMEOUT)
        self._driver = BlockingDriver(self.store, self._http)
        self.auth: SessionAuth[S] = SessionAuth(
            authorizer, sync_source=self, async_source=ThreadedSource(self)
        )
        """An ``httpx.Auth`` that carries, refreshes and retries for any httpx client."""

    def close(self) -> None:
        """Close the HTTP client if the manager created it."""
        if self._owns_http:
            self._http.close()

    @property
    def http(self) -> httpx.Client:
        """The client requests go out on (bounded: a total deadline and a capped answer)."""
        return self._http

    # -- sessions -------------------------------------------------------------------------

    def store_session(self, data: S) -> None:
        """Persist ``data`` under its DID and make it current."""
        self._driver.run(store_flow(self._kind, data))
        self._loaded(data)

    def load_session(self, did: str) -> S | None:
        """Load the stored session of ``did`` and make it current; ``None`` if there is none."""
        flow = load_flow(self._kind, did)
        session = self._driver.run(flow)
        return self._loaded(session) if session is not None else None

    def list_sessions(self) -> list[str]:
        """DIDs of every stored session (read from the entries; bad ones are skipped)."""
        return [self._kind.account(session) for session in self._kind.stored(self.store)]

    def sessions(self) -> list[S]:
        """Every stored session, without making any of them current."""
        return self._kind.stored(self.store)

    def clear_session(self) -> None:
        """Remove the current session from memory and the store (no server call)."""
        session = self._state.session
        if session is None:
            return
        self._driver.run(remove_flow(self._kind, self._kind.account(session)))
        self._cleared(session)

    def prune_expired_sessions(self) -> list[str]:
        """Remove stored sessions that can no longer be refreshed; return their DIDs."""
        dead = self._prunable(self._kind.stored(self.store))
        return self._pruned([(s, self._driver.run(prune_flow(self._kind, s))) for s in dead])

    # -- refresh --------------------------------------------------------------------------

    def refresh_token(self) -> S:
        """Refresh the current session now (or adopt a set another holder refreshed)."""
        return self._refresh(self._state.require(), force=True)

    def _refresh(self, known: S, *, force: bool = False) -> S:
        state = self._state
        if not force:
            fresher = state.refreshed_meanwhile(known)
            if fresher is not None:
                return fresher
        state.check_gate(self._kind.account(known))
        policy = self._policy(known)
        result = self._driver.run(single_flight(policy, known))
        self._after_refresh(policy)
        return state.apply(known, result)

    def session_for_call(self) -> S:
        """The current session, refreshed first when due (auto refresh on)."""
        session = self._state.require()
        pending = self._state.unstored()
        if pending is not None:
            try:
                self._driver.run(write_back(self._policy(pending), pending))
            except StoreError as exc:
                _write_back_failed(exc)
            else:
                self._state.stored_back(pending)
        if self._state.auto_refresh and self._state.needs_refresh(session):
            try:
                session = self._refresh(session)
            except EARLY_REFRESH_FAILURES as exc:
                # The token may still be valid for a while: use it rather than fail.
                if self._state.is_expired(session):
                    raise
                logger.info(
                    "proactive refresh failed (%s); using the current token until it expires",
                    type(exc).__name__,
                )
        self._state.warn_if_ending(session)
        return session

    def refresh_rejected(self, used: S) -> S:
        """Refresh after the server refused ``used``'s access token."""
        return self._refresh(used)

    # -- XRPC -----------------------------------------------------------------------------

    def query(self, nsid: str, params: dict[str, Any] | None = None) -> Any:
        """Call an XRPC query (GET) with the session; return the decoded JSON or ``None``."""
        return self._call("GET", nsid, params, None)

    def procedure(self, nsid: str, data: Any = None) -> Any:
        """Call an XRPC procedure (POST JSON) with the session; return the decoded answer."""
        return self._call("POST", nsid, None, data)

    def _call(self, method: str, nsid: str, params: Any, data: Any) -> Any:
        validate_nsid(nsid)
        url = xrpc_url(self._xrpc_base(self._state.require()), nsid)
        try:
            response = self._http.request(method, url, params=params, json=data, auth=self.auth)
        except httpx.TransportError as exc:
            raise XrpcNetworkError(f"{nsid} failed: {type(exc).__name__}: {exc}") from exc
        return decode_result(response, nsid, now=self._state.clock.time())


class AsyncManager(_ManagerState[S], AsyncClosing):
    """The asyncio shell: the same flows on an `AsyncDriver` and ``httpx.AsyncClient``.

    ``session``, ``needs_refresh``, ``on_session_event`` and the auto-refresh
    switches stay synchronous because they do no I/O.
    """

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None,
        store: Store | None,
        refresh_margin: float,
        auto_refresh: bool,
        http: httpx.AsyncClient | None,
        clock: Clock | None,
        authorizer: Authorizer[S],
    ) -> None:
        self.store = manager_store(session_dir, store)
        self._new_state(refresh_margin, auto_refresh, clock)
        self._owns_http = http is None
        self._http = http if http is not None else bounded_async_client(DEFAULT_TIMEOUT)
        self._driver = AsyncDriver(self.store, self._http)
        self.auth: SessionAuth[S] = SessionAuth(authorizer, sync_source=None, async_source=self)
        """An ``httpx.Auth`` for ``httpx.AsyncClient`` that refreshes and retries once."""

    async def aclose(self) -> None:
        """Close the HTTP client if the manager created it, after running refreshes end."""
        await self._driver.aclose()
        if self._owns_http:
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The client requests go out on (bounded: a total deadline and a capped answer)."""
        return self._http

    # -- sessions -------------------------------------------------------------------------

    async def store_session(self, data: S) -> None:
        """Persist ``data`` under its DID and make it current."""
        await self._driver.run(store_flow(self._kind, data))
        self._loaded(data)

    async def load_session(self, did: str) -> S | None:
        """Load the stored session of ``did`` and make it current; ``None`` if there is none."""
        flow = load_flow(self._kind, did)
        session = await self._driver.run(flow)
        return self._loaded(session) if session is not None else None

    async def list_sessions(self) -> list[str]:
        """DIDs of every stored session (read from the entries; bad ones are skipped)."""
        return [self._kind.account(session) for session in await self.sessions()]

    async def sessions(self) -> list[S]:
        """Every stored session, without making any of them current."""
        return await self._driver.run(_listing(self._kind, self.store))

    async def clear_session(self) -> None:
        """Remove the current session from memory and the store (no server call)."""
        session = self._state.session
        if session is None:
            return
        await self._driver.run(remove_flow(self._kind, self._kind.account(session)))
        self._cleared(session)

    async def prune_expired_sessions(self) -> list[str]:
        """Remove stored sessions that can no longer be refreshed; return their DIDs."""
        dead = self._prunable(await self.sessions())
        return self._pruned([(s, await self._driver.run(prune_flow(self._kind, s))) for s in dead])

    # -- refresh --------------------------------------------------------------------------

    async def refresh_token(self) -> S:
        """Refresh the current session now (or adopt a set another holder refreshed)."""
        return await self._refresh(self._state.require(), force=True)

    async def _refresh(self, known: S, *, force: bool = False) -> S:
        state = self._state
        if not force:
            fresher = state.refreshed_meanwhile(known)
            if fresher is not None:
                return fresher
        state.check_gate(self._kind.account(known))
        policy = self._policy(known)
        # A task of its own that a cancelled caller (a timeout) does not stop: cut between
        # the server's rotation and the store write, it would lose the new set.
        result = await self._driver.run_to_completion(single_flight(policy, known))
        self._after_refresh(policy)
        return state.apply(known, result)

    async def session_for_call(self) -> S:
        """The current session, refreshed first when due (auto refresh on)."""
        session = self._state.require()
        pending = self._state.unstored()
        if pending is not None:
            try:
                await self._driver.run(write_back(self._policy(pending), pending))
            except StoreError as exc:
                _write_back_failed(exc)
            else:
                self._state.stored_back(pending)
        if self._state.auto_refresh and self._state.needs_refresh(session):
            try:
                session = await self._refresh(session)
            except EARLY_REFRESH_FAILURES as exc:
                if self._state.is_expired(session):
                    raise
                logger.info(
                    "proactive refresh failed (%s); using the current token until it expires",
                    type(exc).__name__,
                )
        self._state.warn_if_ending(session)
        return session

    async def refresh_rejected(self, used: S) -> S:
        """Refresh after the server refused ``used``'s access token."""
        return await self._refresh(used)

    # -- XRPC -----------------------------------------------------------------------------

    async def query(self, nsid: str, params: dict[str, Any] | None = None) -> Any:
        """Call an XRPC query (GET) with the session; return the decoded JSON or ``None``."""
        return await self._call("GET", nsid, params, None)

    async def procedure(self, nsid: str, data: Any = None) -> Any:
        """Call an XRPC procedure (POST JSON) with the session; return the decoded answer."""
        return await self._call("POST", nsid, None, data)

    async def _call(self, method: str, nsid: str, params: Any, data: Any) -> Any:
        validate_nsid(nsid)
        url = xrpc_url(self._xrpc_base(self._state.require()), nsid)
        try:
            response = await self._http.request(
                method, url, params=params, json=data, auth=self.auth
            )
        except httpx.TransportError as exc:
            raise XrpcNetworkError(f"{nsid} failed: {type(exc).__name__}: {exc}") from exc
        return decode_result(response, nsid, now=self._state.clock.time())


def _write_back_failed(exc: StoreError) -> None:
    # The set stays in memory and valid; the next call tries the write again.
    logger.warning("could not store the renewed tokens yet (%s); will retry on the next call", exc)


def _listing(kind: AtprotoKind[S], store: Store) -> Flow[list[S]]:
    """The store listing as one blocking step (it reads every entry)."""
    sessions: list[S] = yield Call(lambda: kind.stored(store))
    return sessions
