"""Per-name cross-process locks on lock files.

Why lock files are kept, never deleted: two contenders that open the same path
at different moments must meet on the same inode, or both would hold "the"
lock. The kernel drops an ``flock`` when its holder dies, so a SIGKILLed
holder never blocks the next one.

filelock is imported on the first lock, not with the store: a run that only
reads a cached session (a warm ``hac groovy``) never locks, and filelock's
import costs about as much as the rest of the store package.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sessionkeeper.stores.base import DEFAULT_LOCK_TIMEOUT
from sessionkeeper.stores.errors import LockTimeoutError
from sessionkeeper.stores.files import store_io_error

if TYPE_CHECKING:
    from filelock import FileLock

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

_PROBE_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_WAIT_FLAGS = _PROBE_FLAGS | getattr(os, "O_CLOEXEC", 0)


def flock_is_held(path: Path) -> bool:
    """Whether some process holds an ``flock`` on ``path``, probed without waiting.

    A missing file, anything but a regular file, or a platform without
    ``flock``, reads as not held. The open never follows a link and never
    blocks (a FIFO planted under the name would otherwise hang the probe).
    """
    if fcntl is None:  # pragma: no cover
        return False
    try:
        fd = os.open(path, _PROBE_FLAGS)
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False  # a FIFO or device is nobody's lock or temp file
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our probe lock at once
    return False


def await_release(path: Path, timeout: float) -> None:
    """Return once no process holds ``path``'s exclusive ``flock``, or after ``timeout`` s.

    filelock retries a busy lock every 50 ms, so in a queue of N processes
    each hand-over waited up to 50 ms and a single-flight refresh through N
    waiters took about N x 25 ms. Here the kernel wakes the waiter instead: a
    shared ``flock`` is granted the moment the exclusive holder lets go, and
    is dropped at once, so the caller's next attempt finds the lock free (or
    taken by a faster contender, and waits again). A blocking ``flock`` has
    no timeout, so it runs in a daemon thread the caller waits for at most
    ``timeout``; one left behind ends when the holder releases.
    """
    if fcntl is None:  # pragma: no cover - no flock to wait on: retry after a pause
        time.sleep(min(timeout, 0.05))
        return
    try:
        fd = os.open(path, _WAIT_FLAGS)
    except OSError:
        # Gone or unreadable: the next attempt reports what is wrong; the pause
        # keeps a lock that stays busy for another reason from spinning a core.
        time.sleep(min(timeout, 0.01))
        return
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)  # a FIFO or device planted there: the next attempt reports it
        time.sleep(min(timeout, 0.05))
        return
    freed = threading.Event()
    refused: list[OSError] = []

    def wait() -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
        except OSError as exc:  # not lockable (no locks on this filesystem, say)
            refused.append(exc)
        finally:
            os.close(fd)  # drops the shared lock at once
            freed.set()

    threading.Thread(target=wait, name="sessionkeeper-lock-wait", daemon=True).start()
    if freed.wait(timeout) and refused:
        time.sleep(min(timeout, 0.01))  # the caller's next attempt says why; no spinning


class LockFiles:
    """Hands out one re-entrant, cross-process lock per name.

    ``FileLock`` with ``thread_local=True`` keeps one descriptor per thread, so
    threads of one process exclude each other too (``flock`` locks belong to
    the open file description), while a thread may re-enter its own lock.
    A name's ``FileLock`` lives only while some thread holds or awaits it, so
    locking every name of a large store once (prune, migrate) keeps nothing;
    a later one on the same lock file excludes exactly as the first did.
    """

    def __init__(self, path_of: Callable[[str], Path], default_timeout: float) -> None:
        self._path_of = path_of
        self._default_timeout = default_timeout
        self._locks: dict[str, tuple[FileLock, int]] = {}  # name -> (lock, holders and waiters)
        self._guard = threading.Lock()

    def _check_out(self, name: str) -> FileLock:
        with self._guard:
            lock, users = self._locks.get(name) or (None, 0)
            if lock is None:
                from filelock import FileLock

                lock = FileLock(
                    self._path_of(name), mode=0o600, thread_local=True, preserve_lock_file=True
                )
            self._locks[name] = (lock, users + 1)
            return lock

    def _check_in(self, name: str) -> None:
        with self._guard:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)

    @contextmanager
    def hold(self, name: str, timeout: float | None) -> Iterator[None]:
        """Hold the lock of ``name`` for the duration of the ``with`` block."""
        from filelock import Timeout as FileLockTimeout

        wait = self._default_timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        lock = self._check_out(name)
        try:
            while True:
                try:
                    lock.acquire(blocking=False)
                    break
                except FileLockTimeout as exc:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise LockTimeoutError(
                            f"lock of {name!r} not acquired within {wait:g} s; "
                            "another process holds it"
                        ) from exc
                    await_release(self._path_of(name), remaining)
                except OSError as exc:  # the lock file cannot be created: read-only, no room
                    raise store_io_error("lock", self._path_of(name), exc) from exc
            try:
                yield
            finally:
                lock.release()
        finally:
            self._check_in(name)


__all__ = ["DEFAULT_LOCK_TIMEOUT", "LockFiles", "await_release", "flock_is_held"]
