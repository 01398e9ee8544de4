"""The app-password kind of session (a JWT pair) and how its requests are signed."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from sessionkeeper.atproto.codec import decode_session, encode_session, name_for_did
from sessionkeeper.atproto.jwt import token_expiry_or_none
from sessionkeeper.atproto.listing import stored_sessions
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.atproto.xrpc import is_rejected_access
from sessionkeeper.maintenance.formats import hours
from sessionkeeper.stores.base import Store


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

    def newer(self, a: AtpSessionData, b: AtpSessionData) -> bool:
        """A later refresh token exp (the server's clock): its refresh tokens all live as long."""
        return _issued(a) > _issued(b)

    def name(self, did: str) -> str:
        """``did_<method>_<id>.json``."""
        return name_for_did(did)

    def encode(self, session: AtpSessionData) -> bytes:
        """The seed's nine camelCase keys."""
        return encode_session(session)

    def decode(self, raw: bytes, *, name: str) -> AtpSessionData:
        """Parse a session file."""
        return decode_session(raw, name=name)

    def dead(self, session: AtpSessionData, now: float) -> str | None:
        """Dead once the refresh token's ``exp`` has passed (the access token expires first)."""
        expires = session.refresh_expires_at
        if expires is not None and expires <= now:
            return f"refresh token expired {hours(now - expires)} ago"
        return None

    def stored(self, store: Store) -> list[AtpSessionData]:
        """Every stored password session."""
        return stored_sessions(store)


def _issued(session: AtpSessionData) -> float:
    return token_expiry_or_none(session.refresh_jwt) or 0.0


PASSWORD = PasswordKind()


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
