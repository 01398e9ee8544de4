"""Who the OAuth client is: its ``client_id``, metadata, keys and request authentication.

Without a ``client_id`` the client is ATProto's loopback development client,
``http://localhost?scope=...&redirect_uri=...``, which has no hosted metadata
and authenticates with ``none``. With a ``client_id`` (the HTTPS URL of its
metadata document) and a private ES256 key it is a confidential web client:
every PAR, token and revocation request carries a fresh ``private_key_jwt``
client assertion signed with that key.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from sessionkeeper.atproto.errors import OAuthError
from sessionkeeper.atproto.oauth.dpop import jwk_thumbprint, public_jwk

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Seconds a client assertion is valid for (each request signs a new one).
ASSERTION_LIFETIME = 60


def loopback_client_id(redirect_uri: str, scope: str) -> str:
    """The client_id of ATProto's loopback client declaring ``scope`` and ``redirect_uri``."""
    return "http://localhost?" + urlencode({"scope": scope, "redirect_uri": redirect_uri})


def check_redirect_uri(redirect_uri: str, *, loopback: bool) -> None:
    """Refuse redirect URIs the authorization server would refuse (named in the error)."""
    parts = urlsplit(redirect_uri)
    if loopback and (parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1")):
        raise OAuthError(
            f"redirect_uri {redirect_uri!r}: a loopback client must redirect to "
            "http://127.0.0.1[:port]/... or http://[::1][:port]/... (not localhost, RFC 8252)"
        )
    if not loopback and parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "::1"):
        raise OAuthError(f"redirect_uri {redirect_uri!r}: a web client must use https")


@dataclass(frozen=True)
class ClientCredentials:
    """The client's identity and, for a confidential client, its signing key."""

    client_id: str
    redirect_uri: str
    scope: str
    key: dict[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.key is not None:
            loaded = ECAlgorithm.from_jwk(self.key)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey) or self.key.get("crv") != "P-256":
                raise OAuthError("client_key must be a private ES256 (EC P-256) JWK")

    @property
    def confidential(self) -> bool:
        """Whether requests authenticate with ``private_key_jwt``."""
        return self.key is not None

    @property
    def auth_method(self) -> str:
        """``private_key_jwt`` or ``none``."""
        return "private_key_jwt" if self.confidential else "none"

    @property
    def key_id(self) -> str | None:
        """The ``kid`` of the signing key: its own, or its JWK thumbprint."""
        if self.key is None:
            return None
        return self.key.get("kid") or jwk_thumbprint(public_jwk(self.key))

    @property
    def jwks(self) -> dict[str, Any]:
        """The public key set a web client serves at its ``jwks_uri`` (empty without a key)."""
        if self.key is None:
            return {"keys": []}
        public = {**public_jwk(self.key), "kid": self.key_id, "alg": "ES256", "use": "sig"}
        return {"keys": [public]}

    @property
    def metadata(self) -> dict[str, Any]:
        """The client metadata document a web client serves at its ``client_id`` URL."""
        document: dict[str, Any] = {
            "client_id": self.client_id,
            "redirect_uris": [self.redirect_uri],
            "scope": self.scope,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": self.auth_method,
            "dpop_bound_access_tokens": True,
            "application_type": "native"
            if self.client_id.startswith("http://localhost")
            else "web",
        }
        if self.confidential:
            document["token_endpoint_auth_signing_alg"] = "ES256"
            document["jwks"] = self.jwks
        return document

    def auth_fields(self, audience: str) -> dict[str, str]:
        """Form fields that identify (and, when confidential, authenticate) the client."""
        fields = {"client_id": self.client_id}
        if self.key is None:
            return fields
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        }
        signing_key: Any = ECAlgorithm.from_jwk(self.key)
        assertion = jwt.encode(
            claims, signing_key, algorithm="ES256", headers={"kid": self.key_id or ""}
        )
        fields["client_assertion_type"] = ASSERTION_TYPE
        fields["client_assertion"] = assertion
        return fields
