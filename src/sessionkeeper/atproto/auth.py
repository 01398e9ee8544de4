"""SessionAuth: an ``httpx.Auth`` that carries the session's access token on any client.

Before a request: refresh when due (proactive). After a 400 ExpiredToken or
a 401: refresh once and send the request once more, but only if its body
can be sent again; a streamed body that was consumed is not replayed and the
original response is returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Generator
from typing import Protocol

import httpx

from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.atproto.xrpc import is_rejected_access

logger = logging.getLogger(__name__)


class SyncSessionSource(Protocol):
    """What the auth flow needs from a blocking manager."""

    @property
    def auto_refresh(self) -> bool:
        """Whether to refresh at all."""

    def session_for_call(self) -> AtpSessionData:
        """The current session, refreshed first when due."""

    def refresh_rejected(self, used: AtpSessionData) -> AtpSessionData:
        """A fresh session after the server refused ``used``."""


class AsyncSessionSource(Protocol):
    """What the auth flow needs from an async manager."""

    @property
    def auto_refresh(self) -> bool:
        """Whether to refresh at all."""

    async def session_for_call(self) -> AtpSessionData:
        """The current session, refreshed first when due."""

    async def refresh_rejected(self, used: AtpSessionData) -> AtpSessionData:
        """A fresh session after the server refused ``used``."""


class ThreadedSource:
    """Adapts a blocking source for the async flow by running it in worker threads."""

    def __init__(self, inner: SyncSessionSource) -> None:
        self._inner = inner

    @property
    def auto_refresh(self) -> bool:
        """Whether the blocking source refreshes at all."""
        return self._inner.auto_refresh

    async def session_for_call(self) -> AtpSessionData:
        """Run the blocking ``session_for_call`` off the event loop."""
        return await asyncio.to_thread(self._inner.session_for_call)

    async def refresh_rejected(self, used: AtpSessionData) -> AtpSessionData:
        """Run the blocking ``refresh_rejected`` off the event loop."""
        return await asyncio.to_thread(self._inner.refresh_rejected, used)


def can_replay(request: httpx.Request) -> bool:
    """Whether ``request``'s body can be sent again (it is held in memory)."""
    return isinstance(request.stream, httpx.ByteStream)


def _authorize(request: httpx.Request, session: AtpSessionData) -> None:
    request.headers["Authorization"] = f"Bearer {session.access_jwt}"


def _should_retry(auto: bool, request: httpx.Request, response: httpx.Response) -> bool:
    if not auto or not is_rejected_access(response):
        return False
    if not can_replay(request):
        logger.info(
            "%s %s: token refused and the body cannot be replayed; not retrying",
            request.method,
            request.url.path,
        )
        return False
    return True


class SessionAuth(httpx.Auth):
    """Authenticates httpx requests with a manager's current ATProto session."""

    requires_response_body = True

    def __init__(
        self, *, sync_source: SyncSessionSource | None, async_source: AsyncSessionSource
    ) -> None:
        self._sync = sync_source
        self._async = async_source

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign, send, and on a refused token refresh once and resend once."""
        source = self._sync
        if source is None:
            raise TypeError("an AsyncPersistentSessionManager's auth works with httpx.AsyncClient")
        session = source.session_for_call()
        _authorize(request, session)
        response = yield request
        response.read()
        if _should_retry(source.auto_refresh, request, response):
            _authorize(request, source.refresh_rejected(session))
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The same flow for ``httpx.AsyncClient``."""
        source = self._async
        session = await source.session_for_call()
        _authorize(request, session)
        response = yield request
        await response.aread()
        if _should_retry(source.auto_refresh, request, response):
            _authorize(request, await source.refresh_rejected(session))
            yield request
