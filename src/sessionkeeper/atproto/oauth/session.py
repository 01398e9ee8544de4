"""OAuth sessions: a DPoP-bound token set from an ATProto authorization server, persisted.

An app completes the interactive authorization (PAR, redirect, code + PKCE)
with any OAuth library, then hands the token answer and its DPoP key to
`OAuthSession.from_token_response`. From then on the session is stored,
shared and refreshed exactly like a password session, under
``oauth_<did with ':' replaced by '_'>.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from sessionkeeper.atproto.codec import check_name, did_name, parse_json_document, validate_did
from sessionkeeper.atproto.errors import CorruptSessionError, SessionError
from sessionkeeper.atproto.jwt import redact

OAUTH_PREFIX = "oauth_"
OAUTH_SUFFIX = ".json"

#: File keys and the attributes they hold, in file order.
_KEYS: tuple[tuple[str, str], ...] = (
    ("did", "did"),
    ("handle", "handle"),
    ("issuer", "issuer"),
    ("token_endpoint", "tokenEndpoint"),
    ("revocation_endpoint", "revocationEndpoint"),
    ("pds_url", "pdsUrl"),
    ("client_id", "clientId"),
    ("scope", "scope"),
    ("token_type", "tokenType"),
    ("access_token", "accessToken"),
    ("refresh_token", "refreshToken"),
    ("expires_at", "expiresAt"),
    ("dpop_jwk", "dpopJwk"),
    ("dpop_nonces", "dpopNonces"),
)
_REQUIRED = ("did", "issuer", "tokenEndpoint", "pdsUrl", "clientId", "accessToken", "dpopJwk")


def oauth_name_for_did(did: str) -> str:
    """The store name of ``did``'s OAuth session (the password session's mapping, prefixed)."""
    return did_name(did, OAUTH_PREFIX, OAUTH_SUFFIX)


def is_oauth_name(name: str) -> bool:
    """Whether ``name`` is shaped like an OAuth session's store name."""
    return name.startswith(OAUTH_PREFIX + "did_") and name.endswith(OAUTH_SUFFIX)


@dataclass(slots=True)
class OAuthSession:
    """A DPoP-bound OAuth token set for one account; the repr hides tokens and the key."""

    did: str
    issuer: str
    token_endpoint: str
    pds_url: str
    client_id: str
    access_token: str = field(repr=False)
    dpop_jwk: dict[str, str] = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    scope: str = "atproto"
    token_type: str = "DPoP"
    handle: str | None = None
    revocation_endpoint: str | None = None
    #: The latest DPoP nonce of each origin when the set was stored: a new process
    #: signs its first request with it instead of paying a ``use_dpop_nonce`` round trip.
    dpop_nonces: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"OAuthSession(did={self.did!r}, handle={self.handle!r}, issuer={self.issuer!r}, "
            f"access_token={redact(self.access_token)!r}, "
            f"refresh_token={redact(self.refresh_token)!r}, expires_at={self.expires_at!r})"
        )

    @classmethod
    def from_token_response(
        cls,
        body: dict[str, Any],
        *,
        issuer: str,
        token_endpoint: str,
        pds_url: str,
        client_id: str,
        dpop_jwk: dict[str, str],
        now: float,
        handle: str | None = None,
        revocation_endpoint: str | None = None,
    ) -> OAuthSession:
        """Build a session from a token endpoint answer (``sub`` must be a DID, type DPoP)."""
        return _apply_token_answer(
            cls(
                did=_answer_did(body),
                issuer=issuer,
                token_endpoint=token_endpoint,
                pds_url=pds_url.rstrip("/"),
                client_id=client_id,
                access_token="",
                dpop_jwk=dict(dpop_jwk),
                handle=handle,
                revocation_endpoint=revocation_endpoint,
            ),
            body,
            now,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The stored document (camelCase keys, ``None`` omitted)."""
        return {key: getattr(self, attr) for attr, key in _KEYS if getattr(self, attr) is not None}

    @classmethod
    def from_json_dict(cls, data: object, *, where: str) -> OAuthSession:
        """Parse a stored document; raise `CorruptSessionError` naming ``where``."""
        if not isinstance(data, dict):
            raise CorruptSessionError(f"{where}: not a JSON object", name=where)
        missing = [key for key in _REQUIRED if not data.get(key)]
        if missing:
            raise CorruptSessionError(f"{where}: missing key(s) {', '.join(missing)}", name=where)
        values: dict[str, Any] = {}
        for attr, key in _KEYS:
            if key in data and data[key] is not None:
                values[attr] = data[key]
        jwk = values.get("dpop_jwk")
        if not isinstance(jwk, dict) or not all(isinstance(v, str) for v in jwk.values()):
            raise CorruptSessionError(f"{where}: dpopJwk is not a JWK object", name=where)
        nonces = values.get("dpop_nonces", {})
        if not isinstance(nonces, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in nonces.items()
        ):
            raise CorruptSessionError(
                f"{where}: dpopNonces is not an object of strings", name=where
            )
        expires = values.get("expires_at")
        if expires is not None and (
            isinstance(expires, bool) or not isinstance(expires, int | float)
        ):
            raise CorruptSessionError(f"{where}: expiresAt is not a number", name=where)
        for attr, value in values.items():
            if attr not in ("dpop_jwk", "dpop_nonces", "expires_at") and not isinstance(value, str):
                raise CorruptSessionError(f"{where}: {attr} is not a string", name=where)
        try:
            validate_did(values["did"])
        except ValueError:
            raise CorruptSessionError(f"{where}: invalid DID", name=where) from None
        return cls(**values)


def encode_oauth(session: OAuthSession) -> bytes:
    """Serialise for the store."""
    return json.dumps(session.to_json_dict(), indent=2).encode("utf-8")


def decode_oauth(raw: bytes, *, name: str) -> OAuthSession:
    """Parse stored bytes; raise `CorruptSessionError` naming ``name``."""
    document = parse_json_document(raw, what="OAuth session", name=name)
    return OAuthSession.from_json_dict(document, where=f"OAuth session {name}")


def load_named_oauth(raw: bytes, *, name: str) -> OAuthSession:
    """Decode an OAuth session and check it is the one its name promises."""
    session = decode_oauth(raw, name=name)
    check_name(name, session.did, oauth_name_for_did(session.did), "OAuth session")
    return session


def _answer_did(body: object) -> str:
    if not isinstance(body, dict):
        raise SessionError("token answer is not a JSON object")
    sub = body.get("sub")
    try:
        return validate_did(sub)
    except ValueError:
        raise SessionError("token answer has no valid DID in 'sub'") from None


def _apply_token_answer(session: OAuthSession, body: dict[str, Any], now: float) -> OAuthSession:
    token_type = body.get("token_type")
    access = body.get("access_token")
    if not isinstance(token_type, str) or token_type.lower() != "dpop":
        raise SessionError(f"token answer has token_type {token_type!r}; ATProto requires DPoP")
    if not isinstance(access, str) or not access:
        raise SessionError("token answer has no access_token")
    refresh = body.get("refresh_token")
    expires_in = body.get("expires_in")
    scope = body.get("scope")
    return replace(
        session,
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) else session.refresh_token,
        expires_at=(
            now + float(expires_in)
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else None
        ),
        scope=scope if isinstance(scope, str) else session.scope,
        token_type="DPoP",
    )


def refreshed(session: OAuthSession, body: dict[str, Any], now: float) -> OAuthSession:
    """The session after a refresh answer; an answer for another account is an error."""
    did = _answer_did(body)
    if did != session.did:
        raise SessionError(
            f"token refresh for {session.did} answered for another account ({did}); not stored"
        )
    return _apply_token_answer(session, body, now)
