"""The httpx transports that put a MarshalX ``atproto`` client's session in a manager.

Every request goes through one sans-I/O flow, `exchange`, which yields
what it needs done (send, load, store, rotate, log out) and receives the
results; `SessionTransport` performs those with blocking calls,
`AsyncSessionTransport` with awaits. So what a refreshSession,
deleteSession, createSession or refused call means is decided once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import weakref
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from sessionkeeper.atproto.errors import (
    MalformedTokenError,
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
    XrpcError,
)
from sessionkeeper.atproto.jwt import decode_claims
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.atproto.xrpc import (
    CREATE_SESSION,
    DELETE_SESSION,
    REFRESH_SESSION,
    is_rejected_access,
    json_value,
)

if TYPE_CHECKING:
    from sessionkeeper.atproto.password.async_manager import AsyncPersistentSessionManager
    from sessionkeeper.atproto.password.manager import PersistentSessionManager

logger = logging.getLogger(__name__)

_XRPC = "/xrpc/"


# --- requests and answers ---------------------------------------------------------------


def _nsid(request: httpx.Request) -> str | None:
    path = request.url.path
    index = path.find(_XRPC)
    return path[index + len(_XRPC) :] if index >= 0 else None


def _bearer_of(request: httpx.Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _set_bearer(request: httpx.Request, token: str) -> None:
    request.headers["Authorization"] = f"Bearer {token}"


def _subject(token: str) -> str | None:
    """The ``sub`` claim (the account's DID) of a session token, read without verifying."""
    try:
        sub = decode_claims(token).get("sub")
    except MalformedTokenError:
        return None
    return sub if isinstance(sub, str) else None


def _same_account(token: str | None, session: AtpSessionData | None) -> bool:
    return token is not None and session is not None and _subject(token) == session.did


def _replayable(request: httpx.Request) -> bool:
    """Whether the body is in memory (MarshalX sends bytes), so it can be sent again."""
    return isinstance(request.stream, httpx.ByteStream)


def _json_answer(request: httpx.Request, status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8", **headers},
        request=request,
    )


def _session_answer(request: httpx.Request, session: AtpSessionData) -> httpx.Response:
    """A refreshSession answer carrying ``session``: MarshalX installs it as the new pair."""
    return _json_answer(request, 200, session.to_json_dict())


def _failure_answer(request: httpx.Request, exc: SessionError) -> httpx.Response:
    """The XRPC error answer a failed refresh means to MarshalX (it raises its own error)."""
    if isinstance(exc, SessionExpiredError):
        body = {"error": exc.error or "ExpiredToken", "message": str(exc)}
        return _json_answer(request, exc.status or 400, body)
    if isinstance(exc, SessionNetworkError):
        if exc.status is None:
            raise httpx.ConnectError(str(exc), request=request) from exc
        wait = {"Retry-After": str(round(exc.retry_after))} if exc.retry_after else {}
        return _json_answer(
            request, exc.status, {"error": "Unavailable", "message": str(exc)}, **wait
        )
    if isinstance(exc, XrpcError):
        body = {"error": exc.error or "Failed", "message": exc.message or str(exc)}
        return _json_answer(request, exc.status, body)
    return _json_answer(request, 400, {"error": "SessionError", "message": str(exc)})


def _answered_session(response: httpx.Response) -> AtpSessionData | None:
    """The session a successful createSession/refreshSession answer carries, if any."""
    if not response.is_success:
        return None
    try:
        body = json_value(response.content)
        document = {key: value for key, value in body.items() if key != "didDoc"}
        return AtpSessionData.from_json_dict(document, where=CREATE_SESSION)
    except (ValueError, AttributeError, SessionError):
        logger.warning("%s answered without a session document; not stored", CREATE_SESSION)
        return None


# --- what the flow asks for ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send the request to the network; the flow receives the (read) response."""

    request: httpx.Request


@dataclass(frozen=True, slots=True)
class Load:
    """``manager.load_session(did)``; the flow receives the session or ``None``."""

    did: str


@dataclass(frozen=True, slots=True)
class Store:
    """``manager.store_session(session)``."""

    session: AtpSessionData


@dataclass(frozen=True, slots=True)
class Logout:
    """``manager.logout()``: deleteSession with the stored refresh token, then forget it."""


@dataclass(frozen=True, slots=True)
class Rotate:
    """A pair newer than the one named: the manager's current one if it already moved
    on, else ``manager.refresh_token()`` (lock, re-read, adopt or refresh).

    Performed under a per-manager lock of this process, so threads or coroutines
    refused with one token refresh once. A failure is thrown into the flow as the
    manager's `SessionError`.
    """

    access_jwt: str | None = None
    refresh_jwt: str | None = None

    def moved_on(self, current: AtpSessionData | None) -> bool:
        """Whether ``current`` is already newer than the pair this names."""
        if current is None:
            return False
        if self.access_jwt is not None:
            return current.access_jwt != self.access_jwt
        return current.refresh_jwt != self.refresh_jwt


Op = Send | Load | Store | Logout | Rotate


# --- the flow ----------------------------------------------------------------------------


def origin(url: str | httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port of ``url``: where a token may be sent."""
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def exchange(
    request: httpx.Request,
    session: AtpSessionData | None,
    servers: frozenset[tuple[str, str, int | None]],
) -> Generator[Op, Any, httpx.Response]:
    """Answer one request of a MarshalX client whose manager holds ``session``.

    Only requests to ``servers`` (the manager's service and PDS, as
    `origin`) are the session's: anything else is sent as it is, so the
    manager's tokens never reach a host that did not issue them.
    """
    nsid = _nsid(request)
    if origin(request.url) not in servers:
        untouched: httpx.Response = yield Send(request)
        return untouched
    if nsid == REFRESH_SESSION:
        return (yield from _refresh(request, session))
    if nsid == DELETE_SESSION and session is not None:
        yield Logout()
        return httpx.Response(200, request=request)
    if nsid == CREATE_SESSION:
        return (yield from _send_and_keep(request))
    token = _bearer_of(request)
    if session is None or not _same_account(token, session):
        foreign: httpx.Response = yield Send(request)  # another account's call
        return foreign
    if token != session.access_jwt:
        _set_bearer(request, session.access_jwt)  # the manager holds a newer token
    response: httpx.Response = yield Send(request)
    if not is_rejected_access(response) or not _replayable(request):
        return response
    try:
        fresh: AtpSessionData = yield Rotate(access_jwt=session.access_jwt)
    except SessionError as exc:
        logger.warning("%s was refused and the refresh failed: %s", nsid, exc)
        return response
    # The refused answer was read whole (and so closed) by the inner client's send.
    _set_bearer(request, fresh.access_jwt)
    replayed: httpx.Response = yield Send(request)
    return replayed


def _refresh(
    request: httpx.Request, session: AtpSessionData | None
) -> Generator[Op, Any, httpx.Response]:
    """MarshalX's refreshSession, answered from the manager (MarshalX installs the pair)."""
    presented = _bearer_of(request)
    if not _same_account(presented, session):
        did = _subject(presented) if presented else None
        session = (yield Load(did)) if did else None
        if session is None:
            # A session the store never had (imported by hand): refresh it, then keep it.
            return (yield from _send_and_keep(request))
    try:
        fresh: AtpSessionData = yield Rotate(refresh_jwt=presented)
    except SessionError as exc:
        return _failure_answer(request, exc)
    return _session_answer(request, fresh)


def _send_and_keep(request: httpx.Request) -> Generator[Op, Any, httpx.Response]:
    """Send a createSession (or refreshSession) and store the session it answers."""
    response: httpx.Response = yield Send(request)
    answered = _answered_session(response)
    if answered is not None:
        yield Store(answered)
    return response


# --- the drivers -------------------------------------------------------------------------


def _servers(
    manager: PersistentSessionManager | AsyncPersistentSessionManager,
) -> frozenset[tuple[str, str, int | None]]:
    return frozenset({origin(manager.service_url), origin(manager.pds_endpoint)})


_SYNC_LOCKS: weakref.WeakKeyDictionary[object, threading.Lock] = weakref.WeakKeyDictionary()
_ASYNC_LOCKS: weakref.WeakKeyDictionary[object, asyncio.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _sync_lock(manager: object) -> threading.Lock:
    """The lock of ``manager``'s rotations in this process (one for all its transports)."""
    with _LOCKS_GUARD:
        return _SYNC_LOCKS.setdefault(manager, threading.Lock())


def _async_lock(manager: object) -> asyncio.Lock:
    """The asyncio twin of `_sync_lock`."""
    with _LOCKS_GUARD:
        return _ASYNC_LOCKS.setdefault(manager, asyncio.Lock())


class SessionTransport(httpx.BaseTransport):
    """An httpx transport that routes a MarshalX ``Client``'s session through ``manager``.

    ``inner`` sends to the network: an ``httpx.Client`` (it applies its own
    proxies, the environment's included), a transport, or ``None`` for a
    default client. Every client and clone built on this transport shares it:
    closing one of them leaves the inner connections open for the others.
    """

    def __init__(
        self,
        manager: PersistentSessionManager,
        inner: httpx.BaseTransport | httpx.Client | None = None,
    ) -> None:
        self.manager = manager
        if isinstance(inner, httpx.Client):
            self._inner = inner
        else:
            self._inner = httpx.Client(transport=inner) if inner is not None else httpx.Client()
        self._lock = _sync_lock(manager)

    def __repr__(self) -> str:
        return f"SessionTransport({self.manager!r})"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer refresh and logout from the manager; send the rest with a current token."""
        flow = exchange(request, self.manager.session, _servers(self.manager))
        result: Any = None
        failure: SessionError | None = None
        while True:
            try:
                op = flow.send(result) if failure is None else flow.throw(failure)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result, failure = self._perform(op), None
            except SessionError as exc:
                result, failure = None, exc

    def close(self) -> None:
        """Nothing to close per client: the inner connections serve every clone."""

    def _perform(self, op: Op) -> Any:
        if isinstance(op, Send):
            return self._inner.send(op.request)
        if isinstance(op, Load):
            return self.manager.load_session(op.did)
        if isinstance(op, Store):
            return self.manager.store_session(op.session)
        if isinstance(op, Logout):
            return self.manager.logout()
        with self._lock:
            current = self.manager.session
            return current if op.moved_on(current) else self.manager.refresh_token()


class AsyncSessionTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of `SessionTransport`, for MarshalX's ``AsyncClient``."""

    def __init__(
        self,
        manager: AsyncPersistentSessionManager,
        inner: httpx.AsyncBaseTransport | httpx.AsyncClient | None = None,
    ) -> None:
        self.manager = manager
        if isinstance(inner, httpx.AsyncClient):
            self._inner = inner
        else:
            self._inner = (
                httpx.AsyncClient(transport=inner) if inner is not None else httpx.AsyncClient()
            )
        self._lock = _async_lock(manager)

    def __repr__(self) -> str:
        return f"AsyncSessionTransport({self.manager!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer refresh and logout from the manager; send the rest with a current token."""
        flow = exchange(request, self.manager.session, _servers(self.manager))
        result: Any = None
        failure: SessionError | None = None
        while True:
            try:
                op = flow.send(result) if failure is None else flow.throw(failure)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                result, failure = await self._perform(op), None
            except SessionError as exc:
                result, failure = None, exc

    async def aclose(self) -> None:
        """Nothing to close per client: the inner connections serve every clone."""

    async def _perform(self, op: Op) -> Any:
        if isinstance(op, Send):
            return await self._inner.send(op.request)
        if isinstance(op, Load):
            return await self.manager.load_session(op.did)
        if isinstance(op, Store):
            return await self.manager.store_session(op.session)
        if isinstance(op, Logout):
            return await self.manager.logout()
        async with self._lock:
            current = self.manager.session
            return current if op.moved_on(current) else await self.manager.refresh_token()
