"""File-system pieces the file-backed stores share: private directories, safe reads, errors.

Every ``OSError`` of a store operation leaves the store as a `StoreIOError`
(or `StoreFullError`) naming the action and the path, so callers need to
catch one family. Opens never block: a FIFO, socket or device planted where a
session or temp file belongs is refused after ``fstat``, never read from.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from sessionkeeper.stores.base import MAX_VALUE_BYTES, check_value_size
from sessionkeeper.stores.errors import (
    StoreError,
    StoreFullError,
    StoreIOError,
    UnsafeStoreError,
)

DIR_MODE = 0o700
FILE_MODE = 0o600
#: Reads never follow a link and never wait for a writer (a FIFO would block forever).
READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)

logger = logging.getLogger(__name__)

_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_WHY = {
    errno.ENOSPC: "the disk is full",
    getattr(errno, "EDQUOT", -1): "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.EIO: "an I/O error",
}


def store_io_error(action: str, path: object, exc: OSError) -> StoreIOError:
    """The store error for an ``OSError`` met while doing ``action`` on ``path``."""
    why = _WHY.get(exc.errno or 0) or exc.strerror or str(exc)
    kind = StoreFullError if exc.errno in _FULL else StoreIOError
    return kind(exc.errno, f"cannot {action} {path}: {why} ({exc.strerror or exc})")


@contextlib.contextmanager
def io_errors(action: str, path: object) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into a `StoreIOError`."""
    try:
        yield
    except StoreError:
        raise
    except OSError as exc:
        raise store_io_error(action, path, exc) from exc


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


def not_regular_error(path: object, mode: int) -> StoreIOError:
    """The error for something that is not a regular file where a file belongs."""
    message = f"{path} is {_kind_of(mode)}, not a regular file; refusing it"
    return StoreIOError(errno.EINVAL, message)


def read_regular_file(
    name: str, dir_fd: int | None, shown: Path, *, tighten: bool = True
) -> bytes | None:
    """Read a regular file through a no-follow, non-blocking descriptor; ``None`` if absent.

    ``name`` is relative to ``dir_fd`` when given, else a path. The size cap of
    `MAX_VALUE_BYTES` applies before anything is read; a loose mode is
    tightened to 0600 when ``tighten`` is set. ``shown`` is the path for messages.
    """
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreIOError(exc.errno, f"{shown} is a symlink; refusing it") from exc
        raise store_io_error("read", shown, exc) from exc
    try:
        with io_errors("read", shown):
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise not_regular_error(shown, info.st_mode)
            if tighten and info.st_mode & 0o077:
                with contextlib.suppress(PermissionError):
                    os.fchmod(fd, FILE_MODE)
            check_value_size(shown.name, info.st_size)
            data = os.read(fd, info.st_size + 1)
            if len(data) > info.st_size:  # grew since fstat: read on, still capped
                data += os.read(fd, MAX_VALUE_BYTES + 1 - len(data))
            check_value_size(shown.name, len(data))
            return data
    finally:
        os.close(fd)


def check_owner(path: Path, what: str) -> os.stat_result:
    """Return ``path``'s lstat; raise `UnsafeStoreError` if another user owns it."""
    info = path.lstat()
    if hasattr(os, "geteuid") and info.st_uid != os.geteuid():
        raise UnsafeStoreError(
            f"{what} {path} belongs to another user (uid {info.st_uid}, you are uid "
            f"{os.geteuid()}): they could read or replace your sessions; "
            "use a directory of your own"
        )
    return info


def create_private_dirs(path: Path) -> None:
    """Create the missing directories of ``path`` (parents first), each 0700 whatever the umask.

    ``Path.mkdir(parents=True)`` would give the parents the umask's mode
    (0777 under ``umask 000``); existing directories are left as they are.
    """
    missing: list[Path] = []
    current = path
    while not os.path.lexists(current) and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it meanwhile
        os.chmod(directory, DIR_MODE)  # a umask may have taken owner bits away too


def make_private_dir(path: Path, what: str = "store directory") -> None:
    """Create ``path`` and its missing parents as 0700 (whatever the umask); check the owner.

    An existing directory must belong to this user; a looser mode than 0700 is
    tightened. Anything but a directory at ``path`` is refused.
    """
    with io_errors("create", path):
        create_private_dirs(path)
        info = check_owner(path, what)
        if stat.S_ISLNK(info.st_mode):
            info = path.stat()  # a link to a directory is how many homes are set up
            check_owner(path.resolve(), what)
        if not stat.S_ISDIR(info.st_mode):
            raise StoreIOError(errno.ENOTDIR, f"{what} {path} is not a directory")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            logger.info("tightening permissions of %s from %o to 700", path, mode)
            os.chmod(path, DIR_MODE)


__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "READ_FLAGS",
    "check_owner",
    "create_private_dirs",
    "io_errors",
    "make_private_dir",
    "not_regular_error",
    "read_regular_file",
    "store_io_error",
]
