"""DPoP (RFC 9449) for ATProto OAuth: a per-session P-256 key and signed request proofs.

Every request carries a fresh proof JWT bound to its method and URL (and, at
resource servers, to the access token through ``ath``). Servers hand out
nonces that the next proof must carry; they are kept per origin, in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from sessionkeeper.atproto.xrpc import error_body
from sessionkeeper.redaction import origin

R = TypeVar("R")


def generate_dpop_jwk() -> dict[str, str]:
    """A new private P-256 key as a JWK (``kty, crv, x, y, d``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return {str(k): str(v) for k, v in ECAlgorithm.to_jwk(key, as_dict=True).items()}


def public_jwk(private: dict[str, str]) -> dict[str, str]:
    """The public half of a private EC JWK."""
    return {k: private[k] for k in ("kty", "crv", "x", "y")}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(access_token: str) -> str:
    """The ``ath`` claim: base64url(SHA-256(access token))."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def jwk_thumbprint(public: dict[str, str]) -> str:
    """The RFC 7638 SHA-256 thumbprint of an EC public JWK (``cnf.jkt``)."""
    members = {k: public[k] for k in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def htu(url: str) -> str:
    """The ``htu`` claim: the request URL without query and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class DpopSigner:
    """Signs DPoP proofs with one private JWK and remembers each origin's latest nonce."""

    def __init__(self, private_jwk: dict[str, str]) -> None:
        self._key: Any = ECAlgorithm.from_jwk(private_jwk)
        if not isinstance(self._key, ec.EllipticCurvePrivateKey):
            raise ValueError("a DPoP key must be a private EC P-256 JWK")
        self._public = public_jwk(private_jwk)
        self._nonces: dict[str, str] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"DpopSigner(jkt={jwk_thumbprint(self._public)[:8]}...)"

    @property
    def thumbprint(self) -> str:
        """The key's JWK thumbprint, which access tokens are bound to."""
        return jwk_thumbprint(self._public)

    def nonce(self, url: str) -> str | None:
        """The latest nonce the server at ``url``'s origin sent."""
        return self._nonces.get(origin(url))

    def nonces(self) -> dict[str, str]:
        """Every origin's latest nonce (what a stored session keeps for the next process)."""
        with self._guard:
            return dict(self._nonces)

    def seed_nonces(self, nonces: dict[str, str]) -> None:
        """Start from nonces an earlier process stored; ones already seen here win."""
        with self._guard:
            for key, value in nonces.items():
                self._nonces.setdefault(key, value)

    def remember_nonce(self, url: str, nonce: str | None, *, sent: str | None) -> bool:
        """Keep a ``DPoP-Nonce`` answer header; return whether it differs from the one ``sent``.

        Comparing with what this request sent (not with what is stored) lets
        concurrent requests that met the same new nonce each retry once.
        """
        if not nonce:
            return False
        with self._guard:
            self._nonces[origin(url)] = nonce
        return nonce != sent

    def proof(
        self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None
    ) -> str:
        """A signed proof for one request (``ath`` bound to ``access_token`` when given).

        ``nonce`` defaults to the origin's latest one; pass the value read
        before the request to compare it with the server's answer afterwards.
        """
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": htu(url),
            "iat": int(time.time()),
        }
        nonce = nonce if nonce is not None else self.nonce(url)
        if nonce:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        return jwt.encode(
            claims, self._key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": self._public}
        )


def wants_nonce(response: httpx.Response) -> bool:
    """Whether a server asked for a (new) DPoP nonce.

    The PDS says so in ``WWW-Authenticate`` (401), the authorization server
    in a 400 body ``{"error": "use_dpop_nonce"}``.
    """
    if "use_dpop_nonce" in response.headers.get("www-authenticate", ""):
        return True
    return response.status_code == 400 and error_body(response)[0] == "use_dpop_nonce"


def send_with_nonce(
    signer: DpopSigner, url: str, prepare: Callable[[str | None], R], *, can_retry: bool = True
) -> Generator[R, Any, Any]:
    """The one DPoP sender: send what ``prepare(nonce)`` builds, once more on ``use_dpop_nonce``.

    ``prepare`` signs a request (a flow's ``Send`` for token and revoke calls,
    an ``httpx.Request`` in the auth flow) with the origin's latest nonce. The
    answer's ``DPoP-Nonce`` is kept; when it differs from the one sent and the
    server asked for it, the request is signed again and sent a second time.
    A `NetworkFailure` is returned as it came.
    """
    sent = signer.nonce(url)
    answer = yield prepare(sent)
    if not isinstance(answer, httpx.Response):
        return answer
    changed = signer.remember_nonce(url, answer.headers.get("dpop-nonce"), sent=sent)
    if not (can_retry and changed and wants_nonce(answer)):
        return answer
    sent = signer.nonce(url)
    answer = yield prepare(sent)
    if isinstance(answer, httpx.Response):
        signer.remember_nonce(url, answer.headers.get("dpop-nonce"), sent=sent)
    return answer
