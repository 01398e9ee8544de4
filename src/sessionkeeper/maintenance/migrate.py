"""Copy every entry of every registered session format from one store to another, verified.

The formats (HAC and ATProto password and OAuth sessions, the ATProto CLI's
state, and any third-party protocol's) come from `sessionkeeper.maintenance.formats`;
an entry is copied only when its own protocol's loader accepts it.

Each session is copied under the locks of its name in both stores (source
first, then destination, always in that order, so two migrations in the same
direction cannot deadlock), so no holder refreshes it halfway through the
copy. The copy is read back and compared before it counts as copied.

A destination that already holds a *different* value for a name is left
alone unless ``overwrite`` is set: for ATProto the destination may hold a
newer, rotated refresh token, and replacing it with the source's older one
would end that session.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sessionkeeper.maintenance.formats import FormatError, format_of
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)


class CopyOutcome(enum.Enum):
    """What happened to one name during a migration."""

    COPIED = "copied"  #: written and verified (or would be, in a dry run)
    IDENTICAL = "identical"  #: the destination already held the same bytes
    CONFLICT = "conflict"  #: the destination holds a different value; kept
    FAILED = "failed"  #: unreadable, corrupt, or the write did not verify
    IGNORED = "ignored"  #: not a session file (foreign files stay where they are)


@dataclass(frozen=True)
class CopyResult:
    """The outcome for one name, with a reason when it was not copied."""

    name: str
    outcome: CopyOutcome
    reason: str = ""


@dataclass
class MigrationReport:
    """Every name the migration looked at, and counts per outcome."""

    dry_run: bool
    results: list[CopyResult] = field(default_factory=list)

    def count(self, outcome: CopyOutcome) -> int:
        """How many names ended with ``outcome``."""
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        """``True`` when nothing failed."""
        return self.count(CopyOutcome.FAILED) == 0


def migrate(
    source: Store,
    destination: Store,
    *,
    dry_run: bool = False,
    overwrite: bool = False,
    lock_timeout: float | None = None,
    progress: Callable[[CopyResult], None] | None = None,
) -> MigrationReport:
    """Copy every entry of a registered session format from ``source`` to ``destination``."""
    if source is destination:
        raise ValueError("source and destination are the same store")
    report = MigrationReport(dry_run=dry_run)
    for name in source.names():
        result = _copy_one(source, destination, name, dry_run, overwrite, lock_timeout)
        report.results.append(result)
        if result.outcome is CopyOutcome.FAILED:
            logger.warning("session %s not migrated: %s", name, result.reason)
        if progress is not None:
            progress(result)
    return report


def _copy_one(
    source: Store,
    destination: Store,
    name: str,
    dry_run: bool,
    overwrite: bool,
    lock_timeout: float | None,
) -> CopyResult:
    session_format = format_of(name)
    if session_format is None:
        return CopyResult(name, CopyOutcome.IGNORED, "not a session file")
    try:
        with source.lock(name, lock_timeout), destination.lock(name, lock_timeout):
            data = source.get(name)
            if data is None:
                return CopyResult(name, CopyOutcome.IGNORED, "removed during the migration")
            try:
                session_format.load(name, data)
            except FormatError as exc:
                return CopyResult(name, CopyOutcome.FAILED, f"{session_format.label}: {exc}")
            existing = destination.get(name)
            if existing == data:
                return CopyResult(name, CopyOutcome.IDENTICAL)
            if existing is not None and not overwrite:
                return CopyResult(
                    name,
                    CopyOutcome.CONFLICT,
                    "the destination holds a different version; kept it (use --overwrite)",
                )
            if dry_run:
                return CopyResult(name, CopyOutcome.COPIED, "dry run: not written")
            destination.put(name, data)
            if destination.get(name) != data:
                return CopyResult(name, CopyOutcome.FAILED, "read-back differs from the source")
            return CopyResult(name, CopyOutcome.COPIED)
    except (StoreError, OSError) as exc:
        return CopyResult(name, CopyOutcome.FAILED, f"{type(exc).__name__}: {exc}")


__all__ = ["CopyOutcome", "CopyResult", "MigrationReport", "migrate"]
