"""A pending authorization: what the callback needs, kept in the store for 10 minutes.

Between PAR and the redirect back, the client keeps the PKCE verifier, the
DPoP key the tokens will be bound to, the issuer the answer must come from,
its latest nonce and the app's own opaque state (handed back after the
callback, so a web app can bind the sign-in to the browser that started it),
under ``oauth-pending_<state>.json``. Taking it for a
callback removes it (only one remover wins), so a ``state`` works once, in
one process, and never after its lifetime; no per-state lock is taken, so a
public sign-in route leaves no lock file behind per visitor.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from sessionkeeper.atproto.errors import OAuthCallbackError, OAuthError
from sessionkeeper.stores.base import Store

PENDING_PREFIX = "oauth-pending_"
PENDING_SUFFIX = ".json"
#: Seconds a pending authorization stays usable (the provider's codes live 5 minutes).
PENDING_LIFETIME = 600.0
_STATE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
#: Characters of app state kept with a pending authorization (a cookie's worth, not a payload).
APP_STATE_MAX = 2048


def check_app_state(app_state: object) -> str | None:
    """``app_state`` if it is one the store may keep, else `OAuthError` naming why."""
    if app_state is None:
        return None
    if not isinstance(app_state, str):
        raise OAuthError(f"state must be a str, not {type(app_state).__name__}")
    if len(app_state) > APP_STATE_MAX:
        raise OAuthError(
            f"state has {len(app_state)} characters; at most {APP_STATE_MAX} are kept "
            "(store a key to your own data, not the data)"
        )
    return app_state


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
    app_state: str | None = field(default=None, repr=False)

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
        if pending.app_state is not None and not isinstance(pending.app_state, str):
            raise OAuthCallbackError("the pending authorization's app state is not a string")
        return pending


def pending_name(state: str) -> str:
    """The store name of the pending authorization of ``state`` (which must look like ours)."""
    if not isinstance(state, str) or not _STATE_RE.match(state):
        raise OAuthCallbackError("the redirect's state is not one this client issues")
    return PENDING_PREFIX + state + PENDING_SUFFIX


def save_pending(store: Store, pending: PendingAuthorization) -> None:
    """Keep ``pending`` until its callback (or its lifetime) ends it."""
    # No lock: the name holds a fresh random state nobody else writes, and a
    # per-state lock would leave one lock file (or lock) per sign-in behind.
    store.put(pending.name, pending.encode())


def take_pending(store: Store, state: str, now: float) -> PendingAuthorization:
    """Remove and return the pending authorization of ``state``.

    Raises `OAuthCallbackError` when the state is unknown, already used
    or older than `PENDING_LIFETIME` (an expired one is removed too).
    """
    name = pending_name(state)
    raw = store.get(name)
    # Only one caller's delete removes the value (every store answers whether it
    # did), so two callbacks with one state cannot both win, without a lock per state.
    if raw is None or not store.delete(name):
        raise OAuthCallbackError(
            "unknown or already used state: this redirect does not belong to an "
            "authorization in progress here; start again"
        )
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
        # An expired authorization can never be taken, so removing it needs no lock.
        if now - created > PENDING_LIFETIME and store.delete(name):
            removed += 1
    return removed
