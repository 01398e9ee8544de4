"""DirectoryStore: one file per name in a private directory, written atomically."""

from __future__ import annotations

import contextlib
import errno
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
    MAX_VALUE_BYTES,
    check_value_size,
    check_value_type,
    validate_name,
)
from sessionkeeper.stores.locking import LockFiles, flock_is_held

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
TEMP_SUFFIX = ".tmp"
LOCK_SUFFIX = ".lock"
#: A temp file is only reclaimed when no writer holds it and it is this old,
#: so a writer between create and flock is never robbed of its file.
STALE_TEMP_SECONDS = 5.0
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirectoryStore:
    """Files ``PATH/NAME`` (0600) in a directory (0700); the default store.

    Writes go to a hidden temp file in the same directory, are fsynced, then
    renamed over the target, and the directory is fsynced: a reader or a
    ``kill -9`` sees the old value or the new one, never a mix. Hidden files
    (temp and lock files) are not names, so listings ignore them.
    """

    def __init__(self, path: str | os.PathLike[str], *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.path = Path(path).expanduser()
        self.path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            logger.info("tightening permissions of %s from %o to 700", self.path, mode)
            self.path.chmod(DIR_MODE)
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
        target = name if dir_fd is not None else str(self.path / name)
        try:
            fd = os.open(target, _READ_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OSError(exc.errno, f"{self.path / name} is a symlink; refusing it") from exc
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise IsADirectoryError(f"{self.path / name} is not a regular file")
            if info.st_mode & 0o077:
                with contextlib.suppress(PermissionError):
                    os.fchmod(fd, FILE_MODE)
            check_value_size(name, info.st_size)
            data = os.read(fd, info.st_size + 1)
            if len(data) > info.st_size:  # grew since fstat: read on, still capped
                data += os.read(fd, MAX_VALUE_BYTES + 1 - len(data))
            check_value_size(name, len(data))
            return data
        finally:
            os.close(fd)

    def put(self, name: str, data: bytes) -> None:
        """Write atomically: temp file, fsync, rename, fsync the directory."""
        path = self._file(name)
        data = check_value_type(data)
        check_value_size(name, len(data))
        if not self._swept:
            self._swept = True
            self.sweep_stale_temp_files()
        temp = self.path / f".{name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            if fcntl is not None:
                # Held until close: tells a sweeper this temp file is still being written.
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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
            os.close(fd)
        _fsync_dir(self.path)

    def delete(self, name: str) -> bool:
        """Remove the file; return whether it existed."""
        try:
            os.unlink(self._file(name))
        except FileNotFoundError:
            return False
        _fsync_dir(self.path)
        return True

    def names(self) -> list[str]:
        """List the names of regular, non-hidden files."""
        found = []
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                found.append(entry.name)
        found.sort()
        return found

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, bytes)`` for every file, skipping ones removed meanwhile."""
        # Names come from the directory itself, so they need no validation, and
        # opening relative to one directory descriptor saves a path walk per file.
        dir_fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            for name in self.names():
                try:
                    data = self._read(name, dir_fd)
                except OSError:
                    continue
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
        with os.scandir(self.path) as entries:
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
        return not temp.exists() or flock_is_held(temp)
