"""SqliteStore beyond the shared contract: a damaged database gives a named error."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionkeeper.stores import SqliteStore, StoreError


def test_a_file_that_is_not_a_database_raises_a_store_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is a text file, not a SQLite database\n" * 20)
    with pytest.raises(StoreError, match=r"sessions\.db.*not a database"):
        SqliteStore(path)


def test_a_database_damaged_after_opening_raises_store_errors(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SqliteStore(path)
    store.put("k", b"v")
    store.close()
    path.write_bytes(b"\x00garbage" * 1000)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    for operation in (
        lambda: store.get("k"),
        lambda: store.put("k", b"w"),
        lambda: store.delete("k"),
        lambda: store.names(),
        lambda: list(store.items()),
    ):
        with pytest.raises(StoreError, match=r"sessions\.db"):
            operation()
