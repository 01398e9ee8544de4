"""AsyncPersistentSessionManager: the asyncio twin of the app-password manager.

The same flows as the blocking manager run on the core's asyncio driver:
requests go out on the event loop with ``httpx.AsyncClient``; a locked flow's
store calls run on one worker thread per name (file locks belong to the
thread that took them), so the loop is never blocked.
"""

from __future__ import annotations

import logging
import os

import httpx

from sessionkeeper.atproto.manager_base import AsyncManager
from sessionkeeper.atproto.password import flows
from sessionkeeper.atproto.password.kind import BearerAuthorizer
from sessionkeeper.atproto.password.manager import PasswordSessions
from sessionkeeper.atproto.types import AtpSessionData, AtpSessionEvent
from sessionkeeper.clock import Clock
from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)


class AsyncPersistentSessionManager(PasswordSessions, AsyncManager[AtpSessionData]):
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
        self._service_url = service_url.rstrip("/")
        self._endpoints = {}
        super().__init__(
            session_dir,
            store=store,
            refresh_margin=refresh_margin,
            auto_refresh=auto_refresh,
            http=http,
            clock=clock,
            authorizer=BearerAuthorizer(),
        )

    async def login(
        self, identifier: str, password: str, *, auth_factor_token: str | None = None
    ) -> AtpSessionData:
        """Create a session with createSession (always), store it and make it current."""
        flow = flows.login_flow(
            identifier,
            password,
            auth_factor_token=auth_factor_token,
            service_url=self._service_url,
            now=self._state.clock.time(),
        )
        try:
            session, endpoint = await self._driver.run(flow)
        except Exception:
            self._state.emit(AtpSessionEvent.CREATE_FAILED, None)
            raise
        self._remember(session, endpoint)
        logger.info("logged in as %s (%s)", session.handle, session.did)
        return self._loaded(session)

    async def logout(self, session: AtpSessionData | None = None) -> None:
        """Revoke the session on the server (deleteSession), then clear it locally.

        ``session`` names the account to log out (default: the current one);
        logging out another account leaves the current session current.
        """
        session = session if session is not None else self._state.require()
        await self._driver.run(flows.logout_flow(session, service_url=self._service_url))
        logger.info("logged out %s", session.did)
        self._cleared(session)
