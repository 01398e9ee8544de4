"""sessionkeeper: authenticated API sessions kept alive across runs, processes and machines."""

from typing import TYPE_CHECKING, Any

from sessionkeeper.clock import Clock, ManualClock, SystemClock
from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.events import EventBus
from sessionkeeper.stores import (
    DecryptionError,
    DirectoryStore,
    InvalidNameError,
    LockLostError,
    LockTimeoutError,
    MemoryStore,
    MissingKeyError,
    Store,
    StoreError,
    StoreUnavailableError,
    ValueTooLargeError,
)

if TYPE_CHECKING:
    from sessionkeeper.stores import (
        EncryptedStore,
        KeyringStore,
        RedisStore,
        SqliteStore,
        StoreUrlError,
        generate_key,
        open_store,
    )

__version__ = "0.1.0"

_FROM_STORES = {
    "EncryptedStore",
    "KeyringStore",
    "RedisStore",
    "SessionkeeperError",
    "SqliteStore",
    "StoreUrlError",
    "generate_key",
    "open_store",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use (see sessionkeeper.stores): optional extras and rarely needed
    # modules stay out of every process's start-up.
    if name in _FROM_STORES:
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
    "SessionkeeperError",
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
