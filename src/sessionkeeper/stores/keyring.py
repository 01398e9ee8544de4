"""KeyringStore: values in the OS keychain (macOS Keychain, Windows Credential Manager,
Secret Service, ...) through the ``keyring`` package, with any of its backends.

Layout under one keyring *service*:

- username ``NAME``: the value of ``NAME``, as ``b64:<base64>`` when it fits one
  entry, else a manifest ``chunks:<generation>:<count>:<sha256>`` whose parts live
  under ``.chunk:<generation>:<i>:NAME``;
- username ``.index``: the list of names (keyrings have no listing API), itself
  stored the same way, so it may grow past one entry.

Why chunks of 1024 characters: Windows Credential Manager refuses secrets over
2560 bytes (UTF-16, so 1280 characters); 1024 leaves margin on every platform.
Why generations: a chunked write stores its parts under a fresh generation
first and switches the manifest last (one ``set_password``), so a reader or a
crash sees the old value or the new one, never parts of both; old parts are
removed afterwards. Names cannot start with a dot, so ``.index`` and
``.chunk:...`` never collide with a value.

Locks are file locks in the user cache dir (keyrings have none); they exclude
processes of one machine, which is what a keychain is shared by.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import platformdirs

try:
    import keyring
    import keyring.backend
    import keyring.backends.fail
    import keyring.backends.null
    import keyring.errors
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "KeyringStore needs the keyring package: pip install 'sessionkeeper[keyring]'"
    ) from exc

from sessionkeeper.stores.base import (
    DEFAULT_LOCK_TIMEOUT,
    MAX_VALUE_BYTES,
    check_value_size,
    checked_value,
    validate_name,
)
from sessionkeeper.stores.errors import StoreError, StoreUnavailableError
from sessionkeeper.stores.files import make_private_dir
from sessionkeeper.stores.locking import LockFiles

logger = logging.getLogger(__name__)

#: Characters per keyring entry; below Windows Credential Manager's 1280-character cap.
CHUNK_CHARS = 1024
INDEX_USER = ".index"
PROBE_USER = ".probe"
_SINGLE = "b64:"
_CHUNKED = "chunks:"
_FIX = (
    "install a keyring backend for this system (e.g. the Secret Service on Linux, "
    "or keyrings.alt), pick one with PYTHON_KEYRING_BACKEND, or use another store "
    "(dir:, sqlite:, redis://)"
)


def backend_label(backend: object) -> str:
    """Return ``module.Class`` of a keyring backend, for messages."""
    kind = type(backend)
    return f"{kind.__module__}.{kind.__qualname__}"


def _lock_dir_for(service: str) -> Path:
    digest = hashlib.sha256(service.encode("utf-8")).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_.-]", "_", service)[:40].lstrip(".") or "service"
    return (
        Path(platformdirs.user_cache_dir("sessionkeeper"))
        / "keyring-locks"
        / (f"{readable}-{digest}")
    )


class KeyringStore:
    """A [`Store`][] in the OS keyring under ``service``.

    ``backend``: a ``keyring.backend.KeyringBackend`` to use instead of the
    one keyring picks. ``probe_timeout``: seconds the first read of the
    backend may take before the store declares it unusable (some backends
    hang waiting for a locked keychain or a missing D-Bus).
    """

    def __init__(
        self,
        service: str,
        *,
        backend: keyring.backend.KeyringBackend | None = None,
        probe_timeout: float = 2.0,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        lock_dir: str | Path | None = None,
    ) -> None:
        if not service:
            raise ValueError("keyring service name must not be empty")
        self.service = service
        self.backend: keyring.backend.KeyringBackend = (
            backend if backend is not None else keyring.get_keyring()
        )
        self._label = backend_label(self.backend)
        self._probe(probe_timeout)
        self.lock_dir = Path(lock_dir) if lock_dir is not None else _lock_dir_for(service)
        make_private_dir(self.lock_dir, "keyring lock directory")
        self._locks = LockFiles(self._lock_path, lock_timeout)

    def __repr__(self) -> str:
        return f"KeyringStore({self.service!r}, backend={self._label})"

    # -- backend checks -------------------------------------------------------
    def _probe(self, timeout: float) -> None:
        """Fail fast and clearly when the backend cannot hold secrets."""
        if isinstance(self.backend, keyring.backends.fail.Keyring):
            raise StoreUnavailableError(
                f"no keyring backend is available (keyring chose {self._label}): {_FIX}"
            )
        if isinstance(self.backend, keyring.backends.null.Keyring):
            raise StoreUnavailableError(f"the keyring backend {self._label} stores nothing: {_FIX}")
        outcome: list[BaseException | None] = []

        def read() -> None:
            try:
                self.backend.get_password(self.service, PROBE_USER)
                outcome.append(None)
            except BaseException as exc:  # reported to the caller below
                outcome.append(exc)

        # A daemon thread: a backend that hangs forever must not keep the process alive.
        thread = threading.Thread(target=read, name="keyring-probe", daemon=True)
        thread.start()
        thread.join(timeout)
        if not outcome:
            raise StoreUnavailableError(
                f"the keyring backend {self._label} did not answer within {timeout:g} s "
                f"(a locked keychain or no session bus?): {_FIX}"
            )
        error = outcome[0]
        if error is not None:
            raise StoreUnavailableError(
                f"the keyring backend {self._label} failed: {type(error).__name__}: "
                f"{str(error)[:200]}; {_FIX}"
            ) from error

    def _unavailable(self, action: str, exc: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"the keyring backend {self._label} failed to {action} in service "
            f"{self.service!r}: {type(exc).__name__}: {str(exc)[:200]}"
        )

    # -- raw entries ----------------------------------------------------------
    def _read(self, user: str) -> str | None:
        try:
            value = self.backend.get_password(self.service, user)
        except keyring.errors.KeyringError as exc:
            raise self._unavailable("read", exc) from exc
        return None if value is None else str(value)

    def _write(self, user: str, value: str) -> None:
        try:
            self.backend.set_password(self.service, user, value)
        except keyring.errors.KeyringError as exc:
            raise self._unavailable("write", exc) from exc

    def _erase(self, user: str) -> bool:
        try:
            self.backend.delete_password(self.service, user)
        except keyring.errors.PasswordDeleteError:
            return False
        except keyring.errors.KeyringError as exc:
            raise self._unavailable("delete", exc) from exc
        return True

    # -- blobs: one logical value, one entry or a manifest and chunks ---------
    @staticmethod
    def _chunk_user(generation: str, index: int, user: str) -> str:
        return f".chunk:{generation}:{index}:{user}"

    def _load_blob(self, user: str) -> bytes | None:
        # Read without the lock first: almost always nothing changes meanwhile. If a
        # writer removed the chunks of the manifest we read, read again under the
        # lock every writer of this entry holds, so a busy writer cannot starve us;
        # what is still incomplete then is damaged.
        for locked in (False, True):
            with self._locks.hold(user, None) if locked else contextlib.nullcontext():
                head = self._read(user)
                if head is None:
                    return None
                data = self._decode(user, head)
            if data is not None:
                return data
        raise StoreError(
            f"keyring entry {user!r} in service {self.service!r} is incomplete or corrupt; "
            "write it again or delete it"
        )

    def _decode(self, user: str, head: str) -> bytes | None:
        """Decode an entry; ``None`` when its chunks changed underneath us."""
        if head.startswith(_SINGLE):
            return self._b64(user, head[len(_SINGLE) :])
        if not head.startswith(_CHUNKED):
            raise StoreError(
                f"keyring entry {user!r} in service {self.service!r} was not written by "
                "sessionkeeper (unknown format)"
            )
        try:
            generation, count_text, digest = head[len(_CHUNKED) :].split(":")
            count = int(count_text)
        except ValueError as exc:
            raise StoreError(f"keyring entry {user!r} has a malformed manifest") from exc
        if count * CHUNK_CHARS > (MAX_VALUE_BYTES * 4) // 3 + 4 + CHUNK_CHARS:
            raise StoreError(f"keyring entry {user!r} claims {count} chunks; too large")
        parts: list[str] = []
        for i in range(count):
            part = self._read(self._chunk_user(generation, i, user))
            if part is None:
                return None
            parts.append(part)
        text = "".join(parts)
        if hashlib.sha256(text.encode("ascii", "replace")).hexdigest() != digest:
            return None
        return self._b64(user, text)

    def _b64(self, user: str, text: str) -> bytes:
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise StoreError(f"keyring entry {user!r} is not valid base64") from exc

    def _store_blob(self, user: str, data: bytes) -> None:
        text = base64.b64encode(data).decode("ascii")
        previous = self._read(user)
        if len(_SINGLE) + len(text) <= CHUNK_CHARS:
            self._write(user, _SINGLE + text)
        else:
            generation = secrets.token_hex(4)
            chunks = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]
            for i, chunk in enumerate(chunks):
                self._write(self._chunk_user(generation, i, user), chunk)
            digest = hashlib.sha256(text.encode("ascii")).hexdigest()
            # The manifest is written last: until then readers see the old value.
            self._write(user, f"{_CHUNKED}{generation}:{len(chunks)}:{digest}")
        self._drop_chunks_of(user, previous)

    def _erase_blob(self, user: str) -> bool:
        previous = self._read(user)
        existed = self._erase(user)
        self._drop_chunks_of(user, previous)
        return existed

    def _drop_chunks_of(self, user: str, head: str | None) -> None:
        if head is None or not head.startswith(_CHUNKED):
            return
        try:
            generation, count_text, _digest = head[len(_CHUNKED) :].split(":")
            count = int(count_text)
        except ValueError:
            return
        for i in range(count):
            self._erase(self._chunk_user(generation, i, user))

    # -- the index of names -----------------------------------------------------
    def _index(self) -> list[str]:
        raw = self._load_blob(INDEX_USER)
        if raw is None:
            return []
        try:
            names: Any = json.loads(raw)
        except ValueError as exc:
            raise StoreError(
                f"the name index of keyring service {self.service!r} is corrupt"
            ) from exc
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise StoreError(f"the name index of keyring service {self.service!r} is corrupt")
        return names

    def _update_index(self, name: str, present: bool) -> None:
        # Read-modify-write of the shared index, so under its own lock.
        with self._locks.hold(INDEX_USER, None):
            names = set(self._index())
            if (name in names) == present:
                return
            if present:
                names.add(name)
            else:
                names.discard(name)
            self._store_blob(INDEX_USER, json.dumps(sorted(names)).encode("utf-8"))

    # -- Store protocol -------------------------------------------------------
    def get(self, name: str) -> bytes | None:
        """Return the value of ``name`` or ``None``."""
        validate_name(name)
        data = self._load_blob(name)
        if data is not None:
            check_value_size(name, len(data))
        return data

    def put(self, name: str, data: bytes) -> None:
        """Store ``data``: the index first (so no value is ever unlisted), then the value."""
        data = checked_value(name, data)
        self._update_index(name, True)
        with self._locks.hold(name, None):
            self._store_blob(name, data)

    def delete(self, name: str) -> bool:
        """Remove ``name`` and its chunks; return whether it existed."""
        validate_name(name)
        with self._locks.hold(name, None):
            existed = self._erase_blob(name)
        self._update_index(name, False)
        return existed

    def names(self) -> list[str]:
        """The names in the index whose value exists (a crash may leave a listed name behind)."""
        return sorted(name for name in self._index() if self._read(name) is not None)

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, value)`` for every listed name that has a value.

        An entry that is not ours or is corrupt is skipped with a warning; a
        backend that fails raises, so a listing is never silently shorter.
        """
        for name in self._index():
            try:
                data = self.get(name)
            except StoreUnavailableError:
                raise
            except StoreError as exc:
                logger.warning("keyring entry %r skipped: %s", name, exc)
                continue
            if data is not None:
                yield name, data

    def lock(self, name: str, timeout: float | None = None) -> AbstractContextManager[None]:
        """Hold a file lock for ``name`` in the user cache dir (processes of this machine)."""
        validate_name(name)
        return self._locks.hold(name, timeout)

    def _lock_path(self, name: str) -> Path:
        return self.lock_dir / f"{name}.lock"


__all__ = ["CHUNK_CHARS", "KeyringStore", "backend_label"]
