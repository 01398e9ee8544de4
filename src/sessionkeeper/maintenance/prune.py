"""Remove sessions that can no longer be used, and temp files of dead writers.

What is dead is each format's own rule (`sessionkeeper.maintenance.formats`):

- HAC: a session idle longer than the server's inactivity timeout (120 minutes
  by default) is dead on the server, so its cookies are worthless.
- ATProto password and OAuth sessions: once the refresh token has expired no
  refresh can revive them (the access token expires long before). The ``exp``
  claim is read without a signature check: pruning only needs the date.
- Temp files that a killed writer left behind (directory stores).

Entries that do not load are never removed here: they are the doctor's.
Each removal happens under the name's lock after reading the value again, so a
session that another process just refreshed or touched is never removed.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.maintenance.formats import ExpiryPolicy, FormatError, PruneReason, format_of
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

#: HAC's session timeout (web.xml default): 120 minutes of inactivity.
HAC_IDLE_TIMEOUT = 2 * 60 * 60.0


@dataclass(frozen=True)
class Removal:
    """One removed (or, in a dry run, removable) item."""

    name: str
    reason: PruneReason
    detail: str


@dataclass
class PruneReport:
    """What `prune` removed, kept and could not read."""

    dry_run: bool
    removed: list[Removal] = field(default_factory=list)
    kept: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def prune_verdict(
    name: str, data: bytes, *, idle: float, now: float
) -> tuple[PruneReason, str] | None:
    """Return why ``name`` should go, or ``None`` to keep it (corrupt data is kept)."""
    session_format = format_of(name)
    if session_format is None:
        return None
    try:
        entry = session_format.load(name, data)
    except FormatError:
        return None  # corrupt files are the doctor's business, never silently removed
    why = session_format.dead(entry, now, ExpiryPolicy(idle=idle))
    return None if why is None else (session_format.prune_reason, why)


def _directory_of(store: Store) -> DirectoryStore | None:
    inner: object = store
    while not isinstance(inner, DirectoryStore):
        inner = getattr(inner, "inner", None)
        if inner is None:
            return None
    return inner


def prune(
    store: Store,
    *,
    idle: float = HAC_IDLE_TIMEOUT,
    dry_run: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    lock_timeout: float | None = None,
) -> PruneReport:
    """Remove dead sessions and stale temp files from ``store``; report what went."""
    report = PruneReport(dry_run=dry_run)
    for name in store.names():
        if format_of(name) is None:
            continue
        try:
            with store.lock(name, lock_timeout):
                # Decide on the value read under the lock: a holder may just have used it.
                data = store.get(name)
                if data is None:
                    continue
                verdict = prune_verdict(name, data, idle=idle, now=clock.time())
                if verdict is None:
                    report.kept += 1
                    continue
                if not dry_run:
                    store.delete(name)
                    logger.info("pruned %s: %s", name, verdict[1])
                report.removed.append(Removal(name, *verdict))
        except (StoreError, OSError) as exc:
            report.unreadable.append((name, f"{type(exc).__name__}: {exc}"))
    directory = _directory_of(store)
    if directory is not None:
        for temp in directory.stale_temp_files():
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    Path(temp).unlink()
            report.removed.append(
                Removal(temp.name, PruneReason.STALE_TEMP_FILE, "left by a writer that died")
            )
    return report


__all__ = ["HAC_IDLE_TIMEOUT", "PruneReason", "PruneReport", "Removal", "prune", "prune_verdict"]
