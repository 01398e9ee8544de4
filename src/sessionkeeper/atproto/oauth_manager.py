"""OAuthSessionManager: persisted, shared, single-flight refreshed ATProto OAuth sessions.

The same guarantees as the password :class:`PersistentSessionManager`, for
DPoP-bound OAuth token sets: refresh tokens are single use, so a refresh
takes the store lock of the DID, re-reads the stored set and adopts one that
another thread or process already refreshed. Calls carry a DPoP proof, follow
a server's ``use_dpop_nonce`` once, and on an expired token refresh once and
retry once. Verdicts match the password flow: ``invalid_grant`` removes the
session (expired), network errors, 5xx and 429 keep it (network-error).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, NoReturn, Self

import httpx

from sessionkeeper.atproto.dpop import DpopSigner, jwk_thumbprint, public_jwk
from sessionkeeper.atproto.errors import (
    CorruptSessionError,
    NoSessionError,
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
    XrpcNetworkError,
)
from sessionkeeper.atproto.manager import DEFAULT_TIMEOUT, EARLY_REFRESH_FAILURES, resolve_store
from sessionkeeper.atproto.oauth_session import (
    OAUTH_PREFIX,
    OAUTH_SUFFIX,
    OAuthSession,
    decode_oauth,
    encode_oauth,
    oauth_name_for_did,
    refreshed,
)
from sessionkeeper.atproto.types import AtpSessionEvent
from sessionkeeper.atproto.xrpc import decode_result, error_body, retry_after, validate_nsid
from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.events import EventBus
from sessionkeeper.stores.base import Store, iter_items
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

OAuthCallback = Callable[[AtpSessionEvent, OAuthSession | None], object]

#: Token endpoint errors that mean the refresh token is dead.
DEAD_GRANT_ERRORS = frozenset({"invalid_grant", "invalid_token", "unauthorized_client"})


def wants_nonce(response: httpx.Response) -> bool:
    """Whether a server asked for a (new) DPoP nonce."""
    if "use_dpop_nonce" in response.headers.get("www-authenticate", ""):
        return True
    return response.status_code == 400 and error_body(response)[0] == "use_dpop_nonce"


def token_rejected(response: httpx.Response) -> bool:
    """Whether a resource server refused the access token as expired or invalid."""
    if wants_nonce(response):
        return False
    if response.status_code == 401:
        return True
    return response.status_code == 400 and error_body(response)[0] == "ExpiredToken"


def _issued(session: OAuthSession) -> float:
    """Orders two token sets of one account: the access token of the newer expires later."""
    return session.expires_at or 0.0


def _same_tokens(a: OAuthSession, b: OAuthSession) -> bool:
    return a.access_token == b.access_token and a.refresh_token == b.refresh_token


class OAuthSessionManager:
    """Keeps one current OAuth session, persisted in a store, refreshed exactly once."""

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None,
        *,
        store: Store | None = None,
        refresh_margin: float = 60.0,
        auto_refresh: bool = True,
        http: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.store = resolve_store(session_dir, store)
        self.refresh_margin = float(refresh_margin)
        self._auto = auto_refresh
        self._clock = clock or SYSTEM_CLOCK
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._events: EventBus[AtpSessionEvent, OAuthSession | None] = EventBus()
        self._session: OAuthSession | None = None
        self._signers: dict[str, DpopSigner] = {}
        self._not_before: dict[str, float] = {}
        self._guard = threading.Lock()
        self.auth = OAuthAuth(self)
        """An ``httpx.Auth`` adding DPoP proofs, nonce retries and refresh to any client."""

    def __repr__(self) -> str:
        return f"OAuthSessionManager(session={self._session.did if self._session else None!r})"

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

    # -- state ----------------------------------------------------------------------------

    @property
    def session(self) -> OAuthSession | None:
        """The current session, or ``None``."""
        return self._session

    @property
    def auto_refresh(self) -> bool:
        """Whether calls refresh proactively and reactively."""
        return self._auto

    def enable_auto_refresh(self) -> None:
        """Turn proactive and reactive refresh on."""
        self._auto = True

    def disable_auto_refresh(self) -> None:
        """Turn proactive and reactive refresh off."""
        self._auto = False

    def on_session_event(self, callback: OAuthCallback) -> Callable[[], None]:
        """Subscribe ``callback(event, session | None)``; return an unsubscribe function."""
        return self._events.subscribe(callback)

    def _due(self, session: OAuthSession, margin: float) -> bool:
        return session.expires_at is not None and self._clock.time() > session.expires_at - margin

    def needs_refresh(self) -> bool:
        """Whether the current access token is within ``refresh_margin`` of its expiry."""
        session = self._session
        return session is not None and self._due(session, self.refresh_margin)

    def _require(self) -> OAuthSession:
        session = self._session
        if session is None:
            raise NoSessionError("no OAuth session: store or load one first")
        return session

    def signer(self, session: OAuthSession) -> DpopSigner:
        """The DPoP signer of ``session``'s key (nonces are shared per key)."""
        key = jwk_thumbprint(public_jwk(session.dpop_jwk))
        with self._guard:
            signer = self._signers.get(key)
            if signer is None:
                signer = self._signers[key] = DpopSigner(session.dpop_jwk)
            return signer

    # -- sessions -------------------------------------------------------------------------

    def store_session(self, session: OAuthSession) -> None:
        """Persist ``session`` under its DID and make it current."""
        name = oauth_name_for_did(session.did)
        with self.store.lock(name):
            self.store.put(name, encode_oauth(session))
        self._session = session
        self._events.emit(AtpSessionEvent.CREATE, session)

    def load_session(self, did: str) -> OAuthSession | None:
        """Load the stored OAuth session of ``did`` and make it current; ``None`` if absent."""
        name = oauth_name_for_did(did)
        raw = self.store.get(name)
        if raw is None:
            return None
        session = decode_oauth(raw, name=name)
        if session.did != did:
            logger.warning(
                "OAuth session %s holds %s, not %s; not loading it", name, session.did, did
            )
            return None
        self._session = session
        self._events.emit(AtpSessionEvent.CREATE, session)
        return session

    def list_sessions(self) -> list[str]:
        """DIDs of every stored OAuth session (corrupt and foreign entries skipped)."""
        found = []
        for name, raw in iter_items(self.store):
            if not (name.startswith(OAUTH_PREFIX) and name.endswith(OAUTH_SUFFIX)):
                continue
            try:
                session = decode_oauth(raw, name=name)
            except CorruptSessionError as exc:
                logger.warning("skipping %s", exc)
                continue
            if oauth_name_for_did(session.did) == name:
                found.append(session.did)
        return sorted(found)

    def clear_session(self) -> None:
        """Remove the current session from memory and the store (no server call)."""
        session = self._session
        if session is None:
            return
        name = oauth_name_for_did(session.did)
        with self.store.lock(name):
            self.store.delete(name)
        self._forget(session.did)
        self._events.emit(AtpSessionEvent.DELETE, session)

    def logout(self) -> None:
        """Revoke the refresh token (when the server has a revocation endpoint), then clear."""
        session = self._require()
        if session.revocation_endpoint and session.refresh_token:
            try:
                answer = self._http.post(
                    session.revocation_endpoint,
                    data={"token": session.refresh_token, "client_id": session.client_id},
                    headers={
                        "DPoP": self.signer(session).proof("POST", session.revocation_endpoint)
                    },
                )
                if not answer.is_success:
                    logger.warning(
                        "revocation answered HTTP %s; clearing locally", answer.status_code
                    )
            except httpx.TransportError as exc:
                logger.warning("revocation endpoint unreachable (%s); clearing locally", exc)
        self.clear_session()

    def _forget(self, did: str) -> None:
        with self._guard:
            if self._session is not None and self._session.did == did:
                self._session = None

    # -- refresh --------------------------------------------------------------------------

    def refresh_token(self) -> OAuthSession:
        """Refresh the current session now (or adopt a set another process refreshed)."""
        return self._refresh(self._require(), force=True)

    def _read_stored(self, name: str, did: str) -> OAuthSession | None:
        raw = self.store.get(name)
        if raw is None:
            return None
        try:
            stored = decode_oauth(raw, name=name)
        except CorruptSessionError as exc:
            logger.warning("ignoring stored OAuth session: %s", exc)
            return None
        return stored if stored.did == did else None

    def _token_request(self, base: OAuthSession) -> httpx.Response:
        """POST the refresh grant with a DPoP proof; follow one ``use_dpop_nonce``."""
        signer = self.signer(base)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": base.refresh_token or "",
            "client_id": base.client_id,
        }
        url = base.token_endpoint
        for attempt in range(2):
            sent = signer.nonce(url)
            answer = self._http.post(
                url, data=form, headers={"DPoP": signer.proof("POST", url, nonce=sent)}
            )
            changed = signer.remember_nonce(url, answer.headers.get("dpop-nonce"), sent=sent)
            if not (attempt == 0 and changed and wants_nonce(answer)):
                break
        return answer

    def _refresh(self, known: OAuthSession, *, force: bool = False) -> OAuthSession:
        did = known.did
        current = self._session
        if (
            not force
            and current is not None
            and current.did == did
            and not _same_tokens(current, known)
            and not self._due(current, 0.0)
        ):
            return current  # another thread of this process refreshed meanwhile
        until = self._not_before.get(did)
        if until is not None and until > self._clock.time():
            wait = until - self._clock.time()
            raise SessionNetworkError(
                f"refresh of {did} not attempted: the server asked to wait {wait:.0f} s more",
                retry_after=wait,
            )
        name = oauth_name_for_did(did)
        # Refresh tokens are single use: lock, re-read, adopt or refresh, store.
        with self.store.lock(name):
            stored = self._read_stored(name, did)
            # A stored set older than ours is one we rotated but could not store.
            newer = stored is not None and _issued(stored) >= _issued(known)
            if (
                stored is not None
                and newer
                and not _same_tokens(stored, known)
                and not self._due(stored, 0.0)
            ):
                return self._adopt(known, stored, announce=True)
            base = stored if stored is not None and newer else known
            if not base.refresh_token:
                raise SessionError(f"the OAuth session of {did} has no refresh token")
            try:
                answer = self._token_request(base)
            except httpx.TransportError as exc:
                self._emit_network(base, f"{type(exc).__name__}: {exc}", None, None)
            error, message = (None, None) if answer.is_success else error_body(answer)
            if answer.is_success:
                try:
                    body = json.loads(answer.content)
                except ValueError:
                    raise SessionError(f"token refresh for {did} answered without JSON") from None
                fresh = refreshed(base, body, self._clock.time())
                try:
                    self.store.put(name, encode_oauth(fresh))
                except StoreError as exc:
                    # The old refresh token is spent: keep the new set in memory.
                    logger.error(
                        "refreshed the OAuth session of %s but could not store it (%s); "
                        "this process keeps it in memory",
                        did,
                        exc,
                    )
                logger.info("refreshed the OAuth session of %s", did)
                return self._adopt(known, fresh, announce=True)
            if answer.status_code == 429 or answer.status_code >= 500:
                asked = retry_after(answer.headers, self._clock.time())
                self._emit_network(
                    base, f"HTTP {answer.status_code} {error or ''}", answer.status_code, asked
                )
            if error in DEAD_GRANT_ERRORS or answer.status_code == 401:
                self.store.delete(name)
        if error in DEAD_GRANT_ERRORS or answer.status_code == 401:
            self._forget(did)
            self._events.emit(AtpSessionEvent.EXPIRED, base)
            raise SessionExpiredError(
                f"the OAuth session of {did} was revoked or expired ({error}); authorize again",
                error=error,
                status=answer.status_code,
            )
        raise SessionError(
            f"token refresh for {did} failed with HTTP {answer.status_code} {error or ''}"
            f"{': ' + message if message else ''}; the session was kept"
        )

    def _adopt(self, known: OAuthSession, fresh: OAuthSession, *, announce: bool) -> OAuthSession:
        with self._guard:
            current = self._session
            already = current is not None and _same_tokens(current, fresh)
            if current is not None and current.did == known.did:
                self._session = fresh  # only while the account is still current
            self._not_before.pop(known.did, None)
        if announce and not already:
            self._events.emit(AtpSessionEvent.UPDATE, fresh)
        return fresh

    def _emit_network(
        self, session: OAuthSession, detail: str, status: int | None, wait: float | None
    ) -> NoReturn:
        if wait:
            self._not_before[session.did] = self._clock.time() + wait
        logger.warning("OAuth refresh of %s failed: %s; session kept", session.did, detail)
        self._events.emit(AtpSessionEvent.NETWORK_ERROR, session)
        raise SessionNetworkError(
            f"OAuth refresh of {session.did} failed ({detail}); the session was kept",
            status=status,
            retry_after=wait,
        )

    def session_for_call(self) -> OAuthSession:
        """The current session, refreshed first when due (auto refresh on)."""
        session = self._require()
        if self._auto and self._due(session, self.refresh_margin):
            try:
                session = self._refresh(session)
            except EARLY_REFRESH_FAILURES as exc:
                if session.expires_at is not None and self._clock.time() >= session.expires_at:
                    raise
                logger.info(
                    "proactive OAuth refresh failed (%s); using the current token until expiry",
                    type(exc).__name__,
                )
        return session

    def refresh_rejected(self, used: OAuthSession) -> OAuthSession:
        """Refresh after the resource server refused ``used``'s access token."""
        return self._refresh(used)

    # -- XRPC -----------------------------------------------------------------------------

    def query(self, nsid: str, params: dict[str, Any] | None = None) -> Any:
        """Call an XRPC query (GET) on the PDS with DPoP; return the decoded JSON or ``None``."""
        return self._call("GET", nsid, params, None)

    def procedure(self, nsid: str, data: Any = None) -> Any:
        """Call an XRPC procedure (POST JSON) on the PDS with DPoP."""
        return self._call("POST", nsid, None, data)

    def _send(
        self, method: str, nsid: str, session: OAuthSession, params: Any, data: Any
    ) -> httpx.Response:
        url = f"{session.pds_url}/xrpc/{nsid}"
        signer = self.signer(session)
        for attempt in range(2):
            sent = signer.nonce(url)
            headers = {
                "Authorization": f"DPoP {session.access_token}",
                "DPoP": signer.proof(method, url, access_token=session.access_token, nonce=sent),
            }
            try:
                answer = self._http.request(method, url, params=params, json=data, headers=headers)
            except httpx.TransportError as exc:
                raise XrpcNetworkError(f"{nsid} failed: {type(exc).__name__}: {exc}") from exc
            changed = signer.remember_nonce(url, answer.headers.get("dpop-nonce"), sent=sent)
            if attempt == 0 and changed and wants_nonce(answer):
                continue  # the server wanted a fresh nonce: one more try, same token
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _call(self, method: str, nsid: str, params: Any, data: Any) -> Any:
        validate_nsid(nsid)
        session = self.session_for_call()
        answer = self._send(method, nsid, session, params, data)
        if self._auto and token_rejected(answer):
            session = self.refresh_rejected(session)
            answer = self._send(method, nsid, session, params, data)
        return decode_result(answer, nsid, now=self._clock.time())


class OAuthAuth(httpx.Auth):
    """Adds ``Authorization: DPoP`` and a DPoP proof to requests of any httpx client."""

    requires_response_body = True

    def __init__(self, manager: OAuthSessionManager) -> None:
        self._manager = manager

    @staticmethod
    def _sign(request: httpx.Request, session: OAuthSession, signer: DpopSigner) -> str | None:
        """Sign ``request``; return the nonce its proof carries."""
        sent = signer.nonce(str(request.url))
        request.headers["Authorization"] = f"DPoP {session.access_token}"
        request.headers["DPoP"] = signer.proof(
            request.method, str(request.url), access_token=session.access_token, nonce=sent
        )
        return sent

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Sign; follow one nonce request; on a refused token refresh once and resend once."""
        manager = self._manager
        session = manager.session_for_call()
        signer = manager.signer(session)
        sent = self._sign(request, session, signer)
        response = yield request
        response.read()
        replayable = isinstance(request.stream, httpx.ByteStream)
        nonce = response.headers.get("dpop-nonce")
        changed = signer.remember_nonce(str(request.url), nonce, sent=sent)
        if changed and wants_nonce(response) and replayable:
            self._sign(request, session, signer)
            response = yield request
            response.read()
        if manager.auto_refresh and token_rejected(response) and replayable:
            session = manager.refresh_rejected(session)
            self._sign(request, session, manager.signer(session))
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The same flow for ``httpx.AsyncClient``; session work runs in worker threads."""
        manager = self._manager
        session = await asyncio.to_thread(manager.session_for_call)
        signer = manager.signer(session)
        sent = self._sign(request, session, signer)
        response = yield request
        await response.aread()
        replayable = isinstance(request.stream, httpx.ByteStream)
        nonce = response.headers.get("dpop-nonce")
        changed = signer.remember_nonce(str(request.url), nonce, sent=sent)
        if changed and wants_nonce(response) and replayable:
            self._sign(request, session, signer)
            response = yield request
            await response.aread()
        if manager.auto_refresh and token_rejected(response) and replayable:
            session = await asyncio.to_thread(manager.refresh_rejected, session)
            self._sign(request, session, manager.signer(session))
            yield request


class AsyncOAuthSessionManager:
    """The asyncio face of :class:`OAuthSessionManager`: the same names, I/O as coroutines.

    Each coroutine runs the blocking manager's operation in a worker thread,
    so store locks are taken and released by one thread and the event loop is
    never blocked; the guarantees are the blocking manager's own.
    """

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None,
        *,
        store: Store | None = None,
        refresh_margin: float = 60.0,
        auto_refresh: bool = True,
        http: httpx.Client | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.blocking = OAuthSessionManager(
            session_dir,
            store=store,
            refresh_margin=refresh_margin,
            auto_refresh=auto_refresh,
            http=http,
            clock=clock,
        )
        self.store = self.blocking.store
        self.auth = self.blocking.auth
        """An ``httpx.Auth`` for ``httpx.AsyncClient`` (and ``httpx.Client``)."""

    def __repr__(self) -> str:
        return f"Async{self.blocking!r}"

    async def aclose(self) -> None:
        """Close the HTTP client if the manager created it."""
        await asyncio.to_thread(self.blocking.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def session(self) -> OAuthSession | None:
        """The current session, or ``None``."""
        return self.blocking.session

    @property
    def auto_refresh(self) -> bool:
        """Whether calls refresh proactively and reactively."""
        return self.blocking.auto_refresh

    def enable_auto_refresh(self) -> None:
        """Turn proactive and reactive refresh on."""
        self.blocking.enable_auto_refresh()

    def disable_auto_refresh(self) -> None:
        """Turn proactive and reactive refresh off."""
        self.blocking.disable_auto_refresh()

    def needs_refresh(self) -> bool:
        """Whether the current access token is within ``refresh_margin`` of its expiry."""
        return self.blocking.needs_refresh()

    def on_session_event(self, callback: OAuthCallback) -> Callable[[], None]:
        """Subscribe ``callback(event, session | None)``; return an unsubscribe function."""
        return self.blocking.on_session_event(callback)

    async def store_session(self, session: OAuthSession) -> None:
        """Persist ``session`` under its DID and make it current."""
        await asyncio.to_thread(self.blocking.store_session, session)

    async def load_session(self, did: str) -> OAuthSession | None:
        """Load the stored OAuth session of ``did`` and make it current."""
        return await asyncio.to_thread(self.blocking.load_session, did)

    async def list_sessions(self) -> list[str]:
        """DIDs of every stored OAuth session."""
        return await asyncio.to_thread(self.blocking.list_sessions)

    async def clear_session(self) -> None:
        """Remove the current session from memory and the store."""
        await asyncio.to_thread(self.blocking.clear_session)

    async def logout(self) -> None:
        """Revoke the refresh token when possible, then clear."""
        await asyncio.to_thread(self.blocking.logout)

    async def refresh_token(self) -> OAuthSession:
        """Refresh the current session now (or adopt a set another process refreshed)."""
        return await asyncio.to_thread(self.blocking.refresh_token)

    async def query(self, nsid: str, params: dict[str, Any] | None = None) -> Any:
        """Call an XRPC query (GET) on the PDS with DPoP."""
        return await asyncio.to_thread(self.blocking.query, nsid, params)

    async def procedure(self, nsid: str, data: Any = None) -> Any:
        """Call an XRPC procedure (POST JSON) on the PDS with DPoP."""
        return await asyncio.to_thread(self.blocking.procedure, nsid, data)
