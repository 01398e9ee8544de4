"""The two kinds of ATProto session a manager keeps: app-password pairs and OAuth token sets.

A kind tells the shared machinery (state, single flight, call loop) what it
needs of one session type: the account, whether two sessions hold the same
tokens, when the access token expires, how sessions are named, stored and
listed, and which of two sets of one account is newer.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Protocol, TypeVar

import httpx

from sessionkeeper.atproto.codec import decode_session, encode_session, name_for_did
from sessionkeeper.atproto.errors import (
    CorruptSessionError,
    NoSessionError,
    SessionExpiredError,
    SessionNetworkError,
)
from sessionkeeper.atproto.jwt import token_expiry_or_none
from sessionkeeper.atproto.listing import stored_oauth_sessions, stored_sessions
from sessionkeeper.atproto.oauth.dpop import DpopSigner, send_with_nonce, wants_nonce
from sessionkeeper.atproto.oauth.session import (
    OAuthSession,
    decode_oauth,
    encode_oauth,
    oauth_name_for_did,
)
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.atproto.xrpc import is_rejected_access
from sessionkeeper.core.call_loop import can_replay
from sessionkeeper.core.state import StateErrors
from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)

S = TypeVar("S")

#: The errors every ATProto manager raises, whatever its kind.
ATPROTO_ERRORS = StateErrors(
    no_session=NoSessionError,
    expired=SessionExpiredError,
    network=SessionNetworkError,
)


class AtprotoKind(Protocol[S]):
    """A session type as the managers see it."""

    label: str
    remedy: str

    def account(self, session: S) -> str:
        """The DID the session belongs to."""

    def same(self, a: S, b: S) -> bool:
        """Whether two sessions hold the same tokens."""

    def expires_at(self, session: S) -> float | None:
        """When the access token expires."""

    def issued(self, session: S) -> float:
        """Orders two sets of one account: a larger value is a newer rotation."""

    def name(self, did: str) -> str:
        """The store name of ``did``'s session."""

    def encode(self, session: S) -> bytes:
        """Serialise for the store."""

    def decode(self, raw: bytes, *, name: str) -> S:
        """Parse stored bytes; raise :class:`CorruptSessionError` naming ``name``."""

    def stored(self, store: Store) -> list[S]:
        """Every valid stored session of this kind, sorted by DID; bad entries skipped."""


class PasswordKind:
    """App-password (createSession) sessions: a JWT access/refresh pair."""

    label = "session"
    remedy = "log in again"

    def account(self, session: AtpSessionData) -> str:
        """The session's DID."""
        return session.did

    def same(self, a: AtpSessionData, b: AtpSessionData) -> bool:
        """Both tokens compared: access tokens have no ``jti``, refresh tokens are unique."""
        return a.access_jwt == b.access_jwt and a.refresh_jwt == b.refresh_jwt

    def expires_at(self, session: AtpSessionData) -> float | None:
        """The access token's ``exp``."""
        return token_expiry_or_none(session.access_jwt)

    def issued(self, session: AtpSessionData) -> float:
        """The refresh token's exp: every refresh token of a server lives as long."""
        return token_expiry_or_none(session.refresh_jwt) or 0.0

    def name(self, did: str) -> str:
        """``did_<method>_<id>.json``."""
        return name_for_did(did)

    def encode(self, session: AtpSessionData) -> bytes:
        """The seed's nine camelCase keys."""
        return encode_session(session)

    def decode(self, raw: bytes, *, name: str) -> AtpSessionData:
        """Parse a session file."""
        return decode_session(raw, name=name)

    def stored(self, store: Store) -> list[AtpSessionData]:
        """Every stored password session."""
        return stored_sessions(store)


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

    def issued(self, session: OAuthSession) -> float:
        """Access tokens of one server live as long: a later expiry is a newer set."""
        return session.expires_at or 0.0

    def name(self, did: str) -> str:
        """``oauth_did_<method>_<id>.json``."""
        return oauth_name_for_did(did)

    def encode(self, session: OAuthSession) -> bytes:
        """The stored OAuth document."""
        return encode_oauth(session)

    def decode(self, raw: bytes, *, name: str) -> OAuthSession:
        """Parse a stored OAuth document."""
        return decode_oauth(raw, name=name)

    def stored(self, store: Store) -> list[OAuthSession]:
        """Every stored OAuth session (corrupt and foreign entries skipped, logged)."""
        return stored_oauth_sessions(store)


PASSWORD = PasswordKind()
OAUTH = OAuthKind()


def read_stored(kind: AtprotoKind[S], raw: bytes | None, name: str, did: str) -> S | None:
    """Decode a stored session for ``did``; corrupt or foreign data reads as absent (logged)."""
    if raw is None:
        return None
    try:
        stored = kind.decode(raw, name=name)
    except CorruptSessionError as exc:
        logger.warning("ignoring stored %s: %s", kind.label, exc)
        return None
    if kind.account(stored) != did:
        logger.warning("%s %s belongs to %s, not %s; ignoring it", kind.label, name, stored, did)
        return None
    return stored


def newest(kind: AtprotoKind[S], *sessions: S | None) -> S | None:
    """The newest of ``sessions`` by ``kind.issued`` (``None`` ones skipped).

    A tie goes to the one given first: callers name the stored set first, since
    another holder may have rotated it within the same second.
    """
    return max((s for s in sessions if s is not None), key=kind.issued, default=None)


# --- signing requests ----------------------------------------------------------------------


class BearerAuthorizer:
    """App-password sessions: ``Authorization: Bearer <accessJwt>``."""

    def send(
        self, request: httpx.Request, session: AtpSessionData
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """Set the header and send once."""
        request.headers["Authorization"] = f"Bearer {session.access_jwt}"
        response = yield request
        return response

    def rejected(self, response: httpx.Response) -> bool:
        """400 ExpiredToken or 401."""
        return is_rejected_access(response)


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


class DpopAuthorizer:
    """OAuth sessions: ``Authorization: DPoP <token>`` plus a proof, one nonce retry."""

    def __init__(self, signers: SignerSource) -> None:
        self._signers = signers

    def send(
        self, request: httpx.Request, session: OAuthSession
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """Sign with the session's key; follow one ``use_dpop_nonce``."""
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
        """401 (not a nonce request) or 400 ExpiredToken."""
        return token_rejected(response)
