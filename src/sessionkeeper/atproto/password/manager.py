"""PersistentSessionManager: app-password sessions, persisted, refreshed exactly once."""

from __future__ import annotations

import logging
import os

import httpx

from sessionkeeper.atproto.errors import SessionExpiredError
from sessionkeeper.atproto.kinds import AtprotoKind
from sessionkeeper.atproto.listing import sessions_named
from sessionkeeper.atproto.manager_base import (
    DEFAULT_TIMEOUT,
    EARLY_REFRESH_FAILURES,
    BlockingManager,
    manager_store,
)
from sessionkeeper.atproto.password import flows
from sessionkeeper.atproto.password.flows import PasswordRefresh
from sessionkeeper.atproto.password.kind import PASSWORD, BearerAuthorizer
from sessionkeeper.atproto.refresh import TokenRefreshPolicy
from sessionkeeper.atproto.types import AtpSessionData, AtpSessionEvent
from sessionkeeper.clock import Clock
from sessionkeeper.core.flow import Call, Flow
from sessionkeeper.core.state import SessionState
from sessionkeeper.redaction import redact_url
from sessionkeeper.stores.base import Store

__all__ = [
    "DEFAULT_TIMEOUT",
    "EARLY_REFRESH_FAILURES",
    "PasswordSessions",
    "PersistentSessionManager",
    "manager_store",
]

logger = logging.getLogger(__name__)


class PasswordSessions:
    """What both password shells add to the shared machinery: the service and its PDS."""

    _kind: AtprotoKind[AtpSessionData] = PASSWORD
    _state: SessionState[AtpSessionData]
    _service_url: str
    _endpoints: dict[str, str]
    store: Store

    def _where(self) -> str:
        return f"{redact_url(self._service_url)!r}, "

    @property
    def service_url(self) -> str:
        """The service (entryway or PDS) that creates and refreshes sessions."""
        return self._service_url

    @property
    def pds_endpoint(self) -> str:
        """Where XRPC calls of the current session go (didDoc's PDS, else the service)."""
        session = self._state.session
        return self._xrpc_base(session) if session is not None else self._service_url

    def _xrpc_base(self, session: AtpSessionData) -> str:
        return self._endpoints.get(session.did, self._service_url)

    def _remember(self, session: AtpSessionData, endpoint: str | None) -> None:
        if endpoint:
            self._endpoints[session.did] = endpoint

    def _policy(self, known: AtpSessionData) -> PasswordRefresh:
        state = self._state
        return PasswordRefresh(
            known, service_url=self._service_url, now=state.clock.time(), in_memory=state.session
        )

    def _named(self, identifier: str) -> Flow[list[AtpSessionData]]:
        """The stored sessions ``identifier`` may name (`sessions_named`), as one step."""
        store = self.store
        named: list[AtpSessionData] = yield Call(lambda: sessions_named(store, identifier))
        return named

    def _login_flow(
        self, identifier: str, password: str, auth_factor_token: str | None, *, force: bool
    ) -> Flow[flows.LoginOutcome]:
        store = self.store
        return flows.login_flow(
            identifier,
            password,
            auth_factor_token=auth_factor_token,
            service_url=self._service_url,
            now=self._state.clock.time(),
            stored=lambda: sessions_named(store, identifier),
            force=force,
        )

    def _after_refresh(self, policy: TokenRefreshPolicy[AtpSessionData]) -> None:
        if isinstance(policy, PasswordRefresh) and policy.endpoint:
            self._endpoints[policy.did] = policy.endpoint


class PersistentSessionManager(PasswordSessions, BlockingManager[AtpSessionData]):
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
        self._service_url = service_url.rstrip("/")
        self._endpoints = {}
        super().__init__(
            session_dir, store, refresh_margin, auto_refresh, http, clock, BearerAuthorizer()
        )

    def login(
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
            outcome = self._driver.run(
                self._login_flow(identifier, password, auth_factor_token, force=force)
            )
            session = self._loaded(outcome.session)
            revived = self._revived(session) if outcome.reused else session
            if revived is None:  # the server declared it dead: log in anew
                outcome = self._driver.run(
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

    def resume(self, identifier: str) -> AtpSessionData | None:
        """Make ``identifier``'s stored session current without logging in; ``None`` if none works.

        The handle, DID or e-mail names the session as in [`login`][]; it is
        refreshed first when its access token has expired. No createSession is
        made, so no password is needed.
        """
        named = self._driver.run(self._named(identifier))
        found = flows.reusable(named, identifier, self._state.clock.time())
        return None if found is None else self._revived(self._loaded(found))

    def _revived(self, session: AtpSessionData) -> AtpSessionData | None:
        """``session``, refreshed if its access token expired; ``None`` if the server ended it."""
        if not self._state.is_expired(session):
            return session
        try:
            return self._refresh(session)
        except SessionExpiredError:
            return None

    def logout(self, session: AtpSessionData | None = None) -> None:
        """Revoke the session on the server (deleteSession), then clear it locally.

        ``session`` names the account to log out (default: the current one);
        logging out another account leaves the current session current.
        """
        session = session if session is not None else self._state.require()
        self._driver.run(flows.logout_flow(session, service_url=self._service_url))
        logger.info("logged out %s", session.did)
        self._cleared(session)
