"""The authorization code flow of ATProto OAuth as sans-I/O steps.

`begin_authorization` discovers the account's authorization server
(handle or DID -> PDS -> issuer, or a PDS/entryway URL), pushes the request
(PAR with PKCE S256 and DPoP) and returns the browser URL with the pending
authorization to keep. `complete_authorization` exchanges the code,
checks the granted scope and re-verifies ``sub`` (DID -> PDS -> issuer,
afresh) before anything is stored.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from sessionkeeper.atproto.errors import (
    OAuthCallbackError,
    OAuthResolutionError,
    OAuthTokenError,
    SessionError,
)
from sessionkeeper.atproto.identity import IdentityResolver, is_did, verify_issuer_flow
from sessionkeeper.atproto.oauth.client_auth import ClientCredentials
from sessionkeeper.atproto.oauth.dpop import DpopSigner, generate_dpop_jwk
from sessionkeeper.atproto.oauth.lifetimes import limits_for
from sessionkeeper.atproto.oauth.metadata import (
    AuthServerMetadata,
    fetch_auth_server,
    fetch_issuer_of,
)
from sessionkeeper.atproto.oauth.pending import PendingAuthorization
from sessionkeeper.atproto.oauth.pkce import new_verifier, s256_challenge
from sessionkeeper.atproto.oauth.scopes import check_granted
from sessionkeeper.atproto.oauth.session import OAuthSession
from sessionkeeper.atproto.oauth.tokens import dpop_post
from sessionkeeper.atproto.xrpc import error_body, json_object
from sessionkeeper.core.flow import Flow, NetworkFailure
from sessionkeeper.redaction import origin

#: The scope every ATProto grant must contain.
ATPROTO_SCOPE = "atproto"


def _reached(answer: httpx.Response | NetworkFailure, url: str, what: str) -> httpx.Response:
    if isinstance(answer, NetworkFailure):
        raise OAuthTokenError(f"{what}: {url} unreachable ({answer.reason})")
    return answer


def _refused(what: str, response: httpx.Response) -> OAuthTokenError:
    error, message = error_body(response)
    # OAuth servers explain a refusal in error_description (RFC 6749 §5.2), not XRPC's message.
    description = (json_object(response) or {}).get("error_description")
    if isinstance(description, str) and description:
        message = description[:500]
    detail = f"{error}" + (f": {message}" if message else "") if error else "no error given"
    return OAuthTokenError(
        f"{what} refused with HTTP {response.status_code} ({detail})",
        error=error,
        status=response.status_code,
    )


@dataclass(frozen=True)
class Target:
    """Where an authorization goes: the issuer, and the account when known."""

    issuer: str
    login_hint: str | None
    expected_did: str | None


def discover(value: str, resolver: IdentityResolver) -> Flow[Target]:
    """The authorization server for a handle, a DID, or a PDS/entryway URL."""
    if value.startswith(("https://", "http://")):
        server = origin(value)
        try:
            issuer = yield from fetch_issuer_of(server)
        except OAuthResolutionError as not_a_pds:
            # An entryway is its own authorization server and no protected resource.
            try:
                yield from fetch_auth_server(server)
            except OAuthResolutionError:
                raise not_a_pds from None
            issuer = server
        return Target(issuer, None, None)
    identity = yield from resolver.resolve(value)
    issuer = yield from fetch_issuer_of(identity.pds_url)
    hint = value.strip().removeprefix("@") if not is_did(value) else identity.did
    return Target(issuer, hint, identity.did)


def begin_authorization(
    value: str,
    *,
    resolver: IdentityResolver,
    credentials: ClientCredentials,
    redirect_uri: str,
    now: float,
    app_state: str | None = None,
) -> Flow[tuple[str, PendingAuthorization]]:
    """Discover, push the authorization request; return (browser URL, pending authorization).

    ``app_state`` is the app's own opaque value, kept with the pending
    authorization and never sent to the server (the server sees only our
    random ``state``).
    """
    target = yield from discover(value, resolver)
    server = yield from fetch_auth_server(target.issuer)
    _check_client_fits(server, credentials)
    verifier, state, key = new_verifier(), secrets.token_urlsafe(24), generate_dpop_jwk()
    signer = DpopSigner(key)
    form = {
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": credentials.scope,
        "state": state,
        "code_challenge": s256_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if target.login_hint:
        form["login_hint"] = target.login_hint
    par_url = server.pushed_authorization_request_endpoint
    answer = yield from dpop_post(
        signer, par_url, form, issuer=server.issuer, client_auth=credentials.auth_fields
    )
    response = _reached(answer, par_url, "pushed authorization request")
    if response.status_code not in (200, 201):
        raise _refused("the pushed authorization request", response)
    request_uri = _json(response, "the pushed authorization request").get("request_uri")
    if not isinstance(request_uri, str) or not request_uri:
        raise OAuthTokenError("the pushed authorization request answered no request_uri")
    pending = PendingAuthorization(
        state=state,
        issuer=server.issuer,
        token_endpoint=server.token_endpoint,
        revocation_endpoint=server.revocation_endpoint,
        redirect_uri=redirect_uri,
        verifier=verifier,
        dpop_jwk=key,
        created_at=now,
        nonce=signer.nonce(server.token_endpoint),
        expected_did=target.expected_did,
        app_state=app_state,
    )
    query = urlencode({"client_id": credentials.client_id, "request_uri": request_uri})
    return f"{server.authorization_endpoint}?{query}", pending


def _check_client_fits(server: AuthServerMetadata, credentials: ClientCredentials) -> None:
    if credentials.auth_method not in server.auth_methods:
        raise OAuthResolutionError(
            f"{server.issuer} does not accept client authentication {credentials.auth_method}"
        )


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    body = json_object(response)
    if body is None:
        raise OAuthTokenError(f"{what} did not answer a JSON object", status=response.status_code)
    return body


def callback_params(redirect: str | Mapping[str, str]) -> dict[str, str]:
    """The parameters of a redirect: a full URL, a query string, or a mapping."""
    if not isinstance(redirect, str):
        return {str(k): str(v) for k, v in redirect.items()}
    query = urlsplit(redirect).query if "://" in redirect else redirect.lstrip("?")
    return dict(parse_qsl(query, keep_blank_values=True))


def own_redirect(pasted: str, pending: PendingAuthorization) -> dict[str, str]:
    """The parameters of a redirect URL pasted by the user, if it is ``pending``'s own.

    It must be a URL on ``pending``'s redirect URI (scheme, host and path; a
    loopback port may differ) carrying ``pending``'s ``state``: a stray or
    stale URL is refused by name and leaves other sign-ins in the store alone.
    """
    # Terminals and chat tools copy an address with quotes or angle brackets around it.
    url = pasted.strip().strip("'\"<>").strip()
    parts, expected = urlsplit(url), urlsplit(pending.redirect_uri)
    if (parts.scheme, parts.hostname, parts.path or "/") != (
        expected.scheme,
        expected.hostname,
        expected.path or "/",
    ):
        shown = f"{parts.scheme}://{parts.hostname}{parts.path}" if parts.scheme else "not a URL"
        raise OAuthCallbackError(
            f"the pasted text ({shown}) is not a redirect to {pending.redirect_uri}: paste the "
            "whole address the browser was sent to after you signed in"
        )
    params = callback_params(url)
    state = params.get("state", "")
    if not secrets.compare_digest(state.encode(), pending.state.encode()):
        raise OAuthCallbackError(
            "the pasted URL is not the redirect of this sign-in (its state differs): "
            "paste the address from the browser window of the URL printed above"
        )
    return params


def check_redirect(params: Mapping[str, str], pending: PendingAuthorization) -> str:
    """Check a redirect against its pending authorization; return the code."""
    issuer = params.get("iss")
    if issuer is not None and issuer != pending.issuer:
        raise OAuthCallbackError(
            f"the redirect's iss {issuer!r} is not the issuer asked ({pending.issuer}): "
            "refusing a possible mix-up"
        )
    error = params.get("error")
    if error:
        description = params.get("error_description")
        declined = " (the user declined)" if error == "access_denied" else ""
        raise OAuthCallbackError(
            f"the authorization server answered {error}{declined}"
            + (f": {description}" if description else ""),
            error=error,
        )
    if issuer is None:
        raise OAuthCallbackError("the redirect has no iss parameter; ATProto servers send it")
    code = params.get("code")
    if not code:
        raise OAuthCallbackError("the redirect carries neither a code nor an error")
    return code


def complete_authorization(
    pending: PendingAuthorization,
    code: str,
    *,
    resolver: IdentityResolver,
    credentials: ClientCredentials,
    now: float,
) -> Flow[OAuthSession]:
    """Exchange ``code``; check scope and ``sub``; return the session to store."""
    signer = DpopSigner(pending.dpop_jwk)
    signer.remember_nonce(pending.token_endpoint, pending.nonce, sent=None)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": pending.redirect_uri,
        "code_verifier": pending.verifier,
    }
    answer = yield from dpop_post(
        signer,
        pending.token_endpoint,
        form,
        issuer=pending.issuer,
        client_auth=credentials.auth_fields,
    )
    response = _reached(answer, pending.token_endpoint, "code exchange")
    if not response.is_success:
        refused = _refused("the code exchange", response)
        if refused.error == "invalid_grant":
            # The usual causes are the user's to fix: say them beside the server's terse word.
            raise OAuthTokenError(
                f"{refused}: the code was cut short (a partly copied address), already used "
                "or expired; sign in again",
                error=refused.error,
                status=refused.status,
            )
        raise refused
    body = _json(response, "the code exchange")
    scope = body.get("scope")
    if not isinstance(scope, str) or ATPROTO_SCOPE not in scope.split():
        raise OAuthTokenError(f"the granted scope {scope!r} does not contain {ATPROTO_SCOPE!r}")
    check_granted(credentials.scope, scope)
    sub = body.get("sub")
    if not isinstance(sub, str) or not is_did(sub):
        raise OAuthTokenError("the token answer has no DID in 'sub'")
    if pending.expected_did is not None and sub != pending.expected_did:
        raise OAuthResolutionError(
            f"the tokens are for {sub}, but the authorization was for {pending.expected_did}"
        )
    identity = yield from verify_issuer_flow(resolver, sub, pending.issuer, verify_handle=True)
    try:
        session = OAuthSession.from_token_response(
            body,
            issuer=pending.issuer,
            token_endpoint=pending.token_endpoint,
            pds_url=identity.pds_url,
            client_id=credentials.client_id,
            dpop_jwk=pending.dpop_jwk,
            now=now,
            handle=identity.handle,
            revocation_endpoint=pending.revocation_endpoint,
            limits=limits_for(confidential=credentials.confidential),
        )
    except SessionError as exc:
        raise OAuthTokenError(f"the code exchange answered an unusable token set: {exc}") from None
    return replace(session, dpop_nonces=signer.nonces())
