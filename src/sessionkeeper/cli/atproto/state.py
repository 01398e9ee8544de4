"""What the ATProto CLI remembers between runs: the current account and each account's service.

Kept in the session store under a name that is not a session file
(``atproto-cli.state``), so session listings ignore it; registered as a
format so ``store migrate`` copies it and ``store doctor`` checks it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from sessionkeeper.maintenance.formats import FormatError, SessionFormat, never_dies, register
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
    def parse(cls, raw: bytes) -> CliState:
        """Parse stored state strictly; raise ``ValueError`` saying what is wrong."""
        try:
            data = json.loads(raw)
        except RecursionError:
            raise ValueError("nests too deeply to be the CLI state") from None
        except ValueError as exc:  # also UnicodeDecodeError and over-long numbers
            raise ValueError(f"is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"holds a JSON {type(data).__name__}, not an object")
        current = data.get("current")
        services = data.get("services")
        services = {} if services is None else services
        if current is not None and not isinstance(current, str):
            raise ValueError("has a 'current' that is not a DID string")
        if not isinstance(services, dict) or not all(isinstance(v, str) for v in services.values()):
            raise ValueError("has 'services' that is not an object of DID to URL")
        return cls(current, dict(services))

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> CliState:
        """Parse; unreadable state is logged and treated as empty (it holds no secret)."""
        if raw is None:
            return cls()
        try:
            return cls.parse(raw)
        except ValueError as exc:
            logger.warning("ignoring unreadable %s: it %s", STATE_NAME, exc)
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


def _load(name: str, data: bytes) -> CliState:
    try:
        return CliState.parse(data)
    except ValueError as exc:
        raise FormatError(str(exc)) from None


#: The CLI's own entry: migrated with the sessions (it holds each DID's service), never pruned.
CLI_STATE_FORMAT = register(
    SessionFormat(
        name="atproto-cli-state",
        label="atproto CLI state",
        matches=STATE_NAME.__eq__,
        load=_load,
        dead=never_dies,
    )
)
