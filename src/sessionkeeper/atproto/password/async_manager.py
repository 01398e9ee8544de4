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

from sessionkeeper.atproto.errors import SessionExpiredError
from sessionkeeper.atproto.manager_base import AsyncManager
from sessionkeeper.atproto.password import flows
from sessionkeeper.atproto.password.kind import BearerAuthorizer
from sessionkeeper.atproto.password.manager import PasswordSessions
from sessionkeeper.atproto.types import AtpSessionData, AtpSessionEvent
from sessionkeeper.clock import Clock
from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)


class AsyncPersistentSessionManager(PasswordSessions, AsyncManager[AtpSessionData]):
    """The asyncio twin of [`PersistentSessionManager`][]: same names, coroutines for I/O.

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
            session_dir, store, refresh_margin, auto_refresh, http, clock, BearerAuthorizer()
        )

    async def login(
        self,
        identifier: str,
        password: str,
        *,
        auth_factor_token: str | None = None,
        force: bool = False,
    ) -> AtpSessionData:
        """Make ``identifier``'s session current: the stored one if it can still be refreshed.

        Only when no stored session of that handle, DID or e-mail is valid or
        refreshable does it call createSession (rate-limited by the server), and
        it stores the result. ``force=True`` always logs in anew and revokes
        the stored session of that account it replaces.
        """
        try:
            outcome = await self._driver.run(
                self._login_flow(identifier, password, auth_factor_token, force=force)
            )
            session = self._loaded(outcome.session)
            revived = await self._revived(session) if outcome.reused else session
            if revived is None:  # the server declared it dead: log in anew
                outcome = await self._driver.run(
                    self._login_flow(identifier, password, auth_factor_token, force=True)
                )
                revived = self._loaded(outcome.session)
            session = revived
        except Exception:
            self._state.emit(AtpSessionEvent.CREATE_FAILED, None)
            raise
        self._remember(session, outcome.endpoint)
        verb = "reused the stored session of" if outcome.reused else "logged in as"
        logger.info("%s %s (%s)", verb, session.handle, session.did)
        return session

    async def resume(self, identifier: str) -> AtpSessionData | None:
        """Make ``identifier``'s stored session current without logging in; ``None`` if none works.

        The handle, DID or e-mail names the session as in [`login`][]; it is
        refreshed first when its access token has expired. No createSession is
        made, so no password is needed.
        """
        named = await self._driver.run(self._named(identifier))
        found = flows.reusable(named, identifier, self._state.clock.time())
        return None if found is None else await self._revived(self._loaded(found))

    async def _revived(self, session: AtpSessionData) -> AtpSessionData | None:
        """``session``, refreshed if its access token expired; ``None`` if the server ended it."""
        if not self._state.is_expired(session):
            return session
        try:
            return await self._refresh(session)
        except SessionExpiredError:
            return None

    async def logout(self, session: AtpSessionData | None = None) -> None:
        """Revoke the session on the server (deleteSession), then clear it locally.

        ``session`` names the account to log out (default: the current one);
        logging out another account leaves the current session current.
        """
        session = session if session is not None else self._state.require()
        await self._driver.run(flows.logout_flow(session, service_url=self._service_url))
        logger.info("logged out %s", session.did)
        self._cleared(session)
