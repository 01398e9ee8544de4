"""MemoryStore: a process-local store for tests and short scripts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sessionkeeper.stores.base import (
    DEFAULT_LOCK_TIMEOUT,
    checked_value,
    validate_name,
)
from sessionkeeper.stores.errors import LockTimeoutError


class MemoryStore:
    """A dict behind a lock; its per-name locks exclude threads of this process only."""

    def __init__(self, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self._data: dict[str, bytes] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.RLock] = {}
        self._lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._data)} names)"

    def get(self, name: str) -> bytes | None:
        """Return the value of ``name`` or ``None``."""
        validate_name(name)
        with self._guard:
            return self._data.get(name)

    def put(self, name: str, data: bytes) -> None:
        """Replace the value of ``name``."""
        data = checked_value(name, data)
        with self._guard:
            self._data[name] = data

    def delete(self, name: str) -> bool:
        """Remove ``name``; return whether it existed."""
        validate_name(name)
        with self._guard:
            return self._data.pop(name, None) is not None

    def names(self) -> list[str]:
        """Return the stored names, sorted."""
        with self._guard:
            return sorted(self._data)

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield a snapshot of ``(name, value)`` pairs."""
        with self._guard:
            snapshot = sorted(self._data.items())
        yield from snapshot

    def lock(self, name: str, timeout: float | None = None) -> AbstractContextManager[None]:
        """Hold a re-entrant in-process lock for ``name``."""
        validate_name(name)
        with self._guard:
            rlock = self._locks.setdefault(name, threading.RLock())
        return self._hold(rlock, name, self._lock_timeout if timeout is None else timeout)

    @staticmethod
    @contextmanager
    def _hold(rlock: threading.RLock, name: str, timeout: float) -> Iterator[None]:
        if not rlock.acquire(timeout=timeout):
            raise LockTimeoutError(f"lock of {name!r} not acquired within {timeout:g} s")
        try:
            yield
        finally:
            rlock.release()
