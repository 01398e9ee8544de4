"""DirectoryStore: one file per name in a private directory, written atomically."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from sessionkeeper.stores.base import (
    DEFAULT_LOCK_TIMEOUT,
    checked_value,
    validate_name,
)
from sessionkeeper.stores.files import (
    DIR_MODE,
    FILE_MODE,
    io_errors,
    make_private_dir,
    read_regular_file,
)
from sessionkeeper.stores.locking import LockFiles, flock_is_held

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

TEMP_SUFFIX = ".tmp"
LOCK_SUFFIX = ".lock"
#: A temp file is only reclaimed when no writer holds it and it is this old,
#: so a writer between create and flock is never robbed of its file.
STALE_TEMP_SECONDS = 5.0
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
#: Opening a name's own temp file: never through a link, never waiting on a FIFO.
_CLAIM_FLAGS = (
    os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, _DIR_FLAGS)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryStore:
    """Files ``PATH/NAME`` (0600) in a directory (0700) of this user; the default store.

    Writes go to the name's hidden temp file ``.NAME.tmp`` in the same
    directory, are fsynced, then renamed over the target, and the directory is
    fsynced: a reader or a ``kill -9`` sees the old value or the new one, never
    a mix. A temp file that a killed writer left is taken over (emptied and
    reused) by the next write of the same name; while another writer holds it,
    a write uses a unique ``.NAME.<random>.tmp`` instead. Hidden files (temp
    and lock files) are not names, so listings ignore them. Every I/O failure
    is a `StoreIOError`.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.path = Path(path).expanduser()
        make_private_dir(self.path)
        self._locks = LockFiles(self._lock_path, lock_timeout)
        self._swept = False

    def __repr__(self) -> str:
        return f"DirectoryStore({str(self.path)!r})"

    def _file(self, name: str) -> Path:
        return self.path / validate_name(name)

    def _lock_path(self, name: str) -> Path:
        return self.path / f".{name}{LOCK_SUFFIX}"

    def get(self, name: str) -> bytes | None:
        """Return the file's bytes, tightening a loose mode; ``None`` if absent."""
        return self._read(validate_name(name), None)

    def _read(self, name: str, dir_fd: int | None) -> bytes | None:
        """Read one file through a no-follow descriptor (relative to ``dir_fd`` when given)."""
        shown = self.path / name
        return read_regular_file(name if dir_fd is not None else str(shown), dir_fd, shown)

    def put(self, name: str, data: bytes) -> None:
        """Write atomically: temp file, fsync, rename, fsync the directory."""
        path = self._file(name)
        data = checked_value(name, data)
        with io_errors("write", path):
            if not self._swept:
                self._swept = True
                self.sweep_stale_temp_files()
            fd, temp = self._open_temp(name)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
                raise
            finally:
                os.close(fd)  # drops the flock that told sweepers the file was in use
            _fsync_dir(self.path)

    def _open_temp(self, name: str) -> tuple[int, Path]:
        """A locked, empty temp file for ``name``: its own one if free, else a unique one."""
        own = self.path / f".{name}{TEMP_SUFFIX}"
        fd = self._claim(own)
        if fd is not None:
            return fd, own
        temp = self.path / f".{name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until close
        return fd, temp

    @staticmethod
    def _claim(temp: Path) -> int | None:
        """Open and lock ``temp`` (creating it, or taking over a dead writer's); ``None`` if busy.

        After the lock the path must still name the opened file: a writer that
        renamed it, or a sweeper that removed it, after our open would leave us
        holding a file that is no longer the temp file.
        """
        try:
            fd = os.open(temp, _CLAIM_FLAGS, FILE_MODE)
        except OSError:
            return None  # a symlink or FIFO sits there, or no room: a unique name decides
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                logger.warning("%s is not a regular file; writing beside it", temp)
                os.close(fd)
                return None
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            now = os.stat(temp, follow_symlinks=False)
            if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
                os.close(fd)
                return None
            if info.st_size:
                logger.info("reusing %s, left by a writer that died", temp.name)
                os.ftruncate(fd, 0)
            if stat.S_IMODE(info.st_mode) != FILE_MODE:
                os.fchmod(fd, FILE_MODE)
        except OSError:  # BlockingIOError: a live writer holds it; FileNotFoundError: swept
            os.close(fd)
            return None
        return fd

    def delete(self, name: str) -> bool:
        """Remove the file; return whether it existed."""
        path = self._file(name)
        with io_errors("delete", path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            _fsync_dir(self.path)
        return True

    def names(self) -> list[str]:
        """List the names of regular, non-hidden files."""
        found = []
        with io_errors("list", self.path), os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                found.append(entry.name)
        found.sort()
        return found

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for every file, skipping ones removed meanwhile.

        A file that cannot be read (too large, not a regular file any more,
        unreadable) raises its [`StoreError`][] when reached.
        """
        # Names come from the directory itself, so they need no validation, and
        # opening relative to one directory descriptor saves a path walk per file.
        with io_errors("list", self.path):
            dir_fd = os.open(self.path, _DIR_FLAGS)
        try:
            for name in self.names():
                data = self._read(name, dir_fd)
                if data is not None:
                    yield name, data
        finally:
            os.close(dir_fd)

    def lock(self, name: str, timeout: float | None = None) -> AbstractContextManager[None]:
        """Lock ``.NAME.lock`` with ``flock``: cross-process, freed when a holder dies."""
        validate_name(name)
        return self._locks.hold(name, timeout)

    def stale_temp_files(self) -> list[Path]:
        """Temp files left by writers that died before renaming them."""
        stale = []
        now = time.time()
        with io_errors("list", self.path), os.scandir(self.path) as entries:
            for entry in entries:
                if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
                    continue
                try:
                    if now - entry.stat(follow_symlinks=False).st_mtime < STALE_TEMP_SECONDS:
                        continue
                except FileNotFoundError:
                    continue
                if not self.temp_file_in_use(Path(entry.path)):
                    stale.append(Path(entry.path))
        return stale

    def sweep_stale_temp_files(self) -> int:
        """Remove temp files of dead writers; return how many were removed."""
        removed = 0
        for temp in self.stale_temp_files():
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
                removed += 1
                logger.info("removed stale temp file %s", temp.name)
        return removed

    @staticmethod
    def temp_file_in_use(temp: Path) -> bool:
        """Whether a live writer still holds ``temp`` (or it is already gone)."""
        return not os.path.lexists(temp) or flock_is_held(temp)


__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "LOCK_SUFFIX",
    "STALE_TEMP_SECONDS",
    "TEMP_SUFFIX",
    "DirectoryStore",
]
