"""Guarantees of DirectoryStore beyond the shared contract: atomicity, modes, temp files."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from sessionkeeper.stores import MAX_VALUE_BYTES, DirectoryStore, ValueTooLargeError


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_directory_is_0700_and_files_are_0600(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "a" / "b")
    store.put("k", b"v")
    assert mode_of(tmp_path / "a" / "b") == 0o700
    assert mode_of(tmp_path / "a" / "b" / "k") == 0o600


def test_looser_existing_modes_are_tightened(tmp_path: Path) -> None:
    root = tmp_path / "loose"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    (root / "k").write_bytes(b"v")
    (root / "k").chmod(0o644)
    store = DirectoryStore(root)
    assert mode_of(root) == 0o700
    assert store.get("k") == b"v"
    assert mode_of(root / "k") == 0o600


def test_a_failed_write_keeps_the_old_value_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryStore(tmp_path)
    store.put("k", b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        store.put("k", b"new")
    monkeypatch.undo()
    assert store.get("k") == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_writes_replace_the_file_instead_of_rewriting_it_in_place(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.put("k", b"first")
    with (tmp_path / "k").open("rb") as reader:
        store.put("k", b"second")
        # A reader that opened the old file keeps reading the old, complete bytes.
        assert reader.read() == b"first"
    assert store.get("k") == b"second"


def _stale_temp(root: Path, name: str, age: float) -> Path:
    temp = root / f".{name}.deadbeef0001.tmp"
    temp.write_bytes(b"half a sess")
    old = time.time() - age
    os.utime(temp, (old, old))
    return temp


def test_stale_temp_files_are_not_names_and_the_next_writer_sweeps_them(tmp_path: Path) -> None:
    DirectoryStore(tmp_path).put("k", b"v")
    temp = _stale_temp(tmp_path, "k", age=60)
    store = DirectoryStore(tmp_path)
    assert store.names() == ["k"]
    store.put("other", b"w")
    assert not temp.exists()


def test_a_temp_file_still_held_by_a_writer_is_never_swept(tmp_path: Path) -> None:
    temp = _stale_temp(tmp_path, "k", age=60)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            "f = open(sys.argv[1], 'rb')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
            str(temp),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert DirectoryStore(tmp_path).sweep_stale_temp_files() == 0
        assert temp.exists()
    finally:
        holder.kill()
        holder.wait()
    assert DirectoryStore(tmp_path).sweep_stale_temp_files() == 1


def test_a_fresh_temp_file_is_left_alone(tmp_path: Path) -> None:
    temp = _stale_temp(tmp_path, "k", age=0)
    assert DirectoryStore(tmp_path).sweep_stale_temp_files() == 0
    assert temp.exists()


def test_reads_are_capped_with_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "huge").write_bytes(b"x" * (MAX_VALUE_BYTES + 10))
    with pytest.raises(ValueTooLargeError, match=r"'huge'.*limit"):
        DirectoryStore(tmp_path).get("huge")


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"outside")
    root = tmp_path / "store"
    store = DirectoryStore(root)
    (root / "link").symlink_to(secret)
    with pytest.raises(OSError, match="symlink"):
        store.get("link")
    assert "link" not in store.names()


def test_lock_files_are_hidden_and_kept(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    with store.lock("k"):
        pass
    assert (tmp_path / ".k.lock").exists()
    assert store.names() == []


def test_a_put_fsyncs_the_file_before_the_rename_and_the_directory_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryStore(tmp_path)
    store.put("warm", b"up")  # the first put also sweeps; record a steady-state one
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(fd: int) -> None:
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def recording_replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    store.put("k", b"durable")
    assert events == ["fsync file", "rename", "fsync dir"]
    events.clear()
    assert store.delete("k")
    assert events == ["fsync dir"]  # a removal is made durable too


def test_locking_many_names_keeps_no_memory_per_name(tmp_path: Path) -> None:
    # prune and migrate lock every name of a store once; a store of 100,000 sessions
    # must not keep 100,000 lock objects alive afterwards.
    store = DirectoryStore(tmp_path)
    with store.lock("warm-up"):
        pass
    ours = [tracemalloc.Filter(True, "*filelock*"), tracemalloc.Filter(True, "*sessionkeeper*")]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(ours)
        for i in range(1000):
            with store.lock(f"name-{i}", timeout=5), store.lock(f"name-{i}", timeout=5):
                pass
        after = tracemalloc.take_snapshot().filter_traces(ours)
    finally:
        tracemalloc.stop()
    retained = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert retained < 20_000, f"{retained} bytes kept after locking 1,000 names"
