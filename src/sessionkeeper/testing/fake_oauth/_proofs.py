"""Checks of DPoP proofs and private_key_jwt client assertions, as the provider makes them."""

from __future__ import annotations

import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from sessionkeeper.atproto.oauth.client_auth import ASSERTION_TYPE
from sessionkeeper.atproto.oauth.dpop import access_token_hash, jwk_thumbprint
from sessionkeeper.errors import SessionkeeperError

#: Seconds a proof's or an assertion's ``iat`` may differ from the server's time.
IAT_TOLERANCE = 180


class ProofError(SessionkeeperError):
    """A proof or an assertion refused; ``error`` is the OAuth error code to answer."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class ReplayGuard:
    """Remembers every ``jti`` seen: a second use of one is a replay."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._guard = threading.Lock()

    def first_use(self, jti: object) -> bool:
        """Whether ``jti`` is new (and remember it)."""
        if not isinstance(jti, str) or not jti:
            return False
        with self._guard:
            if jti in self._seen:
                return False
            self._seen.add(jti)
            return True


def check_dpop_proof(
    proof: str | None,
    *,
    method: str,
    url: str,
    nonce: str,
    replays: ReplayGuard,
    access_token: str | None = None,
) -> str:
    """Verify one DPoP proof; return its key's thumbprint, or raise `ProofError`."""
    if not proof:
        raise ProofError("invalid_dpop_proof", "DPoP proof required")
    try:
        header = jwt.get_unverified_header(proof)
        if header.get("typ") != "dpop+jwt" or header.get("alg") != "ES256":
            raise ProofError("invalid_dpop_proof", "typ must be dpop+jwt, alg ES256")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict) or "d" in jwk:
            raise ProofError("invalid_dpop_proof", "the header must carry a public jwk")
        public: Any = ECAlgorithm.from_jwk(jwk)
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ProofError("invalid_dpop_proof", "not an EC key")
        claims = jwt.decode(proof, public, algorithms=["ES256"])
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise ProofError("invalid_dpop_proof", f"unreadable proof ({type(exc).__name__})") from None
    if claims.get("htm") != method or claims.get("htu") != url:
        raise ProofError("invalid_dpop_proof", "htm/htu mismatch")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or abs(time.time() - iat) > IAT_TOLERANCE:
        raise ProofError("invalid_dpop_proof", "iat out of range")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise ProofError("invalid_dpop_proof", "ath mismatch")
    if claims.get("nonce") != nonce:
        raise ProofError("use_dpop_nonce", "Authorization server requires nonce in DPoP proof")
    # The jti is spent only by a proof that passed every other check, as a nonce
    # retry must be able to send a new proof.
    if not replays.first_use(claims.get("jti")):
        raise ProofError("invalid_dpop_proof", "DPoP proof replayed")
    return jwk_thumbprint({k: str(jwk[k]) for k in ("kty", "crv", "x", "y")})


def check_client_assertion(
    form: dict[str, str],
    *,
    client_id: str,
    jwks: dict[str, Any],
    audience: str,
    replays: ReplayGuard,
) -> None:
    """Verify a ``private_key_jwt`` assertion for ``client_id``; raise `ProofError`."""
    if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
        raise ProofError("invalid_client", "client authentication (private_key_jwt) required")
    assertion = form["client_assertion"]
    try:
        kid = jwt.get_unverified_header(assertion).get("kid")
        keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid]
        if not keys:
            raise ProofError("invalid_client", f"no key {kid!r} in the client's jwks")
        public: Any = ECAlgorithm.from_jwk(keys[0])
        claims = jwt.decode(
            assertion,
            public,
            algorithms=["ES256"],
            audience=audience,
            options={"require": ["iss", "sub", "aud", "jti", "iat", "exp"]},
        )
    except jwt.PyJWTError as exc:
        raise ProofError("invalid_client", f"client assertion refused ({exc})") from None
    if claims["iss"] != client_id or claims["sub"] != client_id:
        raise ProofError("invalid_client", "client assertion iss/sub is not the client_id")
    if not replays.first_use(claims["jti"]):
        raise ProofError("invalid_client", "client assertion replayed")
