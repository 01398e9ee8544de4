"""A pending authorization: what the callback needs, kept in the store for 10 minutes.

Between PAR and the redirect back, the client keeps the PKCE verifier, the
DPoP key the tokens will be bound to, the issuer the answer must come from
and its latest nonce, under ``oauth-pending_<state>.json``. Taking it for a
callback removes it under the store's lock, so a ``state`` works once, in
one process, and never after its lifetime.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sessionkeeper.atproto.errors import OAuthCallbackError
from sessionkeeper.stores.base import Store

PENDING_PREFIX = "oauth-pending_"
PENDING_SUFFIX = ".json"
#: Seconds a pending authorization stays usable (the provider's codes live 5 minutes).
PENDING_LIFETIME = 600.0
_STATE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")


@dataclass(frozen=True)
class PendingAuthorization:
    """One started authorization, waiting for its redirect; the repr hides the secrets."""

    state: str
    issuer: str
    token_endpoint: str
    revocation_endpoint: str | None
    redirect_uri: str
    verifier: str = field(repr=False)
    dpop_jwk: dict[str, str] = field(repr=False)
    created_at: float
    nonce: str | None = field(default=None, repr=False)
    expected_did: str | None = None

    @property
    def name(self) -> str:
        """The store name this authorization is kept under."""
        return pending_name(self.state)

    def encode(self) -> bytes:
        """Serialise for the store."""
        return json.dumps(asdict(self)).encode("utf-8")

    @classmethod
    def decode(cls, raw: bytes, *, state: str) -> PendingAuthorization:
        """Parse stored bytes; an unreadable entry is treated as an unknown ``state``."""
        try:
            data: Any = json.loads(raw)
            pending = cls(**data)
        except (ValueError, TypeError):
            raise OAuthCallbackError(
                f"the pending authorization of state {state[:8]}... is unreadable; start again"
            ) from None
        if pending.state != state or not isinstance(pending.dpop_jwk, dict):
            raise OAuthCallbackError("the pending authorization does not match its state")
        return pending


def pending_name(state: str) -> str:
    """The store name of the pending authorization of ``state`` (which must look like ours)."""
    if not isinstance(state, str) or not _STATE_RE.match(state):
        raise OAuthCallbackError("the redirect's state is not one this client issues")
    return PENDING_PREFIX + state + PENDING_SUFFIX


def save_pending(store: Store, pending: PendingAuthorization) -> None:
    """Keep ``pending`` until its callback (or its lifetime) ends it."""
    with store.lock(pending.name):
        store.put(pending.name, pending.encode())


def take_pending(store: Store, state: str, now: float) -> PendingAuthorization:
    """Remove and return the pending authorization of ``state``.

    Raises `OAuthCallbackError` when the state is unknown, already used
    or older than `PENDING_LIFETIME` (an expired one is removed too).
    """
    name = pending_name(state)
    # Read and delete under the lock: two callbacks with one state cannot both win.
    with store.lock(name):
        raw = store.get(name)
        if raw is None:
            raise OAuthCallbackError(
                "unknown or already used state: this redirect does not belong to an "
                "authorization in progress here; start again"
            )
        store.delete(name)
    pending = PendingAuthorization.decode(raw, state=state)
    if now - pending.created_at > PENDING_LIFETIME:
        raise OAuthCallbackError(
            f"the authorization expired: the redirect came more than "
            f"{PENDING_LIFETIME / 60:.0f} minutes after it started; start again"
        )
    return pending


def prune_pending(store: Store, now: float) -> int:
    """Remove pending authorizations past their lifetime; return how many."""
    removed = 0
    for name in store.names():
        if not (name.startswith(PENDING_PREFIX) and name.endswith(PENDING_SUFFIX)):
            continue
        raw = store.get(name)
        try:
            created = float(json.loads(raw or b"{}").get("created_at", 0.0))
        except (ValueError, TypeError, AttributeError):
            created = 0.0
        if now - created > PENDING_LIFETIME:
            with store.lock(name):
                store.delete(name)
            removed += 1
    return removed
