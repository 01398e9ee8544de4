"""Where ATProto sessions live when the caller names no place: one choice for CLI and library.

The order is the same everywhere: an explicit store (``--store`` or ``store=``),
an explicit directory (``--session-dir`` or ``session_dir``), the variable
``SESSIONKEEPER_STORE``, and last the per-user data directory. Sessions that an
older CLI kept under the per-user *config* directory are moved into the
default one the first time it is used, so a login made then is not lost.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from sessionkeeper.stores.base import Store
from sessionkeeper.stores.directory import DIR_MODE, DirectoryStore
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

#: The application directory under the platform's per-user data directory.
APP_NAME = "sessionkeeper"

#: The sub-directory of the application directory that holds ATProto sessions.
ATPROTO_SUBDIR = "atproto"

#: The variable naming the store, read by the CLI and the library alike.
STORE_ENV = "SESSIONKEEPER_STORE"

#: Why a store was chosen, as `choose_store` reports it.
FROM_FLAG = "flag"
FROM_VARIABLE = "variable"
FROM_DEFAULT = "default"


def default_session_dir() -> Path:
    """``platformdirs.user_data_dir("sessionkeeper")/atproto`` (not created here).

    On Linux that is ``$XDG_DATA_HOME/sessionkeeper/atproto`` (by default
    ``~/.local/share/sessionkeeper/atproto``), on macOS
    ``~/Library/Application Support/sessionkeeper/atproto``, on Windows
    ``%LOCALAPPDATA%\\sessionkeeper\\atproto``.
    """
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / ATPROTO_SUBDIR


def old_cli_session_dir() -> Path:
    """Where the CLI kept sessions before it shared the library's default (the config dir)."""
    return platformdirs.user_config_path(APP_NAME, appauthor=False) / ATPROTO_SUBDIR


@dataclass(frozen=True)
class StoreChoice:
    """The store to use, as a URL, and why: ``flag``, ``variable`` or ``default``."""

    url: str
    source: str
    detail: str  #: the flag or variable that named it, or what the default is

    def open(self) -> Store:
        """Open the chosen store (the default directory is created 0700 and adopts old sessions)."""
        if self.source == FROM_DEFAULT:
            return _open_default()
        from sessionkeeper.stores.url import open_store

        return open_store(self.url)


def choose_store(
    store_url: str | None = None, session_dir: str | os.PathLike[str] | None = None
) -> StoreChoice:
    """Pick the store: ``store_url``, ``session_dir``, ``$SESSIONKEEPER_STORE``, the default."""
    if store_url:
        return StoreChoice(store_url, FROM_FLAG, "--store")
    if session_dir is not None:
        return StoreChoice(f"dir:{Path(session_dir)}", FROM_FLAG, "--session-dir")
    variable = os.environ.get(STORE_ENV)
    if variable:
        return StoreChoice(variable, FROM_VARIABLE, STORE_ENV)
    return StoreChoice(
        f"dir:{default_session_dir()}", FROM_DEFAULT, "the per-user data directory (platformdirs)"
    )


def default_store() -> Store:
    """``$SESSIONKEEPER_STORE``'s store if set, else a DirectoryStore on the default directory.

    The default directory and its parent are created owner-only (0700), so no
    other user can list which accounts have sessions here.
    """
    return choose_store().open()


def _open_default() -> DirectoryStore:
    path = default_session_dir()
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    store = DirectoryStore(path)
    old = old_cli_session_dir()
    if old.is_dir() and old.resolve() != path.resolve():
        move_sessions(DirectoryStore(old), store, old)
    return store


def move_sessions(source: DirectoryStore, target: Store, where: Path) -> list[str]:
    """Move every entry of ``source`` into ``target``; return the names moved.

    Each entry is copied under both stores' locks, read back, and only then
    removed from ``source``. A name ``target`` already holds with other bytes is
    left where it is (the newer login wins) and named in a warning.
    """
    moved: list[str] = []
    kept: list[str] = []
    for name in source.names():
        try:
            with source.lock(name), target.lock(name):
                data = source.get(name)
                if data is None:
                    continue
                existing = target.get(name)
                if existing is None:
                    target.put(name, data)
                    existing = target.get(name)
                if existing != data:
                    kept.append(name)
                    continue
                source.delete(name)
                moved.append(name)
        except (StoreError, OSError) as exc:
            logger.warning("could not move %s from %s: %s", name, where, exc)
    if moved:
        logger.warning(
            "moved %d session entr%s from %s (the old CLI location) to %s",
            len(moved),
            "y" if len(moved) == 1 else "ies",
            where,
            target,
        )
    if kept:
        logger.warning(
            "left %s in %s: %s already holds a different version", ", ".join(kept), where, target
        )
    return moved
