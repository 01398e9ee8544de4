"""OAuth sessions: a DPoP-bound token set from an ATProto authorization server, persisted.

An app completes the interactive authorization (PAR, redirect, code + PKCE)
with any OAuth library, then hands the token answer and its DPoP key to
`OAuthSession.from_token_response`. From then on the session is stored,
shared and refreshed exactly like a password session, under
``oauth_<did with ':' replaced by '_'>.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any

from sessionkeeper.atproto.codec import check_name, did_name, parse_json_document, validate_did
from sessionkeeper.atproto.errors import CorruptSessionError, SessionError
from sessionkeeper.atproto.jwt import redact
from sessionkeeper.atproto.oauth.lifetimes import ProviderLimits, refresh_end
from sessionkeeper.core.lifetime import Lifetime

logger = logging.getLogger(__name__)

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
    ("lineage", "lineage"),
    ("generation", "generation"),
    ("refresh_lifetime", "refreshLifetime"),
    ("refresh_expires_at", "refreshExpiresAt"),
    ("session_ends_at", "sessionEndsAt"),
)
#: Keys holding Unix times or durations in seconds (documents from before they existed load).
_NUMBERS = ("expires_at", "refresh_lifetime", "refresh_expires_at", "session_ends_at")
_NON_STRINGS = frozenset({"dpop_jwk", "dpop_nonces", "generation", *_NUMBERS})
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
    #: Which sign-in this set descends from (a digest of that sign-in's refresh token;
    #: ``None`` on the sign-in's own set, whose lineage is its own token's digest).
    lineage: str | None = field(default=None, repr=False)
    #: How many refreshes separate this set from its sign-in; counted under the store
    #: lock, so within one lineage a larger number is a later rotation on every machine.
    generation: int = 0
    #: The provider's refresh-token lifetime for this client type, recorded at sign-in.
    refresh_lifetime: float | None = None
    #: When the current refresh token lapses unless used (``None``: not recorded).
    refresh_expires_at: float | None = None
    #: The session's absolute end, fixed at sign-in (``None``: not recorded).
    session_ends_at: float | None = None

    def __repr__(self) -> str:
        return (
            f"OAuthSession(did={self.did!r}, handle={self.handle!r}, issuer={self.issuer!r}, "
            f"access_token={redact(self.access_token)!r}, "
            f"refresh_token={redact(self.refresh_token)!r}, expires_at={self.expires_at!r})"
        )

    @property
    def lifetime(self) -> Lifetime:
        """When the access token, the refresh token and the session end."""
        return Lifetime(self.expires_at, self.refresh_expires_at, self.session_ends_at)

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
        limits: ProviderLimits | None = None,
    ) -> OAuthSession:
        """Build a session from a token endpoint answer (``sub`` must be a DID, type DPoP).

        ``limits`` are the provider's rules for this client type: the session's end
        and the refresh token's lifetime are recorded from them at this sign-in.
        """
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
                refresh_lifetime=limits.refresh_lifetime if limits else None,
                session_ends_at=now + limits.session_lifetime if limits else None,
            ),
            body,
            now,
        )

    def to_json_dict(self) -> dict[str, Any]:
        """The stored document (camelCase keys, ``None`` omitted)."""
        return {key: getattr(self, attr) for attr, key in _KEYS if getattr(self, attr) is not None}

    @classmethod
    def from_json_dict(cls, data: object, *, where: str) -> OAuthSession:
        """Parse a stored document; raise [`CorruptSessionError`][] naming ``where``."""
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
        generation = values.get("generation", 0)
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise CorruptSessionError(
                f"{where}: generation is not a non-negative integer", name=where
            )
        for attr, key in _KEYS:
            number = values.get(attr) if attr in _NUMBERS else None
            if number is not None and (
                isinstance(number, bool) or not isinstance(number, int | float)
            ):
                raise CorruptSessionError(f"{where}: {key} is not a number", name=where)
        for attr, value in values.items():
            if attr not in _NON_STRINGS and not isinstance(value, str):
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


#: The longest access-token life believed from a token answer (one day): ATProto servers
#: grant minutes to an hour, and a larger ``expires_in`` (10**400 included) is clamped.
MAX_EXPIRES_IN = 86400.0


def usable_expires_in(value: object) -> float | None:
    """``expires_in`` as seconds, clamped to `MAX_EXPIRES_IN`; ``None`` when unusable.

    RFC 6749 makes it optional; a negative, zero, non-finite or non-numeric value
    says nothing reliable, so the expiry is then unknown (the server's refusal of
    the token triggers the refresh) rather than an error that would drop a set
    the server has just rotated.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        logger.warning("token answer has a non-numeric expires_in; expiry unknown")
        return None
    # min() first: an int of 400 digits overflows float(); its repr is never logged either.
    seconds = float(min(value, int(MAX_EXPIRES_IN))) if isinstance(value, int) else value
    if math.isnan(seconds) or seconds <= 0:
        logger.warning("token answer has a negative, zero or NaN expires_in; expiry unknown")
        return None
    if seconds > MAX_EXPIRES_IN:
        logger.warning("token answer has expires_in above %d s; clamped", MAX_EXPIRES_IN)
    return min(seconds, MAX_EXPIRES_IN)


def _apply_token_answer(session: OAuthSession, body: dict[str, Any], now: float) -> OAuthSession:
    token_type = body.get("token_type")
    access = body.get("access_token")
    if not isinstance(token_type, str) or token_type.lower() != "dpop":
        raise SessionError(f"token answer has token_type {token_type!r}; ATProto requires DPoP")
    if not isinstance(access, str) or not access:
        raise SessionError("token answer has no access_token")
    refresh = body.get("refresh_token")
    expires_in = usable_expires_in(body.get("expires_in"))
    scope = body.get("scope")
    rotated = isinstance(refresh, str)
    return replace(
        session,
        access_token=access,
        refresh_token=refresh if rotated else session.refresh_token,
        # A new refresh token lives the provider's lifetime from now, within the session.
        refresh_expires_at=(
            refresh_end(now, session.refresh_lifetime, session.session_ends_at)
            if rotated
            else session.refresh_expires_at
        ),
        expires_at=now + expires_in if expires_in is not None else None,
        scope=scope if isinstance(scope, str) else session.scope,
        token_type="DPoP",
    )


def token_digest(token: str) -> str:
    """A short SHA-256 digest naming a token without revealing it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32]


def lineage_of(session: OAuthSession) -> str:
    """The sign-in a set descends from: its recorded lineage, else its own token's digest."""
    if session.lineage is not None:
        return session.lineage
    return token_digest(session.refresh_token or session.access_token)


def later_rotation(a: OAuthSession, b: OAuthSession) -> bool:
    """Whether ``a`` was refreshed, directly or not, from ``b``: same sign-in, more refreshes.

    Sets of different sign-ins are not ordered here (the store's copy wins), and
    no clock takes part: machines whose clocks differ, or a server that sends no
    ``expires_in``, order rotations the same way.
    """
    return lineage_of(a) == lineage_of(b) and a.generation > b.generation


def refreshed(session: OAuthSession, body: dict[str, Any], now: float) -> OAuthSession:
    """The session after a refresh answer; an answer for another account is an error."""
    did = _answer_did(body)
    if did != session.did:
        raise SessionError(
            f"token refresh for {session.did} answered for another account ({did}); not stored"
        )
    fresh = _apply_token_answer(session, body, now)
    return replace(fresh, lineage=lineage_of(session), generation=session.generation + 1)
