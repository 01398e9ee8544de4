"""EncryptedStore: AES-256-GCM around any store, the name bound as associated data."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Iterator
from contextlib import AbstractContextManager

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sessionkeeper.stores.base import Store, check_value_type, iter_items, validate_name
from sessionkeeper.stores.errors import DecryptionError, MissingKeyError

KEY_ENV = "SESSIONKEEPER_KEY"
#: Format marker and version: lets a reader tell our data from anything else.
MAGIC = b"SKE1"
NONCE_BYTES = 12


def generate_key() -> str:
    """Return a new random 256-bit key, URL-safe base64 encoded (for ``SESSIONKEEPER_KEY``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def parse_key(key: str | bytes) -> bytes:
    """Accept 32 raw bytes, 64 hex digits or URL-safe base64 of 32 bytes."""
    if isinstance(key, bytes) and len(key) == 32:
        return key
    text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
    text = text.strip()
    candidates: list[bytes] = []
    with_padding = text + "=" * (-len(text) % 4)
    for decode in (bytes.fromhex, base64.urlsafe_b64decode, base64.b64decode):
        try:
            candidates.append(decode(text if decode is bytes.fromhex else with_padding))
        except (ValueError, binascii.Error):
            continue
    for raw in candidates:
        if len(raw) == 32:
            return raw
    raise MissingKeyError(
        "encryption key must be 32 bytes, given as 64 hex digits or URL-safe base64 "
        "(create one with: sessionkeeper store keygen)"
    )


class EncryptedStore:
    """Encrypts every value of ``inner`` with AES-GCM and a fresh 96-bit nonce per write.

    The value's name is the associated data, so a ciphertext copied under another
    name fails to open. A wrong key or changed bytes raise [`DecryptionError`][],
    never garbage. Names, listings and locks are the inner store's.
    """

    def __init__(self, inner: Store, key: str | bytes | None = None) -> None:
        if key is None:
            key = os.environ.get(KEY_ENV)
            if not key:
                raise MissingKeyError(
                    f"EncryptedStore needs a key: pass key= or set {KEY_ENV} "
                    "(create one with: sessionkeeper store keygen)"
                )
        self.inner = inner
        self._aead = AESGCM(parse_key(key))

    def __repr__(self) -> str:
        return f"EncryptedStore({self.inner!r})"

    def _seal(self, name: str, data: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, data, name.encode("utf-8"))

    def _open(self, name: str, blob: bytes) -> bytes:
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + NONCE_BYTES + 16:
            raise DecryptionError(f"value of {name!r} is not encrypted by sessionkeeper")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], name.encode())
        except InvalidTag:
            raise DecryptionError(
                f"value of {name!r} cannot be decrypted: wrong key or tampered data"
            ) from None

    def get(self, name: str) -> bytes | None:
        """Return the decrypted value or ``None``; raise [`DecryptionError`][] if it fails."""
        blob = self.inner.get(validate_name(name))
        return None if blob is None else self._open(name, blob)

    def put(self, name: str, data: bytes) -> None:
        """Encrypt ``data`` and store it in the inner store."""
        self.inner.put(validate_name(name), self._seal(name, check_value_type(data)))

    def delete(self, name: str) -> bool:
        """Delete from the inner store."""
        return self.inner.delete(name)

    def names(self) -> list[str]:
        """The inner store's names."""
        return self.inner.names()

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield decrypted ``(name, value)`` pairs; raises on a value that won't open."""
        for name, blob in iter_items(self.inner):
            yield name, self._open(name, blob)

    def lock(self, name: str, timeout: float | None = None) -> AbstractContextManager[None]:
        """The inner store's lock."""
        return self.inner.lock(name, timeout)
