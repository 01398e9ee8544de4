"""Where ATProto sessions live when the caller names no place: the per-user data directory."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from sessionkeeper.stores.directory import DIR_MODE, DirectoryStore

#: The application directory under the platform's per-user data directory.
APP_NAME = "sessionkeeper"

#: The sub-directory of the application directory that holds ATProto sessions.
ATPROTO_SUBDIR = "atproto"


def default_session_dir() -> Path:
    """``platformdirs.user_data_dir("sessionkeeper")/atproto`` (not created here).

    On Linux that is ``$XDG_DATA_HOME/sessionkeeper/atproto`` (by default
    ``~/.local/share/sessionkeeper/atproto``), on macOS
    ``~/Library/Application Support/sessionkeeper/atproto``, on Windows
    ``%LOCALAPPDATA%\\sessionkeeper\\atproto``.
    """
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / ATPROTO_SUBDIR


def default_store() -> DirectoryStore:
    """A DirectoryStore on :func:`default_session_dir`, created owner-only (0700).

    The application directory itself is created 0700 too when it is new, so no
    other user can list which accounts have sessions here.
    """
    path = default_session_dir()
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    return DirectoryStore(path)
