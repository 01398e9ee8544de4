"""PKCE (RFC 7636) with S256, the only method ATProto authorization servers accept."""

from __future__ import annotations

import base64
import hashlib
import secrets


def new_verifier() -> str:
    """A fresh code verifier: 43 base64url characters (32 random bytes)."""
    return secrets.token_urlsafe(32)


def s256_challenge(verifier: str) -> str:
    """The S256 code challenge of ``verifier``: base64url(SHA-256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
