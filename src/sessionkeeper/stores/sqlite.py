"""SqliteStore: every name in one SQLite file (WAL), for many sessions on one machine."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from sessionkeeper.stores.base import (
    DEFAULT_LOCK_TIMEOUT,
    check_value_size,
    checked_value,
    validate_name,
)
from sessionkeeper.stores.errors import StoreError, StoreFullError
from sessionkeeper.stores.files import (
    FILE_MODE,
    check_owner,
    create_private_dirs,
    io_errors,
    make_private_dir,
)
from sessionkeeper.stores.locking import LockFiles

#: SQLite's result code for "database or disk is full".
_SQLITE_FULL = 13
_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (name TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID"


class SqliteStore:
    """A table ``kv(name, data)`` in one WAL-mode file; commits are fsynced (``synchronous=FULL``).

    Each thread gets its own connection. Per-name locks are lock files in a
    sibling directory ``PATH.locks/`` (named by a hash of the name), so a lock
    never holds a database write transaction open while a refresh talks to a server.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.path = Path(path).expanduser()
        with io_errors("create", self.path.parent):
            create_private_dirs(self.path.parent)
            if os.path.lexists(self.path):
                check_owner(self.path, "SQLite store")
        self._lock_dir = self.path.with_name(self.path.name + ".locks")
        make_private_dir(self._lock_dir, "SQLite lock directory")
        self._locks = LockFiles(self._lock_path, lock_timeout)
        self._local = threading.local()
        conn = self._connection()
        try:
            with conn:
                conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise self._error("create its table", exc) from exc
        self._tighten_permissions()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    def _error(self, action: str, exc: sqlite3.Error) -> StoreError:
        """A named error for a failed SQLite call (a damaged or foreign file, a full disk)."""
        message = f"SQLite store {self.path} cannot {action}: {exc}"
        if getattr(exc, "sqlite_errorcode", None) == _SQLITE_FULL:
            return StoreFullError(errno.ENOSPC, message)
        return StoreError(message)

    def _tighten_permissions(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            candidate = self.path.with_name(self.path.name + suffix)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_IMODE(candidate.stat().st_mode) & 0o077:
                    candidate.chmod(FILE_MODE)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        pid: int | None = getattr(self._local, "pid", None)
        if conn is None or pid != os.getpid():  # a forked child must not share the parent's handle
            old_umask = os.umask(0o077)
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            except sqlite3.Error as exc:
                raise self._error("be opened", exc) from exc
            finally:
                os.umask(old_umask)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                conn.close()
                raise self._error("be opened", exc) from exc
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _lock_path(self, name: str) -> Path:
        digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:40]
        return self._lock_dir / f"{digest}.lock"

    def get(self, name: str) -> bytes | None:
        """Return the value of ``name`` or ``None``."""
        validate_name(name)
        conn = self._connection()
        try:
            row = conn.execute("SELECT data FROM kv WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(f"read {name!r}", exc) from exc
        if row is None:
            return None
        data = bytes(row[0])
        check_value_size(name, len(data))
        return data

    def put(self, name: str, data: bytes) -> None:
        """Insert or replace ``name`` in one durable transaction."""
        data = checked_value(name, data)
        conn = self._connection()
        try:
            conn.execute(
                "INSERT INTO kv (name, data) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET data = excluded.data",
                (name, data),
            )
        except sqlite3.Error as exc:
            raise self._error(f"write {name!r}", exc) from exc

    def delete(self, name: str) -> bool:
        """Remove ``name``; return whether it existed."""
        validate_name(name)
        conn = self._connection()
        try:
            cursor = conn.execute("DELETE FROM kv WHERE name = ?", (name,))
        except sqlite3.Error as exc:
            raise self._error(f"delete {name!r}", exc) from exc
        return cursor.rowcount > 0

    def names(self) -> list[str]:
        """Return every name, sorted."""
        conn = self._connection()
        try:
            rows = conn.execute("SELECT name FROM kv ORDER BY name").fetchall()
        except sqlite3.Error as exc:
            raise self._error("list its names", exc) from exc
        return [str(row[0]) for row in rows]

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield every ``(name, value)`` in one query, with the cap [`get`][] applies."""
        # TEXT and BLOB columns come back as str and bytes: the rows need no conversion.
        conn = self._connection()
        try:
            for name, data in conn.execute("SELECT name, data FROM kv ORDER BY name"):
                check_value_size(name, len(data))
                yield name, data
        except sqlite3.Error as exc:
            raise self._error("list its values", exc) from exc

    def lock(self, name: str, timeout: float | None = None) -> AbstractContextManager[None]:
        """Hold the cross-process lock of ``name`` (a lock file beside the database)."""
        validate_name(name)
        return self._locks.hold(name, timeout)

    def close(self) -> None:
        """Close this thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
