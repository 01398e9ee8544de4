"""Errors raised by stores; each names the value or the setting at fault."""

from __future__ import annotations


class StoreError(Exception):
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


class StoreUrlError(StoreError, ValueError):
    """A store URL that cannot be understood."""
