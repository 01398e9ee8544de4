"""OAuthSessionManager: persisted, shared, single-flight refreshed ATProto OAuth sessions.

The same guarantees and the same machinery as the app-password managers, for
DPoP-bound OAuth token sets: refresh tokens are single use, so a refresh is
the core's single flight (lock the DID, re-read, adopt a set another holder
refreshed, or refresh and store). Calls carry a DPoP proof and follow a
server's ``use_dpop_nonce`` once (the one DPoP sender); on a refused token
they refresh once and replay once. Verdicts match the password flow:
``invalid_grant`` removes the session (expired); network errors, 5xx and 429
keep it (network-error).
"""

from __future__ import annotations

import os
import threading

import httpx

from sessionkeeper.atproto.kinds import AtprotoKind
from sessionkeeper.atproto.manager_base import AsyncManager, BlockingManager
from sessionkeeper.atproto.oauth.dpop import DpopSigner, jwk_thumbprint, public_jwk
from sessionkeeper.atproto.oauth.kind import OAUTH, DpopAuthorizer
from sessionkeeper.atproto.oauth.session import OAuthSession
from sessionkeeper.atproto.oauth.tokens import ClientAuth, IssuerCheck, OAuthRefresh, revoke_flow
from sessionkeeper.atproto.xrpc import GET_SESSION, xrpc_url
from sessionkeeper.clock import Clock
from sessionkeeper.core.flow import Flow
from sessionkeeper.core.state import SessionState
from sessionkeeper.stores.base import Store


class OAuthSessions:
    """What both OAuth shells add to the shared machinery: DPoP signers and the hooks."""

    _kind: AtprotoKind[OAuthSession] = OAUTH
    _state: SessionState[OAuthSession]
    _client_auth: ClientAuth | None
    _issuer_check: IssuerCheck | None

    def _init_oauth(self, client_auth: ClientAuth | None, issuer_check: IssuerCheck | None) -> None:
        self._client_auth = client_auth
        self._issuer_check = issuer_check
        self._signers: dict[str, DpopSigner] = {}
        self._signers_guard = threading.Lock()

    def signer(self, session: OAuthSession) -> DpopSigner:
        """The DPoP signer of ``session``'s key (nonces are shared per key)."""
        key = jwk_thumbprint(public_jwk(session.dpop_jwk))
        with self._signers_guard:
            signer = self._signers.get(key)
            if signer is None:
                signer = self._signers[key] = DpopSigner(session.dpop_jwk)
                signer.seed_nonces(session.dpop_nonces)  # saves a new process a round trip
            return signer

    def _xrpc_base(self, session: OAuthSession) -> str:
        return session.pds_url

    def _policy(self, known: OAuthSession) -> OAuthRefresh:
        return OAuthRefresh(
            known,
            signer=self.signer(known),
            now=self._state.clock.time(),
            in_memory=self._state.session,
            client_auth=self._client_auth,
            issuer_check=self._issuer_check,
        )

    def _revoke(self, session: OAuthSession) -> Flow[OAuthSession]:
        return revoke_flow(
            session,
            signer=self.signer(session),
            client_auth=self._client_auth,
            # The revocation is proven by the PDS refusing the access token here.
            check_url=xrpc_url(session.pds_url, GET_SESSION),
            renew=self._policy(session).produce,
        )


class OAuthSessionManager(OAuthSessions, BlockingManager[OAuthSession]):
    """Keeps one current OAuth session, persisted in a store, refreshed exactly once.

    ``client_auth(issuer)`` gives the client-assertion form fields of a
    confidential client; ``issuer_check(session)`` is a flow that re-verifies
    the DID → PDS → issuer chain before every refresh.
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
        client_auth: ClientAuth | None = None,
        issuer_check: IssuerCheck | None = None,
    ) -> None:
        self._init_oauth(client_auth, issuer_check)
        super().__init__(
            session_dir, store, refresh_margin, auto_refresh, http, clock, DpopAuthorizer(self)
        )

    def logout(self) -> None:
        """Revoke the session (DPoP nonce retry), prove the PDS refuses it, then clear it.

        Raises [`SessionError`][] and keeps the
        session when the revocation cannot be confirmed.
        """
        session = self._state.require()
        self._driver.run(self._revoke(session))
        self._cleared(session)


class AsyncOAuthSessionManager(OAuthSessions, AsyncManager[OAuthSession]):
    """The asyncio face of [`OAuthSessionManager`][]: the same names, I/O as coroutines.

    Real asyncio on ``httpx.AsyncClient``: the same flows on the core's asyncio driver.
    """

    def __init__(
        self,
        session_dir: str | os.PathLike[str] | None,
        *,
        store: Store | None = None,
        refresh_margin: float = 60.0,
        auto_refresh: bool = True,
        http: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        client_auth: ClientAuth | None = None,
        issuer_check: IssuerCheck | None = None,
    ) -> None:
        self._init_oauth(client_auth, issuer_check)
        super().__init__(
            session_dir, store, refresh_margin, auto_refresh, http, clock, DpopAuthorizer(self)
        )

    async def logout(self) -> None:
        """Revoke the session (DPoP nonce retry), prove the PDS refuses it, then clear it."""
        session = self._state.require()
        await self._driver.run(self._revoke(session))
        self._cleared(session)
