"""The OAuth flows after authorization, free of I/O: refresh a token set, revoke it.

Both POST through `dpop_post` (as do the sign-in flows of
`authorize`), which uses the one DPoP sender
(`send_with_nonce`) and, for confidential
clients, signs a new client assertion for every attempt. The refresh is the
core's single flight with `OAuthRefresh` as its policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import httpx

from sessionkeeper.atproto.errors import SessionError
from sessionkeeper.atproto.kinds import newest, read_stored
from sessionkeeper.atproto.oauth.dpop import DpopSigner, send_with_nonce
from sessionkeeper.atproto.oauth.kind import OAUTH, token_rejected
from sessionkeeper.atproto.oauth.session import OAuthSession, refreshed
from sessionkeeper.atproto.refresh import TokenRefreshPolicy
from sessionkeeper.atproto.xrpc import error_body, json_object, retry_after
from sessionkeeper.core.flow import Delete, Flow, Get, Locked, NetworkFailure, Send
from sessionkeeper.core.singleflight import Produced, Verdict

logger = logging.getLogger(__name__)

#: Token endpoint errors that mean the refresh token (and the session) is dead.
DEAD_GRANT_ERRORS = frozenset({"invalid_grant", "invalid_token", "unauthorized_client"})

#: Extra form fields that authenticate a confidential client to an issuer
#: (``client_assertion`` and its type); public clients send none.
ClientAuth = Callable[[str], dict[str, str]]

#: A flow that checks, afresh, that the session's DID still names its PDS and that
#: PDS still names the session's issuer; it raises when they no longer match.
IssuerCheck = Callable[[OAuthSession], Flow[None]]


def dpop_post(
    signer: DpopSigner,
    url: str,
    form: Mapping[str, str],
    *,
    issuer: str,
    client_auth: ClientAuth | None = None,
) -> Flow[httpx.Response | NetworkFailure]:
    """POST ``form`` to an endpoint of ``issuer`` with a DPoP proof (nonce retry).

    ``client_auth(issuer)`` is asked again for each attempt: a client assertion's
    ``jti`` is single use, so the nonce retry carries a new one.
    """

    def prepare(nonce: str | None) -> Send:
        body = {**form, **(client_auth(issuer) if client_auth is not None else {})}
        return Send("POST", url, {"DPoP": signer.proof("POST", url, nonce=nonce)}, form=body)

    answer: httpx.Response | NetworkFailure = yield from send_with_nonce(signer, url, prepare)
    return answer


def dpop_resource_get(
    signer: DpopSigner, url: str, access_token: str
) -> Flow[httpx.Response | NetworkFailure]:
    """GET a resource-server URL with ``Authorization: DPoP`` and a bound proof (nonce retry)."""

    def prepare(nonce: str | None) -> Send:
        proof = signer.proof("GET", url, access_token=access_token, nonce=nonce)
        return Send("GET", url, {"Authorization": f"DPoP {access_token}", "DPoP": proof})

    answer: httpx.Response | NetworkFailure = yield from send_with_nonce(signer, url, prepare)
    return answer


class OAuthRefresh(TokenRefreshPolicy[OAuthSession]):
    """Refreshes an OAuth token set with the refresh grant, DPoP-bound to the session's key."""

    def __init__(
        self,
        known: OAuthSession,
        *,
        signer: DpopSigner,
        now: float,
        in_memory: OAuthSession | None = None,
        client_auth: ClientAuth | None = None,
        issuer_check: IssuerCheck | None = None,
    ) -> None:
        super().__init__(OAUTH, known, now=now, in_memory=in_memory)
        self._signer = signer
        self._client_auth = client_auth
        self._issuer_check = issuer_check

    def produce(self, base: OAuthSession | None) -> Flow[Produced[OAuthSession]]:
        """Verify the issuer, POST the refresh grant, and classify the answer."""
        if base is None or not base.refresh_token:
            raise SessionError(f"the OAuth session of {self.did} has no refresh token")
        if self._issuer_check is not None:
            yield from self._issuer_check(base)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": base.refresh_token,
            "client_id": base.client_id,
        }
        answer = yield from dpop_post(
            self._signer,
            base.token_endpoint,
            form,
            issuer=base.issuer,
            client_auth=self._client_auth,
        )
        if isinstance(answer, NetworkFailure):
            return Produced(Verdict.UNAVAILABLE, message=answer.reason)
        status = answer.status_code
        if answer.is_success:
            body = json_object(answer)
            if body is None:
                raise SessionError(f"token refresh for {self.did}: answer is not a JSON object")
            fresh = replace(refreshed(base, body, self.now), dpop_nonces=self._signer.nonces())
            return Produced(Verdict.FRESH, fresh)
        error, message = error_body(answer)
        if status == 429 or status >= 500:
            # A 500 may come from the server's own race after it rotated: the session is
            # kept and nobody else retries it meanwhile (the lock holder alone decides).
            wait = retry_after(answer.headers, self.now)
            return Produced(Verdict.UNAVAILABLE, None, status, error, message, wait)
        if error in DEAD_GRANT_ERRORS or status == 401:
            return Produced(Verdict.DEAD, None, status, error, message)
        raise SessionError(
            f"token refresh for {self.did} failed with HTTP {status} {error or ''}"
            f"{': ' + message if message else ''}; the session was kept"
        )


def revoke_flow(
    session: OAuthSession,
    *,
    signer: DpopSigner,
    client_auth: ClientAuth | None = None,
    check_url: str | None = None,
) -> Flow[OAuthSession]:
    """Under the DID's lock: revoke the newest refresh token (stored or ours), prove it, remove it.

    The revocation endpoint answers 200 even when it revoked nothing, so the
    access token is then tried on the PDS (``check_url``): only a 401 there
    proves the session ended, and only then is it removed locally. A network
    failure or a PDS that still accepts the token raises and keeps the session.
    """
    name = OAUTH.name(session.did)
    result: OAuthSession = yield Locked(
        name, _revoke_locked(session, name, signer, client_auth, check_url)
    )
    return result


def _revoke_locked(
    session: OAuthSession,
    name: str,
    signer: DpopSigner,
    client_auth: ClientAuth | None,
    check_url: str | None,
) -> Flow[OAuthSession]:
    stored = read_stored(OAUTH, (yield Get(name)), name, session.did)
    current = newest(OAUTH, stored, session) or session
    if current.revocation_endpoint:
        token = current.refresh_token or current.access_token
        form = {"token": token, "client_id": current.client_id}
        answer = yield from dpop_post(
            signer,
            current.revocation_endpoint,
            form,
            issuer=current.issuer,
            client_auth=client_auth,
        )
        _raise_unless_revoked(current, answer, "revocation endpoint")
        if check_url is not None:
            probe = yield from dpop_resource_get(signer, check_url, current.access_token)
            _raise_unless_refused(current, probe)
    else:
        logger.warning("the issuer of %s has no revocation endpoint; clearing locally", current.did)
    yield Delete(name)
    return current


def _raise_unless_revoked(session: OAuthSession, answer: Any, where: str) -> None:
    if isinstance(answer, NetworkFailure):
        raise SessionError(
            f"logout of {session.did}: the {where} is unreachable ({answer.reason}); "
            "the session was kept, try again"
        )
    if not answer.is_success:
        error, _ = error_body(answer)
        raise SessionError(
            f"logout of {session.did}: the {where} answered HTTP {answer.status_code} "
            f"{error or ''}; the session was kept, try again"
        )


def _raise_unless_refused(session: OAuthSession, answer: Any) -> None:
    if isinstance(answer, NetworkFailure):
        raise SessionError(
            f"logout of {session.did}: revoked, but the PDS is unreachable to confirm it "
            f"({answer.reason}); the session was kept, try again"
        )
    if not token_rejected(answer):
        raise SessionError(
            f"logout of {session.did}: the PDS still accepts the access token after the "
            f"revocation (HTTP {answer.status_code}); the session was kept, try again"
        )
