"""sessionkeeper: authenticated API sessions kept alive across runs, processes and machines."""

from typing import TYPE_CHECKING

from sessionkeeper._lazy import lazy_names

if TYPE_CHECKING:
    from sessionkeeper.clock import Clock, ManualClock, SystemClock
    from sessionkeeper.errors import SessionkeeperError
    from sessionkeeper.events import EventBus, SessionEvent
    from sessionkeeper.stores import (
        DecryptionError,
        DirectoryStore,
        EncryptedStore,
        InvalidNameError,
        KeyringStore,
        LockLostError,
        LockTimeoutError,
        MemoryStore,
        MissingKeyError,
        RedisStore,
        SqliteStore,
        Store,
        StoreError,
        StoreUnavailableError,
        StoreUrlError,
        ValueTooLargeError,
        generate_key,
        open_store,
    )

__version__ = "0.1.0"

_MODULE_OF = {
    "Clock": "sessionkeeper.clock",
    "ManualClock": "sessionkeeper.clock",
    "SystemClock": "sessionkeeper.clock",
    "EventBus": "sessionkeeper.events",
    "SessionEvent": "sessionkeeper.events",
    "SessionkeeperError": "sessionkeeper.errors",
}

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
    "SessionEvent",
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

#: Every name loads on first use: a process that needs only a submodule (the ``hac``
#: command's help, a config edit) does not pay for the stores and locks.
__getattr__ = lazy_names(
    __name__,
    globals(),
    {
        name: _MODULE_OF.get(name, "sessionkeeper.stores")
        for name in __all__
        if name != "__version__"
    },
)
