"""Stores: opaque bytes under validated names, atomic writes, per-name locks."""

from typing import TYPE_CHECKING

from sessionkeeper._lazy import lazy_names
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

if TYPE_CHECKING:
    from sessionkeeper.stores.encrypted import EncryptedStore, generate_key
    from sessionkeeper.stores.keyring import KeyringStore
    from sessionkeeper.stores.redis.store import RedisStore
    from sessionkeeper.stores.sqlite import SqliteStore
    from sessionkeeper.stores.url import STORE_ENV, StoreUrlError, open_store, resolve_store

#: Names loaded on first use: the Redis and keyring stores need optional extras, and
#: cryptography and sqlite3 would cost every process start ~20 ms it rarely needs.
_LAZY = {
    "EncryptedStore": "sessionkeeper.stores.encrypted",
    "generate_key": "sessionkeeper.stores.encrypted",
    "KeyringStore": "sessionkeeper.stores.keyring",
    "RedisStore": "sessionkeeper.stores.redis.store",
    "SqliteStore": "sessionkeeper.stores.sqlite",
    "STORE_ENV": "sessionkeeper.stores.url",
    "StoreUrlError": "sessionkeeper.stores.url",
    "open_store": "sessionkeeper.stores.url",
    "resolve_store": "sessionkeeper.stores.url",
}


__getattr__ = lazy_names(__name__, globals(), _LAZY)


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
