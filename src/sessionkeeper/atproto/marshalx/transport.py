"""The httpx transports that put a MarshalX ``atproto`` client's session in a manager.

A MarshalX client sends every request to its transport; ours keeps only what
is MarshalX's own and leaves the rest to the core:

* `route` says what a request is
  (another host's, createSession, refreshSession, deleteSession, or an
  ordinary call) and whose account its token names;
* an ordinary call goes through the manager's call loop
  (`SessionAuth`) on the manager's
  bounded HTTP client: carry the account's newest token, on a refusal refresh
  once through the manager's single flight and replay once;
* refreshSession and deleteSession act on the session whose token the request
  carries (never on "the manager's current one"), and their outcomes are
  translated by `answers`.

There is no proactive refresh on the call path: MarshalX refreshes on its
own schedule (15 minutes before exp), and that refreshSession is answered
from the manager's single flight.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

from sessionkeeper.atproto.errors import SessionError
from sessionkeeper.atproto.kinds import read_stored
from sessionkeeper.atproto.manager_base import DEFAULT_TIMEOUT
from sessionkeeper.atproto.marshalx.answers import (
    answered_session,
    deleted_answer,
    failure_answer,
    session_answer,
)
from sessionkeeper.atproto.marshalx.routes import (
    Action,
    Route,
    Server,
    bearer_token,
    decide,
    route,
    server_of,
)
from sessionkeeper.atproto.password.kind import PASSWORD, BearerAuthorizer
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.core.call_loop import SessionAuth, ThreadedSource
from sessionkeeper.http_limits import bounded_async_client, bounded_client
from sessionkeeper.http_limits.transport import ACCEPT_ENCODING

if TYPE_CHECKING:
    from sessionkeeper.atproto.password.async_manager import AsyncPersistentSessionManager
    from sessionkeeper.atproto.password.manager import PersistentSessionManager

_BEARER = BearerAuthorizer()

M = TypeVar("M", bound="PersistentSessionManager | AsyncPersistentSessionManager")


def servers(
    manager: PersistentSessionManager | AsyncPersistentSessionManager,
) -> frozenset[Server]:
    """The hosts that issued the manager's tokens: its service and its PDS."""
    return frozenset({server_of(manager.service_url), server_of(manager.pds_endpoint)})


def held(current: AtpSessionData | None, did: str | None) -> AtpSessionData | None:
    """The manager's current session if it is ``did``'s (the newest this process knows)."""
    return current if current is not None and did is not None and current.did == did else None


def stored(raw: bytes | None, did: str) -> AtpSessionData | None:
    """``did``'s stored session, read without making it the manager's current one."""
    return read_stored(PASSWORD, raw, PASSWORD.name(did), did)


def _prepared(request: httpx.Request) -> httpx.Request:
    # MarshalX's client asks for every encoding httpx can decode; a bounded client
    # accepts only those whose decoded size its cap counts.
    request.headers["Accept-Encoding"] = ACCEPT_ENCODING
    return request


class _Pinned(Generic[M]):
    """What a call loop's source for one account holds: its manager and its session.

    The session is the one the request's account has now (the manager's
    current one, else the stored one). There is no proactive refresh here:
    MarshalX refreshes on its own schedule.
    """

    def __init__(self, manager: M, session: AtpSessionData) -> None:
        self._manager = manager
        self._session = session

    @property
    def auto_refresh(self) -> bool:
        """The manager's switch: off, a refused call comes back as it was."""
        return self._manager.auto_refresh


class _AccountSource(_Pinned["PersistentSessionManager"]):
    """The call loop's session source for one account of a blocking manager."""

    def session_for_call(self) -> AtpSessionData:
        """The account's newest session."""
        return self._session

    def refresh_rejected(self, used: AtpSessionData) -> AtpSessionData:
        """Refresh, or adopt what another holder refreshed, by the manager's single flight
        (which leaves another account's current session alone)."""
        return self._manager.refresh_rejected(used)


class _AsyncAccountSource(_Pinned["AsyncPersistentSessionManager"]):
    """The asyncio twin of `_AccountSource`."""

    async def session_for_call(self) -> AtpSessionData:
        """The account's newest session."""
        return self._session

    async def refresh_rejected(self, used: AtpSessionData) -> AtpSessionData:
        """Refresh, or adopt what another holder refreshed, by the manager's single flight."""
        return await self._manager.refresh_rejected(used)


class SessionTransport(httpx.BaseTransport):
    """An httpx transport that routes a MarshalX ``Client``'s session through ``manager``.

    Requests go out on the manager's own bounded client (one total deadline,
    a capped answer) unless ``inner`` is given: an ``httpx.Client`` is used as
    it is (its limits are its owner's choice), a transport is wrapped in a
    bounded client with the managers' default limits. Every client and clone
    built on this transport shares it: closing one of them leaves the
    connections open for the others.
    """

    def __init__(
        self,
        manager: PersistentSessionManager,
        inner: httpx.BaseTransport | httpx.Client | None = None,
    ) -> None:
        self.manager = manager
        if inner is None:
            self._http = manager.http
        elif isinstance(inner, httpx.Client):
            self._http = inner
        else:
            self._http = bounded_client(DEFAULT_TIMEOUT, transport=inner)

    def __repr__(self) -> str:
        return f"SessionTransport({self.manager!r})"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer refresh and logout from the manager; send calls through its call loop."""
        manager = self.manager
        where = route(request, servers(manager))
        session = self._session_of(where)
        action = decide(where, session, bearer_token(request))
        if action is Action.FORWARD:
            return self._http.send(_prepared(request))
        if action is Action.KEEP:
            response = self._http.send(_prepared(request))
            answered = answered_session(response, where.nsid or "")
            if answered is not None:
                manager.store_session(answered)
            return response
        assert session is not None  # every other action is the session's
        if action is Action.LOGOUT:
            manager.logout(session)
            return deleted_answer(request)
        try:
            if action is Action.ANSWER:
                return session_answer(request, session)
            if action is Action.REFRESH:
                return session_answer(request, manager.refresh_rejected(session))
            source = _AccountSource(manager, session)
            auth = SessionAuth(_BEARER, sync_source=source, async_source=ThreadedSource(source))
            return self._http.send(_prepared(request), auth=auth)
        except SessionError as exc:  # the refresh failed: MarshalX raises its own error
            return failure_answer(request, exc)

    def close(self) -> None:
        """Nothing to close per client: the connections serve every clone."""

    def _session_of(self, where: Route) -> AtpSessionData | None:
        did = where.account
        found = held(self.manager.session, did)
        if found is None and did is not None:
            found = stored(self.manager.store.get(PASSWORD.name(did)), did)
        return found


class AsyncSessionTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of [`SessionTransport`][], for MarshalX's ``AsyncClient``."""

    def __init__(
        self,
        manager: AsyncPersistentSessionManager,
        inner: httpx.AsyncBaseTransport | httpx.AsyncClient | None = None,
    ) -> None:
        self.manager = manager
        if inner is None:
            self._http = manager.http
        elif isinstance(inner, httpx.AsyncClient):
            self._http = inner
        else:
            self._http = bounded_async_client(DEFAULT_TIMEOUT, transport=inner)

    def __repr__(self) -> str:
        return f"AsyncSessionTransport({self.manager!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer refresh and logout from the manager; send calls through its call loop."""
        manager = self.manager
        where = route(request, servers(manager))
        session = await self._session_of(where)
        action = decide(where, session, bearer_token(request))
        if action is Action.FORWARD:
            return await self._http.send(_prepared(request))
        if action is Action.KEEP:
            response = await self._http.send(_prepared(request))
            answered = answered_session(response, where.nsid or "")
            if answered is not None:
                await manager.store_session(answered)
            return response
        assert session is not None  # every other action is the session's
        if action is Action.LOGOUT:
            await manager.logout(session)
            return deleted_answer(request)
        try:
            if action is Action.ANSWER:
                return session_answer(request, session)
            if action is Action.REFRESH:
                return session_answer(request, await manager.refresh_rejected(session))
            source = _AsyncAccountSource(manager, session)
            auth = SessionAuth(_BEARER, sync_source=None, async_source=source)
            return await self._http.send(_prepared(request), auth=auth)
        except SessionError as exc:  # the refresh failed: MarshalX raises its own error
            return failure_answer(request, exc)

    async def aclose(self) -> None:
        """Nothing to close per client: the connections serve every clone."""

    async def _session_of(self, where: Route) -> AtpSessionData | None:
        did = where.account
        found = held(self.manager.session, did)
        if found is None and did is not None:  # a store read is blocking I/O: off the loop
            found = stored(await asyncio.to_thread(self.manager.store.get, PASSWORD.name(did)), did)
        return found


__all__ = ["AsyncSessionTransport", "SessionTransport", "servers"]
