"""The seed's HAC session API, exactly as written, on safe storage."""

from __future__ import annotations

import hashlib
import json
import logging
import stat
import time
import typing
from pathlib import Path

import pytest

import hac_client_core
from hac_client_core import SessionManager, SessionMetadata
from sessionkeeper.stores import EncryptedStore, MemoryStore, SqliteStore, Store, generate_key

URL, USER, ENV = "https://localhost:9002", "admin", "local"
FIELDS = [
    "session_id",
    "csrf_token",
    "route_cookie",
    "environment",
    "base_url",
    "username",
    "created_at",
    "last_used_at",
    "is_authenticated",
]


def file_for(cache: Path, base_url: str = URL, user: str = USER, env: str = ENV) -> Path:
    digest = hashlib.md5(f"{base_url}:{user}:{env}".encode()).hexdigest()
    return cache / f"session_{digest}.json"


@pytest.fixture
def manager(tmp_path: Path) -> SessionManager:
    return SessionManager(tmp_path / "cache")


def test_default_cache_dir_is_the_originals(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert SessionManager().cache_dir == tmp_path / ".cache" / "hac-client"
    assert (tmp_path / ".cache" / "hac-client").is_dir()


def test_session_manager_is_final() -> None:
    assert getattr(SessionManager, "__final__", False) is True
    assert typing.get_type_hints(SessionManager.__init__)["cache_dir"] == Path | None


def test_save_writes_the_originals_file_name_and_nine_fields(
    manager: SessionManager, tmp_path: Path
) -> None:
    manager.save_session(URL, USER, ENV, "JSESSION123", "csrf-abc", "ROUTE=.node1")
    path = file_for(tmp_path / "cache")
    data = json.loads(path.read_text())
    assert list(data) == FIELDS
    assert data["session_id"] == "JSESSION123"
    assert data["route_cookie"] == "ROUTE=.node1"
    assert data["is_authenticated"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700


def test_load_returns_the_saved_session(manager: SessionManager) -> None:
    assert manager.load_session(URL, USER, ENV) is None
    manager.save_session(URL, USER, ENV, "sid", "csrf")
    loaded = manager.load_session(URL, USER, ENV)
    assert isinstance(loaded, SessionMetadata)
    assert (loaded.session_id, loaded.csrf_token, loaded.route_cookie) == ("sid", "csrf", None)
    assert (loaded.base_url, loaded.username, loaded.environment) == (URL, USER, ENV)


def test_resave_keeps_created_at_and_moves_last_used_at(manager: SessionManager) -> None:
    manager.save_session(URL, USER, ENV, "sid1", "csrf1")
    first = manager.load_session(URL, USER, ENV)
    assert first is not None
    time.sleep(0.02)
    manager.save_session(URL, USER, ENV, "sid2", "csrf2")
    second = manager.load_session(URL, USER, ENV)
    assert second is not None
    assert second.created_at == first.created_at
    assert second.last_used_at > first.last_used_at
    assert second.session_id == "sid2"


def test_touch_updates_only_last_used_at(manager: SessionManager) -> None:
    manager.touch_session(URL, USER, ENV)  # no session: nothing happens
    assert manager.load_session(URL, USER, ENV) is None
    manager.save_session(URL, USER, ENV, "sid", "csrf")
    before = manager.load_session(URL, USER, ENV)
    time.sleep(0.02)
    manager.touch_session(URL, USER, ENV)
    after = manager.load_session(URL, USER, ENV)
    assert before is not None and after is not None
    assert after.last_used_at > before.last_used_at
    assert (after.session_id, after.created_at) == (before.session_id, before.created_at)


def test_remove_deletes_one_session(manager: SessionManager) -> None:
    manager.save_session(URL, USER, ENV, "a", "x")
    manager.save_session(URL, USER, "prod", "b", "y")
    manager.remove_session(URL, USER, ENV)
    manager.remove_session(URL, USER, ENV)  # absent: no error
    assert manager.load_session(URL, USER, ENV) is None
    assert manager.load_session(URL, USER, "prod") is not None


def test_list_is_sorted_by_last_used_newest_first(manager: SessionManager) -> None:
    for env in ["a", "b", "c"]:
        manager.save_session(URL, USER, env, f"sid-{env}", "csrf")
        time.sleep(0.01)
    manager.touch_session(URL, USER, "a")
    assert [s.environment for s in manager.list_sessions()] == ["a", "c", "b"]


def test_clear_all_returns_the_count(manager: SessionManager, tmp_path: Path) -> None:
    for env in ["a", "b", "c"]:
        manager.save_session(URL, USER, env, "sid", "csrf")
    (tmp_path / "cache" / "unrelated.txt").write_text("keep me")
    assert manager.clear_all_sessions() == 3
    assert manager.list_sessions() == []
    assert (tmp_path / "cache" / "unrelated.txt").exists()
    assert manager.clear_all_sessions() == 0


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"a string"',
        b"{}",
        b'{"session_id": 5}',
        json.dumps({f: "x" for f in FIELDS}).encode(),
        b"",
    ],
    ids=[
        "bad-json",
        "not-utf8",
        "array",
        "string",
        "empty-object",
        "wrong-type",
        "all-str",
        "empty",
    ],
)
def test_corrupt_file_loads_as_none_and_is_removed(
    manager: SessionManager, tmp_path: Path, content: bytes
) -> None:
    path = file_for(tmp_path / "cache")
    path.write_bytes(content)
    assert manager.load_session(URL, USER, ENV) is None
    assert not path.exists()


def test_corrupt_files_are_skipped_by_list(manager: SessionManager, tmp_path: Path) -> None:
    manager.save_session(URL, USER, ENV, "sid", "csrf")
    file_for(tmp_path / "cache", env="broken").write_bytes(b"{")
    assert [s.environment for s in manager.list_sessions()] == [ENV]


def test_an_oversized_or_undecryptable_entry_is_skipped_by_list(
    manager: SessionManager, tmp_path: Path
) -> None:
    manager.save_session(URL, USER, ENV, "sid", "csrf")
    file_for(tmp_path / "cache", env="huge").write_bytes(b" " * (2 << 20))
    assert [s.environment for s in manager.list_sessions()] == [ENV]

    inner = MemoryStore()
    encrypted = SessionManager(store=EncryptedStore(inner, generate_key()))
    encrypted.save_session(URL, USER, ENV, "sid", "csrf")
    inner.put(file_for(Path(), env="foreign").name, b"not sealed with this key")
    assert [s.environment for s in encrypted.list_sessions()] == [ENV]


def test_a_corrupt_file_that_cannot_be_removed_still_loads_as_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class ReadOnlyStore(MemoryStore):
        def delete(self, name: str) -> bool:
            raise PermissionError(13, "Permission denied")

    store = ReadOnlyStore()
    store.put(file_for(Path()).name, b"{half")
    assert SessionManager(store=store).load_session(URL, USER, ENV) is None
    assert "could not be removed" in caplog.text


def test_a_file_replaced_while_judged_corrupt_is_kept(
    manager: SessionManager, tmp_path: Path
) -> None:
    path = file_for(tmp_path / "cache")
    path.write_bytes(b"{half")
    # Another writer lands a valid session between our read and our verdict.
    manager.save_session(URL, USER, ENV, "fresh", "csrf")
    recovered = manager._recover_corrupt(path.name, b"{half")
    assert recovered is not None and recovered.session_id == "fresh"
    assert path.exists()


def test_files_of_the_original_library_load(manager: SessionManager, tmp_path: Path) -> None:
    original = {
        "session_id": "ABC",
        "csrf_token": "tok",
        "route_cookie": None,
        "environment": ENV,
        "base_url": URL,
        "username": USER,
        "created_at": 1700000000.5,
        "last_used_at": 1700000100,
        "is_authenticated": True,
    }
    file_for(tmp_path / "cache").write_text(json.dumps(original, indent=2))
    loaded = manager.load_session(URL, USER, ENV)
    assert loaded is not None and loaded.last_used_at == 1700000100.0
    assert loaded.created_at_formatted == time.strftime(
        "%Y-%m-%d %H:%M:%S", time.localtime(1700000000.5)
    )


def test_properties(manager: SessionManager) -> None:
    manager.save_session(URL, USER, ENV, "sid", "csrf")
    session = manager.load_session(URL, USER, ENV)
    assert session is not None
    assert 0 <= session.age_seconds < 60
    assert 0 <= session.idle_seconds < 60
    assert len(session.last_used_at_formatted) == 19


def test_repr_hides_session_id_and_csrf_token() -> None:
    session = SessionMetadata(
        "JSESSIONSECRET123", "CSRFSECRET456", "ROUTE=.n1", ENV, URL, USER, 1, 2
    )
    text = repr(session)
    assert "JSESSIONSECRET123" not in text and "CSRFSECRET456" not in text
    assert "JSES..." in text


def test_any_store_can_hold_the_sessions(tmp_path: Path) -> None:
    stores: list[Store] = [
        MemoryStore(),
        SqliteStore(tmp_path / "s.db"),
        EncryptedStore(MemoryStore(), generate_key()),
    ]
    for store in stores:
        manager = SessionManager(store=store)
        manager.save_session(URL, USER, ENV, "sid", "csrf")
        loaded = manager.load_session(URL, USER, ENV)
        assert loaded is not None and loaded.session_id == "sid"
        assert len(manager.list_sessions()) == 1
        assert manager.clear_all_sessions() == 1


def test_write_errors_are_logged_with_a_full_store(caplog: pytest.LogCaptureFixture) -> None:
    class FullStore(MemoryStore):
        def put(self, name: str, data: bytes) -> None:
            raise OSError(28, "No space left on device")

    SessionManager(store=FullStore()).save_session(URL, USER, ENV, "sid", "csrf")
    assert "cannot save HAC session" in caplog.text
    assert "No space left" in caplog.text


def test_exports_of_the_drop_in_package() -> None:
    assert hac_client_core.SessionManager is SessionManager
    assert "SessionMetadata" in hac_client_core.__all__


def test_a_listing_names_the_corrupt_file_it_skips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corrupt = tmp_path / "session_0123456789abcdef0123456789abcdef.json"
    tmp_path.chmod(0o700)
    corrupt.write_text("[1, 2]")
    with caplog.at_level(logging.WARNING, logger="sessionkeeper.hac.session"):
        assert SessionManager(tmp_path).list_sessions() == []
    assert corrupt.name in caplog.text and "JSON list" in caplog.text
