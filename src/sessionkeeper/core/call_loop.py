"""The call loop every manager runs: refresh when due, send, on rejection refresh and replay once.

`call_loop` is written once as a generator and driven by
`SessionAuth`, an ``httpx.Auth`` whose sync and async flows differ only
in how they ask the manager for a session. The managers' own ``query`` and
``procedure`` send through that same auth, so there is one loop, not one per
manager and per flow.

A protocol supplies an `Authorizer`: how to sign and send a request
(an ATProto bearer token; a DPoP proof with its nonce retry) and which
answers mean "this access token was refused".
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx

logger = logging.getLogger(__name__)

S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class CurrentSession:
    """A call-loop step: reply with the session to use, refreshed first when due."""


@dataclass(frozen=True, slots=True)
class RefreshRejected(Generic[S]):
    """A call-loop step: reply with a fresh session after the server refused ``used``."""

    used: S


CallStep = httpx.Request | CurrentSession | RefreshRejected[Any]


class Authorizer(Protocol[S_contra]):
    """How a protocol signs and sends one request with a session."""

    def send(
        self, request: httpx.Request, session: S_contra
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """Sign ``request``, yield it to be sent (again, for a nonce retry), return the answer."""

    def rejected(self, response: httpx.Response) -> bool:
        """Whether ``response`` refused the access token (expired or revoked)."""


def can_replay(request: httpx.Request) -> bool:
    """Whether ``request``'s body can be sent again (it is held in memory)."""
    return isinstance(request.stream, httpx.ByteStream)


def call_loop(
    request: httpx.Request, authorizer: Authorizer[Any], *, auto_refresh: bool, renewals: int = 1
) -> Generator[CallStep, Any, httpx.Response]:
    """Send ``request`` with the current session; on a refused token refresh once, replay once.

    A body that cannot be replayed (a consumed stream) is not sent twice: the
    refusal is returned as it came. ``renewals`` allows more refresh-and-replay
    rounds for a protocol whose adopted sessions cannot be checked before use
    (HAC: a session another process saved may have died with a server restart);
    a source that has nothing better than the refused session answers ``None``,
    and the refusal is returned as it came.
    """
    session = yield CurrentSession()
    response: httpx.Response = yield from authorizer.send(request, session)
    for _ in range(renewals):
        if not (auto_refresh and authorizer.rejected(response)):
            return response
        if not can_replay(request):
            logger.info(
                "%s %s: token refused and the body cannot be replayed; not retrying",
                request.method,
                request.url.path,
            )
            return response
        fresh = yield RefreshRejected(session)
        if fresh is None:
            return response
        session = fresh
        response = yield from authorizer.send(request, session)
    return response


class SyncSessionSource(Protocol[S]):
    """What the call loop needs from a blocking manager."""

    @property
    def auto_refresh(self) -> bool:
        """Whether to refresh at all."""

    def session_for_call(self) -> S:
        """The current session, refreshed first when due."""

    def refresh_rejected(self, used: S) -> S | None:
        """A fresh session after the server refused ``used`` (``None``: none better)."""


class AsyncSessionSource(Protocol[S]):
    """What the call loop needs from an asyncio manager."""

    @property
    def auto_refresh(self) -> bool:
        """Whether to refresh at all."""

    async def session_for_call(self) -> S:
        """The current session, refreshed first when due."""

    async def refresh_rejected(self, used: S) -> S | None:
        """A fresh session after the server refused ``used`` (``None``: none better)."""


class ThreadedSource(Generic[S]):
    """Lets a blocking manager serve ``httpx.AsyncClient`` requests, its work in threads."""

    def __init__(self, inner: SyncSessionSource[S]) -> None:
        self._inner = inner

    @property
    def auto_refresh(self) -> bool:
        """Whether the blocking source refreshes at all."""
        return self._inner.auto_refresh

    async def session_for_call(self) -> S:
        """Run the blocking ``session_for_call`` off the event loop."""
        import asyncio  # here: blocking users of the loop (HAC scripts) never load asyncio

        return await asyncio.to_thread(self._inner.session_for_call)

    async def refresh_rejected(self, used: S) -> S | None:
        """Run the blocking ``refresh_rejected`` off the event loop."""
        import asyncio

        return await asyncio.to_thread(self._inner.refresh_rejected, used)


class SessionAuth(httpx.Auth, Generic[S]):
    """An ``httpx.Auth`` that carries, refreshes and retries with a manager's session.

    Its own sync and async flows read every answer before the loop looks at it.
    """

    def __init__(
        self,
        authorizer: Authorizer[S],
        *,
        sync_source: SyncSessionSource[S] | None,
        async_source: AsyncSessionSource[S],
        renewals: int = 1,
    ) -> None:
        self._authorizer = authorizer
        self._sync = sync_source
        self._async = async_source
        self._renewals = renewals  #: refresh-and-replay rounds per request (see call_loop)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Drive `call_loop` for ``httpx.Client``."""
        source = self._sync
        if source is None:
            raise TypeError("an asyncio manager's auth works with httpx.AsyncClient")
        loop = call_loop(
            request, self._authorizer, auto_refresh=source.auto_refresh, renewals=self._renewals
        )
        reply: Any = None
        while True:
            try:
                step = loop.send(reply)
            except StopIteration:
                return
            if isinstance(step, CurrentSession):
                reply = source.session_for_call()
            elif isinstance(step, RefreshRejected):
                reply = source.refresh_rejected(step.used)
            else:
                reply = yield step
                reply.read()

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Drive `call_loop` for ``httpx.AsyncClient``."""
        source = self._async
        loop = call_loop(
            request, self._authorizer, auto_refresh=source.auto_refresh, renewals=self._renewals
        )
        reply: Any = None
        while True:
            try:
                step = loop.send(reply)
            except StopIteration:
                return
            if isinstance(step, CurrentSession):
                reply = await source.session_for_call()
            elif isinstance(step, RefreshRejected):
                reply = await source.refresh_rejected(step.used)
            else:
                reply = yield step
                await reply.aread()
