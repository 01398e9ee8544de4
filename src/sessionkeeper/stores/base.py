"""The Store protocol: opaque bytes under validated names, with per-name locks.

A store knows nothing of sessions. Protocol packages own their formats and
map their keys to names; the core owns locking order and refresh rules.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from sessionkeeper.stores.errors import InvalidNameError, StoreError, ValueTooLargeError

logger = logging.getLogger(__name__)

#: Largest value a store accepts or returns: sessions are a few KiB, so
#: anything this big is foreign data, never something to load into memory.
MAX_VALUE_BYTES = 1024 * 1024

#: Longest name in UTF-8 bytes; leaves room under the 255-byte file name limit
#: for the temp and lock suffixes a directory store adds.
MAX_NAME_BYTES = 200

_UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\x7f/\\]")

#: How long ``lock(name)`` waits when no timeout is given.
DEFAULT_LOCK_TIMEOUT = 60.0


@runtime_checkable
class Store(Protocol):
    """Bytes-level storage of named values with cross-process per-name locks."""

    def get(self, name: str) -> bytes | None:
        """Return the value stored under ``name``, or ``None`` when absent."""

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` atomically and durably."""

    def delete(self, name: str) -> bool:
        """Remove ``name``; return whether it existed."""

    def names(self) -> list[str]:
        """Return every stored name, sorted."""

    def lock(self, name: str, timeout: float | None = None) -> AbstractContextManager[None]:
        """Hold the cross-process lock of ``name`` (re-entrant within a thread)."""


def validate_name(name: object) -> str:
    """Return ``name`` if it is a safe store name, else raise [`InvalidNameError`][].

    A safe name cannot escape a directory or collide with a store's own
    hidden temp and lock files: no path separators, no NUL or other control
    characters, not ``.``/``..``, no leading dot, at most 200 UTF-8 bytes.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"store name must be a string, not {type(name).__name__}")
    if not name:
        raise InvalidNameError("store name must not be empty")
    if _UNSAFE_CHARACTER.search(name):
        if "/" in name or "\\" in name:
            raise InvalidNameError(f"store name {name[:40]!r} must not contain a path separator")
        raise InvalidNameError(f"store name {name[:40]!r} must not contain control characters")
    if name.startswith("."):
        raise InvalidNameError(f"store name {name[:40]!r} must not start with a dot")
    if name.isascii() and len(name) <= MAX_NAME_BYTES:  # the common case needs no encoding
        return name
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidNameError(f"store name {name[:40]!r} is not valid unicode") from exc
    if len(encoded) > MAX_NAME_BYTES:
        raise InvalidNameError(
            f"store name {name[:40]!r}... is {len(encoded)} bytes; the limit is {MAX_NAME_BYTES}"
        )
    return name


def check_value_size(name: str, size: int) -> None:
    """Raise `ValueTooLargeError` when a value exceeds `MAX_VALUE_BYTES`."""
    if size > MAX_VALUE_BYTES:
        raise ValueTooLargeError(
            f"value of {name!r} is {size} bytes; the limit is {MAX_VALUE_BYTES} "
            "(session data is a few KiB, so this is not a session)"
        )


def check_value_type(data: object) -> bytes:
    """Return ``data`` if it is bytes, else raise ``TypeError`` naming the type."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"store values are bytes, not {type(data).__name__}")
    return bytes(data)


def checked_value(name: str, data: object) -> bytes:
    """What every ``put`` checks first: a valid name, bytes, and no more than the cap."""
    validate_name(name)
    value = check_value_type(data)
    check_value_size(name, len(value))
    return value


def readable_items(
    store: Store, wanted: Callable[[str], bool], *, what: str = "entry"
) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, value)`` for the ``wanted`` names that can be read; warn about the rest.

    One entry that cannot be read (oversized, undecryptable, not a regular
    file) ends a store's bulk read; the remaining names are then read one by
    one, so a listing skips only the bad entries, each with a warning naming it.
    """
    seen: set[str] = set()
    try:
        for name, data in iter_items(store):
            seen.add(name)
            if wanted(name):
                yield name, data
        return
    except (StoreError, OSError) as exc:
        logger.warning("cannot read every %s at once (%s); reading them one by one", what, exc)
    for name in store.names():
        if name in seen or not wanted(name):
            continue
        try:
            value = store.get(name)
        except (StoreError, OSError) as exc:
            logger.warning("skipping %s %s: %s", what, name, exc)
            continue
        if value is not None:
            yield name, value


def iter_items(store: Store) -> Iterator[tuple[str, bytes]]:
    """Yield ``(name, value)`` for every stored value, using a bulk read when offered."""
    bulk = getattr(store, "items", None)
    if callable(bulk):
        yield from bulk()
        return
    for name in store.names():
        data = store.get(name)
        if data is not None:
            yield name, data
