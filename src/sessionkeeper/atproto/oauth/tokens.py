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

from sessionkeeper.atproto.errors import OAuthResolutionError, OAuthTokenError, SessionError
from sessionkeeper.atproto.kinds import newest, read_stored
from sessionkeeper.atproto.oauth.dpop import DpopSigner, send_with_nonce
from sessionkeeper.atproto.oauth.kind import OAUTH, token_rejected
from sessionkeeper.atproto.oauth.session import OAuthSession, refreshed
from sessionkeeper.atproto.records import remove_session
from sessionkeeper.atproto.refresh import TokenRefreshPolicy, refresh_verdict
from sessionkeeper.atproto.xrpc import error_body, json_object, retry_after
from sessionkeeper.core.flow import Flow, Get, Locked, NetworkFailure, Put, Send
from sessionkeeper.core.singleflight import Produced, Verdict

logger = logging.getLogger(__name__)

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

    def refresh_secret(self, base: OAuthSession | None) -> str | None:
        """The refresh token."""
        return base.refresh_token if base is not None else None

    def renew(self, base: OAuthSession | None) -> Flow[Produced[OAuthSession]]:
        """Verify the issuer, POST the refresh grant, and classify the answer."""
        if base is None or not base.refresh_token:
            raise SessionError(f"the OAuth session of {self.did} has no refresh token")
        if self._issuer_check is not None:
            try:
                yield from self._issuer_check(base)
            except OAuthResolutionError as exc:
                if not exc.unavailable:
                    raise  # the account moved, or its PDS names another issuer
                # The PLC directory or a did:web host is away for a while: like a network
                # error, the session is kept and a still-valid access token goes on working.
                return Produced(Verdict.UNAVAILABLE, message=str(exc))
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
        verdict = refresh_verdict(status, error, oauth=True)
        if verdict is Verdict.UNAVAILABLE:
            # A 500 may come from the server's own race after it rotated: the session is
            # kept and nobody else retries it meanwhile (the lock holder alone decides).
            wait = retry_after(answer.headers, self.now)
            return Produced(Verdict.UNAVAILABLE, None, status, error, message, wait)
        if verdict is Verdict.DEAD:
            return Produced(Verdict.DEAD, None, status, error, message)
        raise OAuthTokenError(
            f"token refresh for {self.did} failed with HTTP {status} {error or ''}"
            f"{': ' + message if message else ''}; the session was kept",
            error=error,
            status=status,
        )


#: Renews a set (the refresh policy's ``produce``): how logout gets a token to probe with.
Renewal = Callable[[OAuthSession], Flow[Produced[OAuthSession]]]


def revoke_flow(
    session: OAuthSession,
    *,
    signer: DpopSigner,
    client_auth: ClientAuth | None = None,
    check_url: str | None = None,
    renew: Renewal | None = None,
) -> Flow[OAuthSession]:
    """Under the DID's lock: revoke the newest refresh token (stored or ours), prove it, remove it.

    The revocation endpoint answers 200 even when it revoked nothing, so the
    access token is tried on the PDS (``check_url``) before and after: a refusal
    after an acceptance proves the session ended, and only then is it removed
    locally. A network failure or a PDS that still accepts the token raises and
    keeps the session. An access token the PDS refuses already (expired) would
    prove nothing, so the set is first renewed (``renew``) and the new token
    probed; a grant the issuer declares dead has ended already. When no valid
    token can be had, the session is removed and the log says the revocation
    could not be verified.
    """
    name = OAUTH.name(session.did)
    result: OAuthSession = yield Locked(
        name, _revoke_locked(session, name, signer, client_auth, check_url, renew)
    )
    return result


def _revoke_locked(
    session: OAuthSession,
    name: str,
    signer: DpopSigner,
    client_auth: ClientAuth | None,
    check_url: str | None,
    renew: Renewal | None,
) -> Flow[OAuthSession]:
    stored = read_stored(OAUTH, (yield Get(name)), name, session.did)
    current = newest(OAUTH, stored, session) or session
    endpoint = current.revocation_endpoint
    if not endpoint:
        logger.warning("the issuer of %s has no revocation endpoint; clearing locally", current.did)
        yield from remove_session(name, current.did)
        return current
    verifiable = False
    if check_url is not None:
        # A 401 after the revocation proves it only if the token worked before it: an
        # access token that merely expired is refused either way.
        verifiable = yield from _accepted(signer, check_url, current)
        if not verifiable and renew is not None:
            renewed = yield from _renewed(current, name, renew)
            if renewed is None:  # the issuer declared the grant dead: it has ended
                yield from remove_session(name, current.did)
                return current
            if renewed is not current:
                current = renewed
                verifiable = yield from _accepted(signer, check_url, current)
    token = current.refresh_token or current.access_token
    form = {"token": token, "client_id": current.client_id}
    answer = yield from dpop_post(
        signer,
        endpoint,
        form,
        issuer=current.issuer,
        client_auth=client_auth,
    )
    _raise_unless_revoked(current, answer, "revocation endpoint")
    if check_url is not None and verifiable:
        probe = yield from dpop_resource_get(signer, check_url, current.access_token)
        _raise_unless_refused(current, probe)
    elif check_url is not None:
        logger.warning(
            "logout of %s: the revocation could not be verified (no access token the PDS "
            "accepts could be had); the issuer answered success, the session was removed",
            current.did,
        )
    yield from remove_session(name, current.did)
    return current


def _accepted(signer: DpopSigner, check_url: str, session: OAuthSession) -> Flow[bool]:
    """Whether the PDS takes ``session``'s access token now (unreachable counts as yes:
    the probe after the revocation then decides, and raises)."""
    answer = yield from dpop_resource_get(signer, check_url, session.access_token)
    return isinstance(answer, NetworkFailure) or not token_rejected(answer)


def _renewed(current: OAuthSession, name: str, renew: Renewal) -> Flow[OAuthSession | None]:
    """A renewed set to probe with (stored first, so a failure later loses nothing);
    ``current`` when none could be had; ``None`` when the grant is dead."""
    try:
        produced: Produced[OAuthSession] = yield from renew(current)
    except SessionError as exc:  # e.g. the client's credentials refused: cannot verify
        logger.info("logout of %s: no renewal to verify with (%s)", current.did, exc)
        return current
    if produced.verdict is Verdict.DEAD:
        logger.info("logout of %s: the issuer says the grant has ended already", current.did)
        return None
    if produced.verdict is Verdict.FRESH and produced.value is not None:
        yield Put(name, OAUTH.encode(produced.value))
        return produced.value
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
