"""Minting and checking the HS256 session tokens, as the reference PDS does."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import jwt

from sessionkeeper.clock import Clock
from sessionkeeper.testing.fake_pds._errors import expired_token, invalid_token

ACCESS_TYP = "at+jwt"
REFRESH_TYP = "refresh+jwt"
LEGACY_TYP = "JWT"
SCOPE_ACCESS = "com.atproto.access"
SCOPE_REFRESH = "com.atproto.refresh"
SCOPE_TAKENDOWN = "com.atproto.takendown"
SCOPE_APP_PASS = "com.atproto.appPass"
SCOPE_APP_PASS_PRIVILEGED = "com.atproto.appPassPrivileged"


@dataclass(frozen=True)
class TokenPair:
    """A freshly minted access/refresh pair and the refresh token's ``jti``."""

    access_jwt: str
    refresh_jwt: str
    jti: str


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says."""

    did: str
    scope: str
    exp: int


@dataclass(frozen=True)
class RefreshClaims:
    """What a verified refresh token says."""

    did: str
    jti: str
    exp: int


def new_jti() -> str:
    """A random refresh token id (the reference uses 32 random bytes, base64url)."""
    return secrets.token_urlsafe(32)


class TokenIssuer:
    """Signs and verifies tokens with one HS256 secret; all times come from ``clock``."""

    def __init__(
        self,
        *,
        secret: bytes,
        service_did: str,
        clock: Clock,
        access_lifetime: float,
        refresh_lifetime: float,
    ) -> None:
        self._secret = secret
        self._service_did = service_did
        self._clock = clock
        self._access_lifetime = access_lifetime
        self._refresh_lifetime = refresh_lifetime

    def now(self) -> int:
        """The clock's current time in whole seconds, as the token claims carry it."""
        return int(self._clock.time())

    def issue(self, did: str, *, jti: str | None = None, scope: str = SCOPE_ACCESS) -> TokenPair:
        """Mint a pair for ``did``; ``jti`` names the refresh token (new one if not given)."""
        iat = self.now()
        jti = jti or new_jti()
        access = jwt.encode(
            {
                "scope": scope,
                "aud": self._service_did,
                "sub": did,
                "iat": iat,
                "exp": iat + int(self._access_lifetime),
            },
            self._secret,
            algorithm="HS256",
            headers={"typ": ACCESS_TYP},
        )
        refresh = jwt.encode(
            {
                "scope": SCOPE_REFRESH,
                "aud": self._service_did,
                "sub": did,
                "jti": jti,
                "iat": iat,
                "exp": iat + int(self._refresh_lifetime),
            },
            self._secret,
            algorithm="HS256",
            headers={"typ": REFRESH_TYP},
        )
        return TokenPair(access_jwt=access, refresh_jwt=refresh, jti=jti)

    def verify_access(self, token: str, *, scopes: frozenset[str]) -> AccessClaims:
        """Check an access token; raise the reference PDS's error when it does not pass."""
        claims = self._verify(token, typs=frozenset({ACCESS_TYP, LEGACY_TYP}), scopes=scopes)
        return AccessClaims(did=claims["sub"], scope=claims["scope"], exp=int(claims["exp"]))

    def verify_refresh(self, token: str) -> RefreshClaims:
        """Check a refresh token; raise the reference PDS's error when it does not pass."""
        claims = self._verify(
            token, typs=frozenset({REFRESH_TYP}), scopes=frozenset({SCOPE_REFRESH})
        )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise invalid_token("Unexpected missing refresh token id")
        return RefreshClaims(did=claims["sub"], jti=jti, exp=int(claims["exp"]))

    def _verify(
        self, token: str, *, typs: frozenset[str], scopes: frozenset[str]
    ) -> dict[str, Any]:
        # Same order and words as the reference (jose's jwtVerify, then the scope
        # check): signature, header typ, audience, expiry, and last the scope. A
        # token of the wrong kind is therefore InvalidToken even when expired.
        try:
            header = jwt.get_unverified_header(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                },
            )
        except jwt.InvalidTokenError:
            raise invalid_token("Token could not be verified") from None
        if header.get("typ") not in typs:
            raise invalid_token("Token could not be verified")
        if claims.get("aud") != self._service_did:
            raise invalid_token("Token could not be verified")
        exp = claims.get("exp")
        sub = claims.get("sub")
        if not isinstance(exp, int) or not isinstance(sub, str):
            raise invalid_token("Token could not be verified")
        if self.now() >= exp:
            raise expired_token("Token has expired")
        if claims.get("scope") not in scopes:
            raise invalid_token("Bad token scope")
        return claims
