"""Remove sessions that can no longer be used, and temp files of dead writers.

- HAC: a session idle longer than the server's inactivity timeout (120 minutes
  by default) is dead on the server, so its cookies are worthless.
- ATProto: a session whose refresh token has expired can never be refreshed
  (the access token expires long before it). The ``exp`` claim is read
  without a signature check: pruning only needs the date.
- Temp files that a killed writer left behind (directory stores).

Each removal happens under the name's lock after reading the value again, so a
session that another process just refreshed or touched is never removed.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.sessionfiles import SessionKind, ShapeError, jwt_expiry, kind_of, parse_session
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

#: HAC's session timeout (web.xml default): 120 minutes of inactivity.
HAC_IDLE_TIMEOUT = 2 * 60 * 60.0


class PruneReason(enum.Enum):
    """Why something was (or would be) removed."""

    HAC_IDLE = "hac-idle"
    REFRESH_EXPIRED = "refresh-expired"
    STALE_TEMP_FILE = "stale-temp-file"


@dataclass(frozen=True)
class Removal:
    """One removed (or, in a dry run, removable) item."""

    name: str
    reason: PruneReason
    detail: str


@dataclass
class PruneReport:
    """What :func:`prune` removed, kept and could not read."""

    dry_run: bool
    removed: list[Removal] = field(default_factory=list)
    kept: int = 0
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def prune_verdict(
    name: str, data: bytes, *, idle: float, now: float
) -> tuple[PruneReason, str] | None:
    """Return why ``name`` should go, or ``None`` to keep it (corrupt data is kept)."""
    kind = kind_of(name)
    if kind is None:
        return None
    try:
        document = parse_session(kind, data)
    except ShapeError:
        return None  # corrupt files are the doctor's business, never silently removed
    if kind is SessionKind.HAC:
        idle_for = now - float(document["last_used_at"])
        if idle_for > idle:
            return PruneReason.HAC_IDLE, f"idle for {_hours(idle_for)} (limit {_hours(idle)})"
        return None
    expires = jwt_expiry(str(document["refreshJwt"]))
    if expires is not None and expires <= now:
        return PruneReason.REFRESH_EXPIRED, f"refresh token expired {_hours(now - expires)} ago"
    return None


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
        if kind_of(name) is None:
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
