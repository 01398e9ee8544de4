"""Lock, re-read, then act: the single-flight pattern both protocols share.

Every holder of a shared session that finds it stale takes the store's lock
for that name and reads the stored value again before acting. If another
thread, process or machine refreshed it while we waited, the value read under
the lock is already fresh and is adopted as is: the refresh (and, for ATProto,
the use of a rotated one-time refresh token) happens exactly once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sessionkeeper.stores.base import Store

T = TypeVar("T")


class Outcome(enum.Enum):
    """What :func:`refresh_under_lock` did."""

    ADOPTED = "adopted"  #: another holder's fresh value was taken over
    REFRESHED = "refreshed"  #: this caller produced and stored a new value
    REMOVED = "removed"  #: the refresh found the value dead and removed it


@dataclass(frozen=True)
class Result(Generic[T]):
    """The value after :func:`refresh_under_lock` and how it came about."""

    value: T | None
    outcome: Outcome


def refresh_under_lock(
    store: Store,
    name: str,
    *,
    decode: Callable[[bytes | None], T | None],
    is_usable: Callable[[T | None], bool],
    produce: Callable[[T | None], T | None],
    encode: Callable[[T], bytes],
    timeout: float | None = None,
) -> Result[T]:
    """Refresh the value under ``name`` at most once among all its holders.

    Under the store's lock: decode the stored value; if ``is_usable`` accepts
    it, adopt it. Otherwise call ``produce`` with it (the only place network
    work happens); store what it returns, or delete the name if it returns
    ``None``. Exceptions from ``produce`` leave the stored value untouched.
    """
    with store.lock(name, timeout):
        current = decode(store.get(name))
        if is_usable(current):
            return Result(current, Outcome.ADOPTED)
        fresh = produce(current)
        if fresh is None:
            store.delete(name)
            return Result(None, Outcome.REMOVED)
        store.put(name, encode(fresh))
        return Result(fresh, Outcome.REFRESHED)
