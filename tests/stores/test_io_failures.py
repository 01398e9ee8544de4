"""Stores under real I/O failures: a full disk, a read-only disk, FIFOs, foreign owners, umask.

Each failure leaves the store as a named StoreError (also an OSError with the
original errno), keeps the old value, and never hangs.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.atproto import PersistentSessionManager, name_for_did
from sessionkeeper.clock import ManualClock
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.maintenance.doctor import diagnose_directory
from sessionkeeper.maintenance.prune import prune
from sessionkeeper.stores import (
    MAX_VALUE_BYTES,
    DirectoryStore,
    SqliteStore,
    StoreError,
    ValueTooLargeError,
)
from sessionkeeper.stores.errors import StoreFullError, StoreIOError, UnsafeStoreError
from sessionkeeper.testing.fake_pds import FakePds
from tests.support import missing_component
from tests.tmpfs_fixture import fill, remount_read_only, tiny_disk

__all__ = ["tiny_disk"]
pytestmark = pytest.mark.timeout(60)
REFRESH = "com.atproto.server.refreshSession"


def temp_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".tmp"))


# -- full and read-only disks -------------------------------------------------------------


def test_a_full_disk_is_a_store_full_error_and_keeps_the_old_value(tiny_disk: Path) -> None:
    store = DirectoryStore(tiny_disk / "sessions")
    store.put("k", b"old")
    fill(tiny_disk)
    with pytest.raises(StoreFullError, match="disk is full") as caught:
        store.put("k", b"new" * 4096)
    assert isinstance(caught.value, StoreError) and isinstance(caught.value, OSError)
    assert caught.value.errno == errno.ENOSPC
    assert store.get("k") == b"old"
    assert temp_files(tiny_disk / "sessions") == []


def test_a_read_only_disk_is_a_store_io_error_for_writes_deletes_and_locks(
    tiny_disk: Path,
) -> None:
    store = DirectoryStore(tiny_disk / "sessions")
    store.put("k", b"old")
    remount_read_only(tiny_disk)
    with pytest.raises(StoreIOError, match="read-only") as caught:
        store.put("k", b"new")
    assert caught.value.errno == errno.EROFS
    with pytest.raises(StoreIOError, match="read-only"):
        store.delete("k")
    with pytest.raises(StoreIOError, match="read-only"), store.lock("never-locked-before"):
        pass
    assert store.get("k") == b"old"


def test_a_full_disk_under_sqlite_is_a_store_full_error(tiny_disk: Path) -> None:
    store = SqliteStore(tiny_disk / "sessions.db")
    store.put("k", b"old")
    fill(tiny_disk)
    with pytest.raises(StoreFullError, match="full"):
        store.put("big", os.urandom(32 * 1024))
    assert store.get("k") == b"old"


def test_a_refresh_on_a_full_disk_keeps_the_rotated_pair_and_the_call_succeeds(
    tiny_disk: Path,
) -> None:
    clock = ManualClock()
    with FakePds(clock=clock, grace_period=0, access_lifetime=600) as pds:
        did = pds.create_account("alice.test", "alice-pass")
        store = DirectoryStore(tiny_disk / "sessions")
        with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
            first = manager.login("alice.test", "alice-pass")
            fill(tiny_disk)
            clock.advance(500)  # inside the refresh margin: the call refreshes first
            assert manager.query("com.atproto.server.getSession")["did"] == did
            kept = manager.session
            assert kept is not None and kept.refresh_jwt != first.refresh_jwt
            clock.advance(601)  # grace 0: only the rotated refresh token still works
            assert manager.query("com.atproto.server.getSession")["did"] == did
            (tiny_disk / "filler").unlink()
            clock.advance(601)
            manager.refresh_token()
            stored = store.get(name_for_did(did))
            assert stored is not None and manager.session is not None
            assert manager.session.refresh_jwt.encode() in stored
        assert pds.errors[REFRESH] == 0


# -- FIFOs never hang ----------------------------------------------------------------------


def test_a_fifo_in_place_of_a_session_file_is_refused_at_once(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    os.mkfifo(tmp_path / "session_0123456789abcdef0123456789abcdef.json")
    with pytest.raises(StoreIOError, match="FIFO"):
        store.get("session_0123456789abcdef0123456789abcdef.json")
    assert store.names() == []
    assert dict(store.items()) == {}


def test_a_hac_load_over_a_fifo_returns_no_session(tmp_path: Path) -> None:
    manager = SessionManager(tmp_path)
    name = "session_" + __import__("hashlib").md5(b"https://h:admin:dev").hexdigest() + ".json"
    os.mkfifo(tmp_path / name)
    assert manager.load_session("https://h", "admin", "dev") is None


def test_fifos_as_temp_files_do_not_hang_the_first_put_doctor_or_prune(tmp_path: Path) -> None:
    DirectoryStore(tmp_path).put("k", b"v")
    own, stale = tmp_path / ".k.tmp", tmp_path / ".k.0123456789ab.tmp"
    os.mkfifo(own)
    os.mkfifo(stale)
    old = time.time() - 60
    os.utime(stale, (old, old))
    os.mkfifo(tmp_path / ".k.lock.fifo")
    store = DirectoryStore(tmp_path)
    store.put("k", b"new")  # the first put sweeps, and the name's own temp is a FIFO
    assert store.get("k") == b"new"
    assert not stale.exists()
    diagnose_directory(tmp_path)
    prune(store)


# -- stale temp files of killed writers -----------------------------------------------------

KILLED_WRITER = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b'{"half": "a sess')
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_next_write_of_a_name_removes_the_temp_file_its_killed_writer_left(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path)
    store.put("warm-up", b"x")  # this long-lived store has already swept once
    died = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path / ".k.tmp")])
    assert died.returncode == -signal.SIGKILL
    assert temp_files(tmp_path) == [".k.tmp"]
    store.put("k", b"whole")
    assert store.get("k") == b"whole"
    assert temp_files(tmp_path) == []
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


HOLDING_WRITER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b'in progress')
print('held', flush=True)
time.sleep(60)
"""


def test_a_temp_file_a_live_writer_holds_is_left_alone(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    own = tmp_path / ".k.tmp"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDING_WRITER, str(own)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        store.put("k", b"mine")
        assert store.get("k") == b"mine"
        assert own.read_bytes() == b"in progress"
        assert temp_files(tmp_path) == [".k.tmp"]
    finally:
        holder.kill()
        holder.wait()


# -- ownership and modes --------------------------------------------------------------------

OTHER_UID = 54321


@pytest.fixture
def foreign_dir(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        missing_component("giving a directory to another user needs root")
    directory = tmp_path / "theirs"
    directory.mkdir(mode=0o700)
    os.chown(directory, OTHER_UID, OTHER_UID)
    return directory


def test_a_store_directory_owned_by_another_user_is_refused(foreign_dir: Path) -> None:
    with pytest.raises(UnsafeStoreError, match=rf"belongs to another user \(uid {OTHER_UID}"):
        DirectoryStore(foreign_dir)


def test_a_sqlite_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        missing_component("giving a file to another user needs root")
    SqliteStore(tmp_path / "s.db").close()
    os.chown(tmp_path / "s.db", OTHER_UID, OTHER_UID)
    with pytest.raises(UnsafeStoreError, match="another user"):
        SqliteStore(tmp_path / "s.db")


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_under_umask_000_new_parent_directories_are_0700(tmp_path: Path) -> None:
    DirectoryStore(tmp_path / "a" / "b" / "c")
    SqliteStore(tmp_path / "x" / "y" / "s.db").close()
    for directory in ("a", "a/b", "a/b/c", "x", "x/y", "x/y/s.db.locks"):
        assert stat.S_IMODE((tmp_path / directory).stat().st_mode) == 0o700, directory


# -- the size cap on bulk reads ---------------------------------------------------------------


def test_sqlite_items_apply_the_cap_that_get_applies(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    store.put("small", b"ok")
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute("INSERT INTO kv VALUES (?, ?)", ("huge", b"x" * (MAX_VALUE_BYTES + 1)))
    with pytest.raises(ValueTooLargeError, match="'huge'"):
        store.get("huge")
    with pytest.raises(ValueTooLargeError, match="'huge'"):
        dict(store.items())
