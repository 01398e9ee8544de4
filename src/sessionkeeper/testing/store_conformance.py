"""The Store contract as a pytest suite that any store's tests inherit, ours or a third party's.

A test class inherits [`StoreConformance`][] and provides a ``store`` fixture
returning an empty store::

    from sessionkeeper.testing.store_conformance import StoreConformance

    class TestMyStore(StoreConformance):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path)

Stores that other processes can open inherit [`SharedStoreConformance`][]
instead and also provide ``store_url`` (a URL that ``open_store`` understands).
For pytest's assertion messages, call
``pytest.register_assert_rewrite("sessionkeeper.testing.store_conformance")``
in your ``conftest.py`` before importing it. Needs ``pytest`` (only).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from sessionkeeper.stores import (
    MAX_VALUE_BYTES,
    InvalidNameError,
    LockTimeoutError,
    Store,
    ValueTooLargeError,
    iter_items,
)

FRIENDLY_NAMES = [
    "session_0123456789abcdef0123456789abcdef.json",
    "did_plc_xyz123.json",
    "did_web_example.com%3A8080.json",
    "ünïcødé-名前-🔑.json",
    "with spaces in the name",
    "punct !#$%&'()*+,;=@[]^_`{}~-",
    "a",
    "x" * 200,
]

HOSTILE_NAMES: list[object] = [
    "",
    ".",
    "..",
    "../escape",
    "a/../../b",
    "/etc/passwd",
    "dir/name",
    "back\\slash",
    "nul\x00byte",
    "new\nline",
    ".hidden",
    ".name.lock",
    "x" * 201,
    "é" * 101,
    None,
    b"bytes-name",
    42,
]

HOLD_LOCK = """
import sys, time
from sessionkeeper.stores import open_store
store = open_store(sys.argv[1])
with store.lock(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(600)
"""

PUT_VALUE = """
import sys
from sessionkeeper.stores import open_store
open_store(sys.argv[1]).put(sys.argv[2], sys.argv[3].encode())
"""


def _spawn_lock_holder(store_url: str, name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, store_url, name],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


class StoreConformance:
    """The contract of `sessionkeeper.Store`, run against each implementation."""

    def test_missing_name_reads_as_none(self, store: Store) -> None:
        assert store.get("absent") is None
        assert store.delete("absent") is False

    def test_put_then_get_round_trips_every_byte_value(self, store: Store) -> None:
        data = bytes(range(256)) * 4
        store.put("blob", data)
        assert store.get("blob") == data

    def test_empty_value_is_a_value(self, store: Store) -> None:
        store.put("empty", b"")
        assert store.get("empty") == b""
        assert "empty" in store.names()

    def test_put_replaces_the_previous_value(self, store: Store) -> None:
        store.put("k", b"one")
        store.put("k", b"two")
        assert store.get("k") == b"two"
        assert store.names().count("k") == 1

    def test_delete_reports_whether_the_name_existed(self, store: Store) -> None:
        store.put("k", b"v")
        assert store.delete("k") is True
        assert store.get("k") is None
        assert store.delete("k") is False

    @pytest.mark.parametrize("name", FRIENDLY_NAMES)
    def test_unicode_and_punctuation_names_work(self, store: Store, name: str) -> None:
        store.put(name, name.encode())
        assert store.get(name) == name.encode()
        assert name in store.names()
        with store.lock(name, timeout=5):
            pass
        assert store.delete(name)

    @pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
    def test_hostile_names_are_refused_everywhere(self, store: Store, name: object) -> None:
        with pytest.raises(InvalidNameError):
            store.put(name, b"v")  # type: ignore[arg-type]
        with pytest.raises(InvalidNameError):
            store.get(name)  # type: ignore[arg-type]
        with pytest.raises(InvalidNameError):
            store.delete(name)  # type: ignore[arg-type]
        with pytest.raises(InvalidNameError), store.lock(name):  # type: ignore[arg-type]
            pass
        assert store.names() == []

    def test_names_are_sorted_and_complete(self, store: Store) -> None:
        for name in ["c", "a", "b"]:
            store.put(name, name.encode())
        assert store.names() == ["a", "b", "c"]
        assert dict(iter_items(store)) == {"a": b"a", "b": b"b", "c": b"c"}

    def test_values_over_the_cap_are_refused(self, store: Store) -> None:
        with pytest.raises(ValueTooLargeError, match="limit"):
            store.put("big", b"x" * (MAX_VALUE_BYTES + 1))
        assert store.get("big") is None

    def test_values_must_be_bytes(self, store: Store) -> None:
        with pytest.raises(TypeError, match="bytes"):
            store.put("k", "text")  # type: ignore[arg-type]

    def test_lock_is_reentrant_within_a_thread(self, store: Store) -> None:
        with store.lock("k", timeout=2), store.lock("k", timeout=2):
            store.put("k", b"v")
        assert store.get("k") == b"v"

    def test_lock_excludes_other_threads(self, store: Store) -> None:
        outcome: list[str] = []

        def contender() -> None:
            try:
                with store.lock("k", timeout=0.3):
                    outcome.append("acquired")
            except LockTimeoutError:
                outcome.append("timed out")

        with store.lock("k"):
            thread = threading.Thread(target=contender)
            thread.start()
            thread.join()
        assert outcome == ["timed out"]
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join()
        assert outcome == ["timed out", "acquired"]

    def test_locks_of_different_names_are_independent(self, store: Store) -> None:
        acquired = threading.Event()

        def other() -> None:
            with store.lock("b", timeout=2):
                acquired.set()

        with store.lock("a"):
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        assert acquired.is_set()

    def test_lock_timeout_error_names_the_lock(self, store: Store) -> None:
        ready, release = threading.Event(), threading.Event()

        def holder() -> None:
            with store.lock("busy"):
                ready.set()
                release.wait(10)

        thread = threading.Thread(target=holder)
        thread.start()
        ready.wait(5)
        try:
            with pytest.raises(LockTimeoutError, match="busy"), store.lock("busy", timeout=0.1):
                pass
        finally:
            release.set()
            thread.join()


class SharedStoreConformance(StoreConformance):
    """The contract plus what a store shared between processes must do."""

    def test_another_process_sees_a_put(self, store: Store, store_url: str) -> None:
        subprocess.run([sys.executable, "-c", PUT_VALUE, store_url, "shared", "hello"], check=True)
        assert store.get("shared") == b"hello"

    def test_lock_excludes_other_processes(self, store: Store, store_url: str) -> None:
        holder = _spawn_lock_holder(store_url, "k")
        try:
            with pytest.raises(LockTimeoutError), store.lock("k", timeout=0.3):
                pass
        finally:
            holder.terminate()
            holder.wait()

    def test_lock_of_a_sigkilled_holder_is_free_within_a_second(
        self, store: Store, store_url: str
    ) -> None:
        holder = _spawn_lock_holder(store_url, "k")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        started = time.monotonic()
        with store.lock("k", timeout=self.lock_recovery_seconds()):
            waited = time.monotonic() - started
        # Filelock-based stores free the lock as the holder dies; lease-based stores
        # (Redis) override lock_recovery_seconds with their lease.
        assert waited <= self.lock_recovery_seconds()

    def lock_recovery_seconds(self) -> float:
        """How long a dead holder may keep a lock in this store."""
        return 1.0
