"""The Store contract, proven for the directory, SQLite, memory and encrypted stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionkeeper.stores import (
    DirectoryStore,
    EncryptedStore,
    MemoryStore,
    SqliteStore,
    Store,
    generate_key,
)
from sessionkeeper.testing.store_conformance import SharedStoreConformance, StoreConformance


class TestDirectoryStore(SharedStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return DirectoryStore(tmp_path / "store")

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"dir:{tmp_path / 'store'}"


class TestSqliteStore(SharedStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return SqliteStore(tmp_path / "sessions.db")

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:{tmp_path / 'sessions.db'}"


class TestMemoryStore(StoreConformance):
    @pytest.fixture
    def store(self) -> Store:
        return MemoryStore()


KEY = generate_key()


class TestEncryptedDirectoryStore(SharedStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return EncryptedStore(DirectoryStore(tmp_path / "store"), KEY)

    @pytest.fixture
    def store_url(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
        monkeypatch.setenv("SESSIONKEEPER_KEY", KEY)
        return f"dir:{tmp_path / 'store'}?encrypt=1"
