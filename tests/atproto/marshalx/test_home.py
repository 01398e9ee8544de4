"""With neither session_dir nor store, sessions live in the per-user data directory, 0700.

(The MarshalX clients rely on this default too: a bot that names no directory
still shares one session per user across its runs.)
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from sessionkeeper.atproto import AsyncPersistentSessionManager, PersistentSessionManager
from sessionkeeper.atproto.home import default_session_dir
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.testing.fake_pds import FakePds


@pytest.fixture
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    return home


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_default_home_is_the_platform_data_dir(data_home: Path) -> None:
    assert default_session_dir() == data_home / "sessionkeeper" / "atproto"


def test_a_manager_without_dir_or_store_keeps_sessions_in_the_default_home(
    data_home: Path, pds: FakePds, clock: ManualClock, alice: str
) -> None:
    with PersistentSessionManager(None, pds.url, clock=clock) as manager:
        assert isinstance(manager.store, DirectoryStore)
        where = data_home / "sessionkeeper" / "atproto"
        assert manager.store.path == where
        assert mode(where) == 0o700 and mode(where.parent) == 0o700
        assert str(where) in repr(manager)
        manager.login("alice.test", "alice-pass")
        assert (where / f"did_plc_{alice.removeprefix('did:plc:')}.json").exists()
        assert "alice-pass" not in repr(manager) and manager.session is not None
        assert manager.session.access_jwt not in repr(manager)

    async def load() -> str:
        async with AsyncPersistentSessionManager(None, pds.url, clock=clock) as again:
            assert await again.load_session(alice) is not None
            return repr(again)

    shown = asyncio.run(load())
    assert str(where) in shown and alice in shown


def test_an_existing_loose_default_home_is_tightened(data_home: Path, pds: FakePds) -> None:
    where = data_home / "sessionkeeper" / "atproto"
    where.mkdir(parents=True, mode=0o755)
    where.chmod(0o755)
    with PersistentSessionManager(None, pds.url):
        assert mode(where) == 0o700
