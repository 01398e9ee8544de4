"""sessionkeeper: authenticated API sessions kept alive across runs, processes and machines."""

from typing import TYPE_CHECKING, Any

from sessionkeeper.clock import Clock, ManualClock, SystemClock
from sessionkeeper.events import EventBus
from sessionkeeper.stores import (
    DecryptionError,
    DirectoryStore,
    EncryptedStore,
    InvalidNameError,
    LockLostError,
    LockTimeoutError,
    MemoryStore,
    MissingKeyError,
    SqliteStore,
    Store,
    StoreError,
    StoreUnavailableError,
    StoreUrlError,
    ValueTooLargeError,
    generate_key,
    open_store,
)

if TYPE_CHECKING:
    from sessionkeeper.stores.keyring import KeyringStore
    from sessionkeeper.stores.redis import RedisStore

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Optional extras (redis, keyring) load on first use, so a plain install imports cleanly.
    if name in {"RedisStore", "KeyringStore"}:
        from sessionkeeper import stores

        return getattr(stores, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Clock",
    "DecryptionError",
    "DirectoryStore",
    "EncryptedStore",
    "EventBus",
    "InvalidNameError",
    "KeyringStore",
    "LockLostError",
    "LockTimeoutError",
    "ManualClock",
    "MemoryStore",
    "MissingKeyError",
    "RedisStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "StoreUrlError",
    "SystemClock",
    "ValueTooLargeError",
    "__version__",
    "generate_key",
    "open_store",
]
