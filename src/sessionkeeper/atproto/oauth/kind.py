"""The OAuth kind of session (a DPoP-bound token set) and how its requests are signed."""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

import httpx

from sessionkeeper.atproto.jwt import token_expiry_or_none
from sessionkeeper.atproto.listing import stored_oauth_sessions
from sessionkeeper.atproto.oauth.dpop import DpopSigner, send_with_nonce, wants_nonce
from sessionkeeper.atproto.oauth.session import (
    OAuthSession,
    decode_oauth,
    encode_oauth,
    later_rotation,
    oauth_name_for_did,
)
from sessionkeeper.atproto.xrpc import is_rejected_access
from sessionkeeper.core.call_loop import can_replay
from sessionkeeper.maintenance.formats import hours
from sessionkeeper.redaction import origin
from sessionkeeper.stores.base import Store


class OAuthKind:
    """OAuth sessions: a DPoP-bound token set and its key."""

    label = "OAuth session"
    remedy = "authorize again"

    def account(self, session: OAuthSession) -> str:
        """The session's DID (the token answer's ``sub``)."""
        return session.did

    def same(self, a: OAuthSession, b: OAuthSession) -> bool:
        """Both tokens compared."""
        return a.access_token == b.access_token and a.refresh_token == b.refresh_token

    def expires_at(self, session: OAuthSession) -> float | None:
        """When the access token expires, from the token answer's ``expires_in``."""
        return session.expires_at

    def newer(self, a: OAuthSession, b: OAuthSession) -> bool:
        """``a`` descends from ``b`` by more refreshes (counted under the lock, no clock)."""
        return later_rotation(a, b)

    def name(self, did: str) -> str:
        """``oauth_did_<method>_<id>.json``."""
        return oauth_name_for_did(did)

    def encode(self, session: OAuthSession) -> bytes:
        """The stored OAuth document."""
        return encode_oauth(session)

    def decode(self, raw: bytes, *, name: str) -> OAuthSession:
        """Parse a stored OAuth document."""
        return decode_oauth(raw, name=name)

    def dead(self, session: OAuthSession, now: float) -> str | None:
        """Dead once no token can be used: an expired access token without a refresh token,
        or a refresh token whose readable ``exp`` has passed (opaque ones carry no date)."""
        if session.refresh_token is None:
            if session.expires_at is not None and session.expires_at <= now:
                return (
                    f"access token expired {hours(now - session.expires_at)} ago, no refresh token"
                )
            return None
        expires = token_expiry_or_none(session.refresh_token)
        if expires is not None and expires <= now:
            return f"refresh token expired {hours(now - expires)} ago"
        return None

    def stored(self, store: Store) -> list[OAuthSession]:
        """Every stored OAuth session (corrupt and foreign entries skipped, logged)."""
        return stored_oauth_sessions(store)


OAUTH = OAuthKind()


class SignerSource(Protocol):
    """Finds the DPoP signer of a session (nonces are shared per key)."""

    def signer(self, session: OAuthSession) -> DpopSigner:
        """The signer of ``session``'s DPoP key."""


def token_rejected(response: httpx.Response) -> bool:
    """Whether a resource server refused a DPoP access token as expired or invalid.

    As for a bearer token (401 or 400 ExpiredToken), except that a request for a
    DPoP nonce is no refusal of the token.
    """
    return not wants_nonce(response) and is_rejected_access(response)


#: Marks a request this authorizer signed (an ``httpx.Request`` extension): only the
#: answers to those can say that the session's token was refused.
SIGNED = "sessionkeeper.dpop_signed"


def for_own_pds(request: httpx.Request, session: OAuthSession) -> bool:
    """Whether ``request`` goes to the origin of the session's own PDS (its audience)."""
    return origin(str(request.url)) == origin(session.pds_url)


class DpopAuthorizer:
    """OAuth sessions: ``Authorization: DPoP <token>`` plus a proof, one nonce retry.

    Only requests for the session's own PDS are signed: a token goes to no host
    that cannot verify it, and another host's 401 never rotates the session.
    """

    def __init__(self, signers: SignerSource) -> None:
        self._signers = signers

    def send(
        self, request: httpx.Request, session: OAuthSession
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """Sign with the session's key; follow one ``use_dpop_nonce``; foreign hosts: as is."""
        if not for_own_pds(request, session):
            foreign: httpx.Response = yield request
            return foreign
        request.extensions = {**request.extensions, SIGNED: True}
        signer = self._signers.signer(session)
        url = str(request.url)

        def sign(nonce: str | None) -> httpx.Request:
            request.headers["Authorization"] = f"DPoP {session.access_token}"
            request.headers["DPoP"] = signer.proof(
                request.method, url, access_token=session.access_token, nonce=nonce
            )
            return request

        response: httpx.Response = yield from send_with_nonce(
            signer, url, sign, can_retry=can_replay(request)
        )
        return response

    def rejected(self, response: httpx.Response) -> bool:
        """401 (not a nonce request) or 400 ExpiredToken, to a request this authorizer signed."""
        return bool(response.request.extensions.get(SIGNED)) and token_rejected(response)
