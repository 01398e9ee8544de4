"""Rotate the key of an encrypted store in place, one entry at a time under its lock.

Each entry is read, opened with the old key, sealed with the new one and read
back while the store's lock of that name is held: a writer (a bot storing a
refreshed session) waits for it and never has its write replaced by an older
value. An entry already sealed with the new key is left as it is, so a
rotation that stopped half way, or an entry a bot wrote with the old key
meanwhile, is finished by running it again.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sessionkeeper.stores.base import Store
from sessionkeeper.stores.encrypted import MAGIC, EncryptedStore, parse_key
from sessionkeeper.stores.errors import DecryptionError, StoreError

logger = logging.getLogger(__name__)


class RekeyOutcome(enum.Enum):
    """What happened to one entry."""

    REKEYED = "rekeyed"  #: now sealed with the new key, verified
    CURRENT = "current"  #: already sealed with the new key
    PLAIN = "plain"  #: not encrypted by sessionkeeper: left alone
    FAILED = "failed"  #: neither key opens it, or the store failed: left alone


@dataclass(frozen=True)
class RekeyResult:
    """The outcome for one name, with a reason when it failed."""

    name: str
    outcome: RekeyOutcome
    reason: str = ""


@dataclass
class RekeyReport:
    """Every name looked at."""

    results: list[RekeyResult] = field(default_factory=list)

    def count(self, outcome: RekeyOutcome) -> int:
        """How many names ended with ``outcome``."""
        return sum(1 for r in self.results if r.outcome is outcome)

    @property
    def ok(self) -> bool:
        """``True`` when no entry failed."""
        return self.count(RekeyOutcome.FAILED) == 0


class RekeyError(StoreError):
    """A rotation that cannot start: the same key twice, or an unusable key."""


def rekey(
    inner: Store,
    old_key: str | bytes,
    new_key: str | bytes,
    *,
    lock_timeout: float | None = None,
    progress: Callable[[RekeyResult], None] | None = None,
) -> RekeyReport:
    """Re-seal every entry of ``inner`` (the store *under* the encryption) with ``new_key``."""
    if parse_key(old_key) == parse_key(new_key):
        raise RekeyError("the new key is the old key; create one with: sessionkeeper store keygen")
    old, new = EncryptedStore(inner, old_key), EncryptedStore(inner, new_key)
    report = RekeyReport()
    for name in inner.names():
        result = _rekey_one(inner, old, new, name, lock_timeout)
        if result is None:
            continue
        report.results.append(result)
        if result.outcome is RekeyOutcome.FAILED:
            logger.warning("%s not rekeyed: %s", name, result.reason)
        if progress is not None:
            progress(result)
    return report


def _rekey_one(
    inner: Store, old: EncryptedStore, new: EncryptedStore, name: str, timeout: float | None
) -> RekeyResult | None:
    try:
        with inner.lock(name, timeout):
            blob = inner.get(name)
            if blob is None:
                return None  # removed since the listing
            if not blob.startswith(MAGIC):
                return RekeyResult(name, RekeyOutcome.PLAIN, "not encrypted")
            try:
                data = old.get(name)
            except DecryptionError:
                try:
                    new.get(name)
                except DecryptionError:
                    return RekeyResult(name, RekeyOutcome.FAILED, "neither key opens it")
                return RekeyResult(name, RekeyOutcome.CURRENT)
            if data is None:
                return None
            new.put(name, data)
            if new.get(name) != data:
                return RekeyResult(name, RekeyOutcome.FAILED, "read-back differs")
            return RekeyResult(name, RekeyOutcome.REKEYED)
    except (StoreError, OSError) as exc:
        return RekeyResult(name, RekeyOutcome.FAILED, f"{type(exc).__name__}: {exc}")


__all__ = ["RekeyError", "RekeyOutcome", "RekeyReport", "RekeyResult", "rekey"]
