"""Stores: opaque bytes under validated names, atomic writes, per-name locks."""

from sessionkeeper.stores.base import MAX_VALUE_BYTES, Store, iter_items, validate_name
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.errors import (
    DecryptionError,
    InvalidNameError,
    LockLostError,
    LockTimeoutError,
    MissingKeyError,
    StoreError,
    StoreUnavailableError,
    ValueTooLargeError,
)
from sessionkeeper.stores.memory import MemoryStore

__all__ = [
    "MAX_VALUE_BYTES",
    "DecryptionError",
    "DirectoryStore",
    "InvalidNameError",
    "LockLostError",
    "LockTimeoutError",
    "MemoryStore",
    "MissingKeyError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "ValueTooLargeError",
    "iter_items",
    "validate_name",
]
