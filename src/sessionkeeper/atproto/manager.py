"""PersistentSessionManager: the blocking shell around the sans-I/O core."""

from __future__ import annotations

import logging
import os
from collections.abc import Generator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from sessionkeeper.atproto import core
from sessionkeeper.atproto.auth import SessionAuth, ThreadedSource
from sessionkeeper.atproto.codec import decode_session, encode_session, name_for_did
from sessionkeeper.atproto.core import Delete, Get, NetworkFailure, Op, Put, Send
from sessionkeeper.atproto.errors import SessionNetworkError, XrpcNetworkError
from sessionkeeper.atproto.facade import SessionStateView
from sessionkeeper.atproto.home import default_store
from sessionkeeper.atproto.listing import prunable, stored_sessions
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
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.errors import LockTimeoutError, StoreUnavailableError

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Why a proactive refresh may fail while the current token still works: the server is
#: away (network, 5xx, 429), or the store is (down, or its lock held past the timeout).
EARLY_REFRESH_FAILURES = (SessionNetworkError, StoreUnavailableError, LockTimeoutError)

#: Timeouts for the manager's own client: connect fast, allow slow servers.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def resolve_store(session_dir: str | os.PathLike[str] | None, store: Store | None) -> Store:
    """The store to use: ``store``, else a DirectoryStore on ``session_dir``, else the
    per-user default (:func:`sessionkeeper.atproto.home.default_session_dir`, 0700)."""
    if store is not None:
        return store
    if session_dir is None:
        return default_store()
    return DirectoryStore(session_dir)


class PersistentSessionManager(SessionStateView):
    """Keeps one current ATProto session, persisted in a store, refreshed exactly once.

    Sessions live in the store under ``did_<method>_<id>.json``. Refreshes are
    single-flight across threads and processes (store lock, re-read, adopt),
    proactive (``refresh_margin`` seconds before the access token's exp) and
    reactive (on 400 ExpiredToken or 401, once). Thread-safe.
    """

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None,
        service_url: str,
        *,
        store: Store | None = None,
        refresh_margin: float = 120.0,
        auto_refresh: bool = True,
        http: httpx.Client | None = None,
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
        self._http = http if http is not None else httpx.Client(timeout=DEFAULT_TIMEOUT)
        self.auth = SessionAuth(sync_source=self, async_source=ThreadedSource(self))
        """An ``httpx.Auth`` that carries, refreshes and retries for any httpx client."""

    def __repr__(self) -> str:
        who = self.session.did if self.session else None
        return f"{type(self).__name__}({self.service_url!r}, store={self.store!r}, session={who!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP client if the manager created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- I/O driver -----------------------------------------------------------------------

    def _perform(self, op: Op) -> Any:
        if isinstance(op, Send):
            try:
                response = self._http.request(op.method, op.url, headers=op.headers, json=op.json)
                response.read()
                return response
            except httpx.TransportError as exc:
                return NetworkFailure(f"{type(exc).__name__}: {exc}")
        if isinstance(op, Get):
            return self.store.get(op.name)
        # Writes always hold the name's lock (re-entrant inside a refresh): a login's
        # new pair and a concurrent refresh of the same DID then land one after the other,
        # and the refresher re-reads and adopts the login's pair instead of overwriting it.
        if isinstance(op, Put):
            with self.store.lock(op.name):
                self.store.put(op.name, op.data)
            return None
        if isinstance(op, Delete):
            with self.store.lock(op.name):
                return self.store.delete(op.name)
        raise TypeError(f"unknown operation {op!r}")  # pragma: no cover

    def _drive(self, flow: Generator[Op, Any, T]) -> T:
        # A failed operation is thrown into the flow, which decides what it means
        # (a store write that fails after a refresh must not lose the new tokens).
        result: Any = None
        failure: BaseException | None = None
        while True:
            try:
                op = flow.send(result) if failure is None else flow.throw(failure)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result, failure = self._perform(op), None
            except Exception as exc:
                result, failure = None, exc

    # -- sessions -------------------------------------------------------------------------

    def login(
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
            session, endpoint = self._drive(flow)
        except Exception:
            self._state.emit(AtpSessionEvent.CREATE_FAILED, None)
            raise
        self._state.become_current(session, endpoint)
        logger.info("logged in as %s (%s)", session.handle, session.did)
        self._state.emit(AtpSessionEvent.CREATE, session)
        return session

    def store_session(self, data: AtpSessionData) -> None:
        """Persist ``data`` under its DID and make it current."""
        name = name_for_did(data.did)
        with self.store.lock(name):
            self.store.put(name, encode_session(data))
        self._state.become_current(data)
        self._state.emit(AtpSessionEvent.CREATE, data)

    def load_session(self, did: str) -> AtpSessionData | None:
        """Load the stored session of ``did`` and make it current; ``None`` if there is none."""
        name = name_for_did(did)
        raw = self.store.get(name)
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

    def list_sessions(self) -> list[str]:
        """DIDs of every stored session (read from the files; others are skipped)."""
        return [session.did for session in stored_sessions(self.store)]

    def sessions(self) -> list[AtpSessionData]:
        """Every stored session, without making any of them current."""
        return stored_sessions(self.store)

    def clear_session(self) -> None:
        """Remove the current session from memory and the store (no server call)."""
        session = self._state.session
        if session is None:
            return
        name = name_for_did(session.did)
        with self.store.lock(name):
            self.store.delete(name)
        self._state.forget(session.did)
        self._state.emit(AtpSessionEvent.DELETE, session)

    def logout(self) -> None:
        """Revoke the session on the server (deleteSession), then clear it locally."""
        session = self._state.require()
        name = name_for_did(session.did)
        with self.store.lock(name):
            self._drive(core.logout_flow(session, service_url=self._state.service_url))
        self._state.forget(session.did)
        logger.info("logged out %s", session.did)
        self._state.emit(AtpSessionEvent.DELETE, session)

    def prune_expired_sessions(self) -> list[str]:
        """Remove stored sessions whose refresh token has expired; return their DIDs."""
        removed = []
        now = self._state.clock.time()
        for session in prunable(self.store, now):
            name = name_for_did(session.did)
            with self.store.lock(name):
                raw = self.store.get(name)
                current = core.read_stored(raw, name, session.did)
                if current is None or current.refresh_jwt != session.refresh_jwt:
                    continue  # refreshed or removed meanwhile
                self.store.delete(name)
            removed.append(session.did)
            self._state.forget(session.did)
            self._state.emit(AtpSessionEvent.EXPIRED, session)
        return removed

    # -- refresh --------------------------------------------------------------------------

    def refresh_token(self) -> AtpSessionData:
        """Refresh the current session now (or adopt a pair another process refreshed)."""
        return self._refresh(self._state.require(), force=True)

    def _refresh(self, known: AtpSessionData, *, force: bool = False) -> AtpSessionData:
        state = self._state
        if not force:
            fresher = state.refreshed_meanwhile(known)
            if fresher is not None:
                return fresher
        state.check_gate(known.did)
        name = name_for_did(known.did)
        # Lock, re-read, adopt-or-refresh: the refresh token is used by one holder only.
        with self.store.lock(name):
            flow = core.refresh_flow(
                known,
                service_url=state.service_url,
                now=state.clock.time(),
            )
            result = self._drive(flow)
        return state.apply_refresh(known, result)

    def session_for_call(self) -> AtpSessionData:
        """The current session, refreshed first when due (auto refresh on)."""
        session = self._state.require()
        if self._state.auto_refresh and self._state.needs_refresh(session):
            try:
                session = self._refresh(session)
            except EARLY_REFRESH_FAILURES as exc:
                # The token may still be valid for a while: use it rather than fail.
                if core.is_expired(session.access_jwt, self._state.clock.time()):
                    raise
                logger.info(
                    "proactive refresh failed (%s); using the current token until exp",
                    type(exc).__name__,
                )
        return session

    def refresh_rejected(self, used: AtpSessionData) -> AtpSessionData:
        """Refresh after the server refused ``used``'s access token."""
        return self._refresh(used)

    # -- XRPC -----------------------------------------------------------------------------

    def query(self, nsid: str, params: dict[str, Any] | None = None) -> Any:
        """Call an XRPC query (GET) with the session; return the decoded JSON or ``None``."""
        return self._call("GET", nsid, params, None)

    def procedure(self, nsid: str, data: Any = None) -> Any:
        """Call an XRPC procedure (POST JSON) with the session; return the decoded answer."""
        return self._call("POST", nsid, None, data)

    def _send_call(
        self, method: str, nsid: str, session: AtpSessionData, params: Any, data: Any
    ) -> httpx.Response:
        url = xrpc_url(self._state.endpoint(session.did), nsid)
        try:
            return self._http.request(
                method, url, params=params, json=data, headers=bearer(session.access_jwt)
            )
        except httpx.TransportError as exc:
            raise XrpcNetworkError(f"{nsid} failed: {type(exc).__name__}: {exc}") from exc

    def _call(self, method: str, nsid: str, params: Any, data: Any) -> Any:
        validate_nsid(nsid)
        session = self.session_for_call()
        response = self._send_call(method, nsid, session, params, data)
        if self._state.auto_refresh and is_rejected_access(response):
            session = self.refresh_rejected(session)
            response = self._send_call(method, nsid, session, params, data)
        return decode_result(response, nsid, now=self._state.clock.time())
