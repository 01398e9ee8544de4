"""Lock-file locks hand over when the holder lets go: the kernel wakes a waiter, no polling."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import filelock
import pytest

from sessionkeeper.stores import DirectoryStore, LockTimeoutError

pytestmark = pytest.mark.timeout(60)

HOLDER = """
import sys
from sessionkeeper.stores import DirectoryStore
store = DirectoryStore(sys.argv[1])
with store.lock("session"):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def hold_in_another_process(path: Path) -> subprocess.Popen[str]:
    """A process that holds the lock of ``session`` until a line arrives on its stdin."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    return holder


def lock_waits() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sessionkeeper-lock-wait"]


def test_a_waiter_tries_once_then_again_only_when_woken_by_the_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DirectoryStore(tmp_path)
    attempts = []
    original = filelock.FileLock.acquire

    def counted(self: filelock.FileLock, *args: Any, **kwargs: Any) -> Any:
        attempts.append(kwargs.get("blocking"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(filelock.FileLock, "acquire", counted)
    holder = hold_in_another_process(tmp_path)
    got = threading.Event()

    def waiter() -> None:
        with store.lock("session", timeout=30):
            got.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    # Long enough for a poller (filelock retries every 50 ms) to show itself many times.
    assert not got.wait(0.5)
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    thread.join(30)
    assert got.is_set()
    assert holder.wait(10) == 0
    # One attempt that found the lock busy, one after the kernel said it was free.
    assert attempts == [False, False]


def test_a_timed_out_waiter_raises_and_leaves_no_thread_once_the_holder_lets_go(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path)
    holder = hold_in_another_process(tmp_path)
    with pytest.raises(LockTimeoutError, match="session"), store.lock("session", timeout=0.2):
        pass
    left = lock_waits()
    assert left, "the timed-out wait runs on until the lock is free"
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.wait(10) == 0
    for thread in left:
        thread.join(10)
        assert not thread.is_alive()
    with store.lock("session", timeout=5):
        pass
