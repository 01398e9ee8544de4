"""Interop and migration: Rust SDK session directories, MarshalX strings, any store."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.atproto import PersistentSessionManager, SessionStringError, name_for_did
from sessionkeeper.atproto.interop import (
    copy_sessions,
    import_session_dir,
    import_session_string,
)
from sessionkeeper.stores import DirectoryStore, MemoryStore
from sessionkeeper.stores.encrypted import EncryptedStore
from sessionkeeper.stores.sqlite import SqliteStore
from sessionkeeper.testing.fake_pds import FakePds

pytestmark = pytest.mark.timeout(60)

GET_SESSION = "com.atproto.server.getSession"


@pytest.fixture
def pds() -> Iterator[FakePds]:
    with FakePds() as fake:
        yield fake


def rust_session_dir(tmp_path: Path, pds: FakePds) -> tuple[Path, str]:
    """A directory laid out as the Rust SDK writes it, with a real session in it."""
    did = pds.create_account("alice.test", "alice-pass")
    with PersistentSessionManager(None, pds.url, store=MemoryStore()) as m:
        session = m.login("alice.test", "alice-pass")
    rust = tmp_path / "rust-sessions"
    rust.mkdir()
    # Older Rust SDK file: None fields omitted and no "active" key.
    document = {
        "refreshJwt": session.refresh_jwt,
        "accessJwt": session.access_jwt,
        "handle": session.handle,
        "did": session.did,
    }
    (rust / name_for_did(did)).write_text(json.dumps(document, indent=2))
    (rust / "did_plc_corrupt.json").write_text("{ nope")
    (rust / "README.txt").write_text("not a session")
    return rust, did


def test_rust_sdk_session_dir_imports_byte_for_byte_and_works(tmp_path: Path, pds: FakePds) -> None:
    rust, did = rust_session_dir(tmp_path, pds)
    store = DirectoryStore(tmp_path / "ours")
    assert import_session_dir(rust, store) == [did]
    name = name_for_did(did)
    assert store.get(name) == (rust / name).read_bytes()
    with PersistentSessionManager(None, pds.url, store=store) as m:
        loaded = m.load_session(did)
        assert loaded is not None and loaded.active is True
        assert m.query(GET_SESSION)["did"] == did
    assert pds.counts["com.atproto.server.createSession"] == 1


def test_rust_sdk_session_dir_is_usable_in_place(tmp_path: Path, pds: FakePds) -> None:
    rust, did = rust_session_dir(tmp_path, pds)
    with PersistentSessionManager(rust, pds.url) as m:
        assert m.list_sessions() == [did]
        assert m.load_session(did) is not None
        m.refresh_token()
    written = json.loads((rust / name_for_did(did)).read_text())
    assert written["did"] == did and written["active"] is True


def test_import_keeps_existing_sessions_unless_overwrite(tmp_path: Path, pds: FakePds) -> None:
    rust, did = rust_session_dir(tmp_path, pds)
    store = MemoryStore()
    store.put(name_for_did(did), b"{}")
    assert import_session_dir(rust, store) == []
    assert store.get(name_for_did(did)) == b"{}"
    assert import_session_dir(rust, store, overwrite=True) == [did]


def test_sessions_migrate_from_files_to_an_encrypted_sqlite_store(
    tmp_path: Path, pds: FakePds
) -> None:
    rust, did = rust_session_dir(tmp_path, pds)
    key = secrets.token_hex(32)
    target = EncryptedStore(SqliteStore(tmp_path / "sessions.db"), key)
    assert copy_sessions(DirectoryStore(rust), target) == [did]
    raw = (tmp_path / "sessions.db").read_bytes()
    assert b"refreshJwt" not in raw
    with PersistentSessionManager(None, pds.url, store=target) as m:
        assert m.list_sessions() == [did]
        assert m.load_session(did) is not None
        assert m.query(GET_SESSION)["did"] == did


def test_session_string_imports_with_its_pds_endpoint(tmp_path: Path, pds: FakePds) -> None:
    did = pds.create_account("bob.test", "bob-pass")
    with PersistentSessionManager(None, pds.url, store=MemoryStore()) as m:
        session = m.login("bob.test", "bob-pass")
    text = session.to_session_string(pds.url)
    store = MemoryStore()
    imported, endpoint = import_session_string(text, store)
    assert imported.did == did and endpoint == pds.url
    with PersistentSessionManager(None, pds.url, store=store) as m:
        assert m.load_session(did) is not None
        assert m.query(GET_SESSION)["handle"] == "bob.test"
    with pytest.raises(ValueError):
        import_session_string("bob.test:::not-a-did:::a:::b", store)


@pytest.mark.parametrize(
    "endpoint", ["ftp://pds.example", "javascript:alert(1)", "https://", "file:///etc/passwd"]
)
def test_a_session_string_whose_pds_is_not_http_is_refused_and_nothing_stored(
    endpoint: str,
) -> None:
    text = f"bob.test:::did:plc:bob:::access-secret-123:::refresh-secret-456:::{endpoint}"
    store = MemoryStore()
    with pytest.raises(SessionStringError, match="PDS endpoint") as refused:
        import_session_string(text, store)
    assert isinstance(refused.value, ValueError)
    assert "http:// or https://" in str(refused.value) or "no host" in str(refused.value)
    assert "secret" not in str(refused.value)
    assert store.names() == []


def test_session_files_stay_private(tmp_path: Path, pds: FakePds) -> None:
    rust, did = rust_session_dir(tmp_path, pds)
    store = DirectoryStore(tmp_path / "ours")
    import_session_dir(rust, store)
    mode = os.stat(tmp_path / "ours" / name_for_did(did)).st_mode & 0o777
    assert mode == 0o600
