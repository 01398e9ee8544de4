"""What the fake authorization server remembers: pushed requests, codes, token grants."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PushedRequest:
    """A pushed authorization request, waiting for the browser (``request_uri``)."""

    client_id: str
    redirect_uri: str
    scope: str
    state: str
    code_challenge: str
    login_hint: str | None
    jkt: str
    expires_at: float


@dataclass
class CodeGrant:
    """An authorization code: single use, 5 minutes, bound to PKCE and the DPoP key."""

    did: str
    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    jkt: str
    expires_at: float
    used: bool = False
    session: str | None = None  #: the session issued from it (revoked when it is reused)


@dataclass
class Grant:
    """One access or refresh token: the account, its DPoP key thumbprint, its session."""

    did: str
    jkt: str
    expires_at: float = 0.0
    used: bool = False
    session: str = ""
    client_id: str = ""
    scope: str = "atproto transition:generic"
