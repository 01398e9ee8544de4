"""Errors raised by stores; each names the value or the setting at fault."""

from __future__ import annotations

from sessionkeeper.errors import SessionkeeperError


class StoreError(SessionkeeperError):
    """Base class of every store error."""


class InvalidNameError(StoreError, ValueError):
    """A store name that could escape the store or clash with its own files."""


class ValueTooLargeError(StoreError):
    """A value larger than any session could be."""


class LockTimeoutError(StoreError, TimeoutError):
    """The lock of a name was not acquired in time."""


class DecryptionError(StoreError):
    """Encrypted data that the key cannot open: wrong key or tampered bytes."""


class MissingKeyError(StoreError):
    """An encrypted store without a key."""


class StoreUnavailableError(StoreError):
    """The store's backend (a server, a keychain) cannot be reached."""


class LockLostError(StoreError):
    """A write under a lock whose lease had already expired (fenced off)."""


class StoreIOError(StoreError, OSError):
    """The file system refused a store's read or write (permissions, read-only, I/O error).

    Also an ``OSError`` carrying the original ``errno``, so code that catches
    ``OSError`` keeps working; refresh flows catch it as a `StoreError`
    and keep the rotated tokens in memory.
    """


class StoreFullError(StoreIOError):
    """No room to write: the disk is full or the user's quota is used up."""


class UnsafeStoreError(StoreError):
    """A store location that another user controls: its sessions would not be private."""


class StoreUrlError(StoreError, ValueError):
    """A store URL that cannot be understood."""
