"""What the ATProto CLI remembers between runs: the current account and each account's service.

Kept in the session store under a name that is not a session file
(``atproto-cli.state``), so session listings ignore it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)

STATE_NAME = "atproto-cli.state"


@dataclass
class CliState:
    """The current DID and the service URL each DID logged in to."""

    current: str | None = None
    services: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        """Serialise as JSON."""
        return json.dumps({"current": self.current, "services": self.services}, indent=2).encode()

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> CliState:
        """Parse; unreadable state is logged and treated as empty (it holds no secret)."""
        if raw is None:
            return cls()
        try:
            data = json.loads(raw)
            current = data.get("current")
            services = data.get("services") or {}
            if not isinstance(services, dict):
                raise ValueError("services is not an object")
            return cls(
                current if isinstance(current, str) else None,
                {str(k): str(v) for k, v in services.items()},
            )
        except (ValueError, AttributeError) as exc:
            logger.warning("ignoring unreadable %s: %s", STATE_NAME, exc)
            return cls()


def load_state(store: Store) -> CliState:
    """Read the CLI state from ``store``."""
    return CliState.from_bytes(store.get(STATE_NAME))


def remember(store: Store, did: str | None, service: str | None = None) -> None:
    """Make ``did`` current (``None``: forget the current one) and record its service."""
    with store.lock(STATE_NAME):
        state = load_state(store)
        if did is None:
            state.current = None
        else:
            state.current = did
            if service:
                state.services[did] = service
        store.put(STATE_NAME, state.to_bytes())


def remember_service(store: Store, did: str, service: str) -> None:
    """Record ``did``'s service without changing the current account (no write if known)."""
    if load_state(store).services.get(did) == service:
        return
    with store.lock(STATE_NAME):
        state = load_state(store)
        state.services[did] = service
        store.put(STATE_NAME, state.to_bytes())


def forget(store: Store, did: str) -> None:
    """Drop ``did`` from the state (after logout)."""
    with store.lock(STATE_NAME):
        state = load_state(store)
        state.services.pop(did, None)
        if state.current == did:
            state.current = None
        store.put(STATE_NAME, state.to_bytes())
