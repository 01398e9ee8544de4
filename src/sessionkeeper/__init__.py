"""sessionkeeper: authenticated API sessions kept alive across runs, processes and machines."""

from sessionkeeper.clock import Clock, ManualClock, SystemClock
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

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "DecryptionError",
    "DirectoryStore",
    "EventBus",
    "InvalidNameError",
    "LockLostError",
    "LockTimeoutError",
    "ManualClock",
    "MemoryStore",
    "MissingKeyError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "SystemClock",
    "ValueTooLargeError",
    "__version__",
]
