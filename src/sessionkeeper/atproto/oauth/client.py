"""OAuthClient: sign an ATProto account in with OAuth, then keep the session alive.

``authorize`` discovers the account's authorization server and pushes the
request; the browser signs in; ``callback`` checks the redirect, exchanges the
code, re-verifies the account and stores the session; ``restore`` picks a
stored session up in any later process; ``login`` does it all through a
loopback redirect on 127.0.0.1 (or ::1), ``login_remote`` through the redirect
URL the user pastes back from a browser on another machine. Sessions are handed to an
`OAuthSessionManager`, which refreshes them exactly once across
threads, processes and machines. `AsyncOAuthClient` is the same on
``httpx.AsyncClient``; both share every decision (`.oauth_flow`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import webbrowser
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import urlsplit

import httpx

from sessionkeeper.atproto import variables
from sessionkeeper.atproto.errors import NoSessionError, OAuthCallbackError
from sessionkeeper.atproto.identity import IdentityResolver, issuer_check
from sessionkeeper.atproto.oauth.authorize import (
    begin_authorization,
    callback_params,
    check_redirect,
    complete_authorization,
    own_redirect,
)
from sessionkeeper.atproto.oauth.client_auth import (
    ClientCredentials,
    check_redirect_uri,
    loopback_client_id,
)
from sessionkeeper.atproto.oauth.loopback import LoopbackReceiver
from sessionkeeper.atproto.oauth.manager import AsyncOAuthSessionManager, OAuthSessionManager
from sessionkeeper.atproto.oauth.pending import (
    PendingAuthorization,
    check_app_state,
    prune_pending,
    save_pending,
    take_pending,
)
from sessionkeeper.atproto.oauth.scopes import check_requested
from sessionkeeper.atproto.oauth.session import OAuthSession
from sessionkeeper.atproto.password.manager import DEFAULT_TIMEOUT, manager_store
from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.core.async_flow import AsyncDriver
from sessionkeeper.core.flow import BlockingDriver, Flow
from sessionkeeper.http_limits import bounded_async_client, bounded_client
from sessionkeeper.lifecycle import AsyncClosing, Closing
from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)

DEFAULT_SCOPE = "atproto transition:generic"
DEFAULT_REDIRECT_URI = "http://127.0.0.1/callback"

M = TypeVar("M")


class CallbackResult(NamedTuple, Generic[M]):
    """What a callback hands back: the new session's manager and the app's own state.

    ``state`` is the value the app passed to ``authorize(..., state=...)``
    (``None`` if it passed none): compare it with what the browser that
    delivered the redirect carries (a cookie) to refuse a login CSRF.
    """

    manager: M
    state: str | None


class _ClientSettings:
    """What both clients share: who the client is, where sessions live, how to resolve."""

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None,
        store: Store | None,
        client_id: str | None,
        redirect_uri: str,
        scope: str,
        client_key: dict[str, str] | None,
        handle_resolver: str | None,
        plc_directory: str,
        clock: Clock | None,
        refresh_margin: float,
    ) -> None:
        self.store = manager_store(session_dir, store)
        check_redirect_uri(redirect_uri, loopback=client_id is None)
        check_requested(scope)
        self.credentials = ClientCredentials(
            client_id=client_id or loopback_client_id(redirect_uri, scope),
            redirect_uri=redirect_uri,
            scope=scope,
            key=client_key,
        )
        # Unset or the public default: the variables the CLI reads point the library too.
        self.resolver = IdentityResolver(
            variables.handle_resolver(handle_resolver), variables.plc_directory(plc_directory)
        )
        self.clock = clock or SYSTEM_CLOCK
        self.refresh_margin = float(refresh_margin)

    @property
    def client_metadata(self) -> dict[str, Any]:
        """The client metadata document (what a web client serves at its ``client_id``)."""
        return self.credentials.metadata

    def manager_hooks(self) -> dict[str, Any]:
        """The managers' hooks: client assertions (confidential) and the issuer re-check."""
        client_auth = self.credentials.auth_fields if self.credentials.confidential else None
        return {"client_auth": client_auth, "issuer_check": issuer_check(self.resolver)}

    @property
    def jwks(self) -> dict[str, Any]:
        """The public JWK set (what a web client serves at its ``jwks_uri``)."""
        return self.credentials.jwks

    def begin(
        self, value: str, redirect_uri: str | None, app_state: str | None
    ) -> Flow[tuple[str, PendingAuthorization]]:
        return begin_authorization(
            value,
            resolver=self.resolver,
            credentials=self.credentials,
            redirect_uri=redirect_uri or self.credentials.redirect_uri,
            now=self.clock.time(),
            app_state=check_app_state(app_state),
        )

    def receiver(self) -> LoopbackReceiver:
        """A loopback receiver on the host and path of the configured redirect URI."""
        parts = urlsplit(self.credentials.redirect_uri)
        return LoopbackReceiver(parts.path or "/", parts.hostname or "127.0.0.1")

    def take(self, params: Mapping[str, str]) -> tuple[PendingAuthorization, str]:
        """The pending authorization of a redirect (removed from the store) and its code."""
        state = params.get("state")
        if not state:
            raise OAuthCallbackError("the redirect has no state parameter")
        pending = take_pending(self.store, state, self.clock.time())
        return pending, check_redirect(params, pending)

    def complete(self, pending: PendingAuthorization, code: str) -> Flow[OAuthSession]:
        return complete_authorization(
            pending,
            code,
            resolver=self.resolver,
            credentials=self.credentials,
            now=self.clock.time(),
        )


class _ClientFace:
    """The names both clients show: who the client is, what a web client serves."""

    _settings: _ClientSettings

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self._settings.credentials.client_id!r})"

    @property
    def client_metadata(self) -> dict[str, Any]:
        """The client metadata document (what a web client serves at its ``client_id``)."""
        return self._settings.client_metadata

    @property
    def jwks(self) -> dict[str, Any]:
        """The public JWK set (what a web client serves at its ``jwks_uri``)."""
        return self._settings.jwks


def announce(url: str, redirect_uri: str | None = None, timeout: float | None = None) -> None:
    """Show the authorization URL to the person at the terminal (stderr; it is no secret).

    On a terminal it also says what it waits for and until when, since nothing
    else moves until the browser comes back.
    """
    print(f"Open this URL in a browser to sign in:\n  {url}", file=sys.stderr, flush=True)
    if redirect_uri is None or timeout is None or not sys.stderr.isatty():
        return
    until = time.strftime("%H:%M:%S", time.localtime(time.time() + timeout))
    where = urlsplit(redirect_uri).netloc
    print(
        f"waiting for the browser's redirect on {where} until {until} ({timeout:.0f} s)...",
        file=sys.stderr,
        flush=True,
    )


class OAuthClient(_ClientFace, Closing):
    """Signs accounts in with ATProto OAuth and restores their stored sessions."""

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None = None,
        *,
        store: Store | None = None,
        client_id: str | None = None,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        scope: str = DEFAULT_SCOPE,
        client_key: dict[str, str] | None = None,
        handle_resolver: str | None = None,
        plc_directory: str = "https://plc.directory",
        http: httpx.Client | None = None,
        clock: Clock | None = None,
        refresh_margin: float = 60.0,
    ) -> None:
        self._settings = _ClientSettings(
            session_dir,
            store,
            client_id,
            redirect_uri,
            scope,
            client_key,
            handle_resolver,
            plc_directory,
            clock,
            refresh_margin,
        )
        self.store = self._settings.store
        self._owns_http = http is None
        self._http = http if http is not None else bounded_client(DEFAULT_TIMEOUT)
        self._driver = BlockingDriver(self.store, self._http)

    def close(self) -> None:
        """Close the HTTP client if this client created it."""
        if self._owns_http:
            self._http.close()

    def authorize(
        self,
        handle_or_did_or_url: str,
        *,
        redirect_uri: str | None = None,
        state: str | None = None,
    ) -> str:
        """Start signing in ``handle_or_did_or_url``; return the URL to open in a browser.

        The pushed authorization request is made and the pending state stored
        (10 minutes); ``redirect_uri`` overrides the configured one (a loopback
        port, for instance). ``state`` is the app's own opaque value (at most
        2048 characters), kept with the pending authorization, never sent to
        the server, and handed back by [`callback_with_state`][].
        """
        return self._start(handle_or_did_or_url, redirect_uri, state)[0]

    def _start(
        self, value: str, redirect_uri: str | None, app_state: str | None
    ) -> tuple[str, PendingAuthorization]:
        url, pending = self._driver.run(self._settings.begin(value, redirect_uri, app_state))
        prune_pending(self.store, self._settings.clock.time())  # abandoned sign-ins
        save_pending(self.store, pending)
        return url, pending

    def callback(self, redirect_url_or_params: str | Mapping[str, str]) -> OAuthSessionManager:
        """Finish an authorization from its redirect; return the manager of the new session."""
        return self.callback_with_state(redirect_url_or_params).manager

    def callback_with_state(
        self, redirect_url_or_params: str | Mapping[str, str]
    ) -> CallbackResult[OAuthSessionManager]:
        """Finish an authorization; return the new session's manager and the app's state."""
        pending, code = self._settings.take(callback_params(redirect_url_or_params))
        session = self._driver.run(self._settings.complete(pending, code))
        manager = self._manager()
        manager.store_session(session)
        logger.info("signed in %s with OAuth", session.did)
        return CallbackResult(manager, pending.app_state)

    def restore(self, did: str) -> OAuthSessionManager:
        """The manager of ``did``'s stored OAuth session; [`NoSessionError`][] if none."""
        manager = self._manager()
        if manager.load_session(did) is None:
            manager.close()
            raise NoSessionError(f"no stored OAuth session for {did}: sign in first")
        return manager

    def login(
        self, handle: str, *, open_browser: bool = True, timeout: float = 300
    ) -> OAuthSessionManager:
        """Sign ``handle`` in through the browser and a loopback redirect on 127.0.0.1 or ::1."""
        with self._settings.receiver() as receiver:
            url, pending = self._start(handle, receiver.redirect_uri, None)
            receiver.expect(pending.state)
            announce(url, receiver.redirect_uri, timeout)
            if open_browser:
                webbrowser.open(url)
            params = receiver.wait(timeout)
        return self.callback(params)

    def login_remote(self, handle: str, read_redirect: Callable[[str], str]) -> OAuthSessionManager:
        """Sign ``handle`` in with a browser elsewhere: ``read_redirect(url)`` returns the
        redirect URL the browser was sent to (and could not load), pasted back by the user.

        The pasted URL must be this sign-in's redirect (its ``redirect_uri`` and
        ``state``); then ``iss``, the code exchange with PKCE and the DPoP key
        are checked as for any callback.
        """
        url, pending = self._start(handle, None, None)
        return self.callback(own_redirect(read_redirect(url), pending))

    def _manager(self) -> OAuthSessionManager:
        return OAuthSessionManager(
            None,
            store=self.store,
            refresh_margin=self._settings.refresh_margin,
            http=self._http,
            clock=self._settings.clock,
            **self._settings.manager_hooks(),
        )


class AsyncOAuthClient(_ClientFace, AsyncClosing):
    """The asyncio twin of [`OAuthClient`][]: the same names, I/O as coroutines."""

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None = None,
        *,
        store: Store | None = None,
        client_id: str | None = None,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        scope: str = DEFAULT_SCOPE,
        client_key: dict[str, str] | None = None,
        handle_resolver: str | None = None,
        plc_directory: str = "https://plc.directory",
        http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        refresh_margin: float = 60.0,
    ) -> None:
        self._settings = _ClientSettings(
            session_dir,
            store,
            client_id,
            redirect_uri,
            scope,
            client_key,
            handle_resolver,
            plc_directory,
            clock,
            refresh_margin,
        )
        self.store = self._settings.store
        self._owns_http = http is None
        self._http = http if http is not None else bounded_async_client(DEFAULT_TIMEOUT)
        self._driver = AsyncDriver(self.store, self._http)

    async def aclose(self) -> None:
        """Close the HTTP client if this client created it."""
        await self._driver.aclose()
        if self._owns_http:
            await self._http.aclose()

    async def authorize(
        self,
        handle_or_did_or_url: str,
        *,
        redirect_uri: str | None = None,
        state: str | None = None,
    ) -> str:
        """Start signing in ``handle_or_did_or_url``; return the URL to open in a browser."""
        return (await self._start(handle_or_did_or_url, redirect_uri, state))[0]

    async def _start(
        self, value: str, redirect_uri: str | None, app_state: str | None
    ) -> tuple[str, PendingAuthorization]:
        flow = self._settings.begin(value, redirect_uri, app_state)
        url, pending = await self._driver.run(flow)
        # Store calls block (files, sockets): a worker thread keeps the loop free.
        await asyncio.to_thread(prune_pending, self.store, self._settings.clock.time())
        await asyncio.to_thread(save_pending, self.store, pending)
        return str(url), pending

    async def callback(
        self, redirect_url_or_params: str | Mapping[str, str]
    ) -> AsyncOAuthSessionManager:
        """Finish an authorization from its redirect; return the manager of the new session."""
        return (await self.callback_with_state(redirect_url_or_params)).manager

    async def callback_with_state(
        self, redirect_url_or_params: str | Mapping[str, str]
    ) -> CallbackResult[AsyncOAuthSessionManager]:
        """Finish an authorization; return the new session's manager and the app's state."""
        params = callback_params(redirect_url_or_params)
        pending, code = await asyncio.to_thread(self._settings.take, params)
        session: OAuthSession = await self._driver.run(self._settings.complete(pending, code))
        manager = self._manager()
        await manager.store_session(session)
        logger.info("signed in %s with OAuth", session.did)
        return CallbackResult(manager, pending.app_state)

    async def restore(self, did: str) -> AsyncOAuthSessionManager:
        """The manager of ``did``'s stored OAuth session; [`NoSessionError`][] if none."""
        manager = self._manager()
        if await manager.load_session(did) is None:
            await manager.aclose()
            raise NoSessionError(f"no stored OAuth session for {did}: sign in first")
        return manager

    async def login(
        self, handle: str, *, open_browser: bool = True, timeout: float = 300
    ) -> AsyncOAuthSessionManager:
        """Sign ``handle`` in through the browser and a loopback redirect on 127.0.0.1 or ::1."""
        with self._settings.receiver() as receiver:
            url, pending = await self._start(handle, receiver.redirect_uri, None)
            receiver.expect(pending.state)
            announce(url, receiver.redirect_uri, timeout)
            if open_browser:
                await asyncio.to_thread(webbrowser.open, url)
            params = await asyncio.to_thread(receiver.wait, timeout)
        return await self.callback(params)

    async def login_remote(
        self, handle: str, read_redirect: Callable[[str], str]
    ) -> AsyncOAuthSessionManager:
        """Sign ``handle`` in with a browser elsewhere (see [`OAuthClient.login_remote`][])."""
        url, pending = await self._start(handle, None, None)
        pasted = await asyncio.to_thread(read_redirect, url)
        return await self.callback(own_redirect(pasted, pending))

    def _manager(self) -> AsyncOAuthSessionManager:
        return AsyncOAuthSessionManager(
            None,
            store=self.store,
            refresh_margin=self._settings.refresh_margin,
            http=self._http,
            clock=self._settings.clock,
            **self._settings.manager_hooks(),
        )
