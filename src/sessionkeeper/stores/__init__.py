"""Stores: opaque bytes under validated names, atomic writes, per-name locks."""

from typing import TYPE_CHECKING, Any

from sessionkeeper.stores.base import MAX_VALUE_BYTES, Store, iter_items, validate_name
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.encrypted import EncryptedStore, generate_key
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
from sessionkeeper.stores.sqlite import SqliteStore
from sessionkeeper.stores.url import STORE_ENV, StoreUrlError, open_store, resolve_store

if TYPE_CHECKING:
    from sessionkeeper.stores.keyring import KeyringStore
    from sessionkeeper.stores.redis import RedisStore


def __getattr__(name: str) -> Any:
    # The Redis and keyring stores need optional extras; import them on first use only.
    if name == "RedisStore":
        from sessionkeeper.stores.redis import RedisStore

        return RedisStore
    if name == "KeyringStore":
        from sessionkeeper.stores.keyring import KeyringStore

        return KeyringStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MAX_VALUE_BYTES",
    "STORE_ENV",
    "DecryptionError",
    "DirectoryStore",
    "EncryptedStore",
    "InvalidNameError",
    "KeyringStore",
    "LockLostError",
    "LockTimeoutError",
    "MemoryStore",
    "MissingKeyError",
    "RedisStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "StoreUrlError",
    "ValueTooLargeError",
    "generate_key",
    "iter_items",
    "open_store",
    "resolve_store",
    "validate_name",
]
