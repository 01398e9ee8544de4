"""The registry of session formats: what each protocol stores, declared once by the protocol.

A `SessionFormat` says which store names are its entries, how to load
one (the protocol's own loader, so a file loads if and only if ``store
doctor`` calls it valid) and when a loaded entry is dead (for ``store
prune``). ``store migrate``, ``prune`` and ``doctor`` work on every
registered format and ignore other names.

The core imports no protocol package. Protocols register their formats from
their own module; the tools find those modules through the
``sessionkeeper.maintenance.formats`` entry point group (``pyproject.toml``), loaded on
the first lookup. Entry points, not an import in the CLI: a library caller of
`sessionkeeper.maintenance.migrate.migrate` gets every format too (a registry that
only the CLI filled would make ``migrate()`` skip every session as foreign),
and a third-party protocol plugs in the same way.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from sessionkeeper.errors import SessionkeeperError

#: The entry point group whose modules register formats when imported.
ENTRY_POINT_GROUP = "sessionkeeper.maintenance.formats"


class FormatError(SessionkeeperError, ValueError):
    """An entry whose content is not what its name promises; the message says why."""


class PruneReason(enum.Enum):
    """Why an entry is dead (or, for temp files, left over)."""

    HAC_IDLE = "hac-idle"  #: unused longer than the server keeps a session
    REFRESH_EXPIRED = "refresh-expired"  #: no refresh token that could still be used
    STALE_TEMP_FILE = "stale-temp-file"  #: a temp file of a writer that died
    RECORD_OVER = "record-over"  #: a bookkeeping record that can no longer matter


@dataclass(frozen=True)
class ExpiryPolicy:
    """Limits the tools apply: ``idle`` is how long an unused HAC session lives."""

    idle: float


@dataclass(frozen=True)
class SessionFormat:
    """One kind of stored entry, as its protocol declares it.

    ``matches(name)``: whether a store name is this format's.
    ``load(name, data)``: the protocol's loader; returns the decoded entry or
    raises `FormatError` saying why it is unusable.
    ``dead(entry, now, policy)``: ``None`` while the entry may still be used,
    else a short reason (``"refresh token expired 3.0 h ago"``).
    ``prune_reason``: the category a dead entry is reported under.
    """

    name: str
    label: str
    matches: Callable[[str], bool]
    load: Callable[[str, bytes], Any]
    dead: Callable[[Any, float, ExpiryPolicy], str | None]
    prune_reason: PruneReason = PruneReason.REFRESH_EXPIRED


def never_dies(entry: object, now: float, policy: ExpiryPolicy) -> str | None:
    """The ``dead`` of formats whose entries never expire (state, settings)."""
    return None


_registry: dict[str, SessionFormat] = {}
_lock_names: set[str] = set()
_loaded = False
_guard = threading.Lock()


def register(session_format: SessionFormat) -> SessionFormat:
    """Add ``session_format`` to the registry (idempotent for the same definition)."""
    with _guard:
        known = _registry.get(session_format.name)
        if known is not None and known != session_format:
            raise ValueError(f"session format {session_format.name!r} is already registered")
        _registry[session_format.name] = session_format
    return session_format


def register_lock_name(name: str) -> str:
    """Declare a store name a protocol locks without storing anything under it; return it."""
    with _guard:
        _lock_names.add(name)
    return name


def is_lock_name(name: str) -> bool:
    """Whether ``name`` is a registered lock-only name (its lock file is expected)."""
    _load_entry_points()
    with _guard:
        return name in _lock_names


def _load_entry_points() -> None:
    global _loaded
    if _loaded:
        return
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        entry_point.load()  # importing the module registers its formats
    _loaded = True


def registered_formats() -> list[SessionFormat]:
    """Every registered format, the installed protocols' included, by name."""
    _load_entry_points()
    with _guard:
        formats = sorted(_registry.values(), key=lambda f: f.name)
    if not formats:
        raise RuntimeError(
            f"no session formats are registered (entry point group {ENTRY_POINT_GROUP!r} is "
            "empty): install sessionkeeper (pip install -e .) so the tools know its sessions"
        )
    return formats


def format_of(name: str) -> SessionFormat | None:
    """The format whose entries ``name`` belongs to, or ``None`` for a foreign name."""
    for session_format in registered_formats():
        if session_format.matches(name):
            return session_format
    return None


def hours(seconds: float) -> str:
    """``seconds`` as ``"1.5 h"``, for prune and doctor messages."""
    return f"{seconds / 3600:.1f} h"


__all__ = [
    "ENTRY_POINT_GROUP",
    "ExpiryPolicy",
    "FormatError",
    "PruneReason",
    "SessionFormat",
    "format_of",
    "hours",
    "is_lock_name",
    "never_dies",
    "register",
    "register_lock_name",
    "registered_formats",
]
