"""Store URLs: one string names a store, for ``--store`` options and ``SESSIONKEEPER_STORE``.

``dir:PATH``, ``sqlite:PATH``, ``memory:[NAME]``, ``redis://...``, ``rediss://...``,
``redis+cluster://...``, ``redis+sentinel://...`` (forms and options in
`sessionkeeper.stores.redis.url`), ``keyring:SERVICE``; any of them with
``?encrypt=1`` is wrapped in `EncryptedStore`, keyed by ``SESSIONKEEPER_KEY``
or, failing that, the key saved in the OS keyring.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from sessionkeeper.stores.base import Store
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.encrypted import KEY_ENV, EncryptedStore
from sessionkeeper.stores.errors import DecryptionError, MissingKeyError, StoreUrlError
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.stores.redis.url import is_redis_url, parse_redis_url, redact_url
from sessionkeeper.stores.sqlite import SqliteStore

STORE_ENV = "SESSIONKEEPER_STORE"
KEYRING_KEY_SERVICE = "sessionkeeper"
KEYRING_KEY_USER = "encryption-key"
_TRUE = {"1", "true", "yes", "on"}

_memory_stores: dict[str, MemoryStore] = {}
_memory_guard = threading.Lock()


def encryption_key() -> str:
    """The key ``?encrypt=1`` uses: ``SESSIONKEEPER_KEY``, else the one saved in the keyring."""
    key = os.environ.get(KEY_ENV)
    if key:
        return key
    try:
        import keyring

        saved = keyring.get_password(KEYRING_KEY_SERVICE, KEYRING_KEY_USER)
    except Exception as exc:  # any keyring backend failure means "no key there"
        raise MissingKeyError(
            f"?encrypt=1 needs a key: set {KEY_ENV} (the keyring could not be read: {exc})"
        ) from exc
    if not saved:
        raise MissingKeyError(
            f"?encrypt=1 needs a key: set {KEY_ENV} or save one in the keyring "
            f"(service {KEYRING_KEY_SERVICE!r}, user {KEYRING_KEY_USER!r})"
        )
    return str(saved)


def verify_key(store: Store) -> None:
    """Fail once, clearly, when an encrypted store's key opens none of what it holds.

    One entry is tried (the first that is encrypted); a key that cannot open it
    raises [DecryptionError][sessionkeeper.stores.DecryptionError] naming where
    the key came from, instead of a warning for every entry that follows.
    """
    if not isinstance(store, EncryptedStore):
        return
    for name in store.names():
        try:
            store.get(name)
        except DecryptionError:
            source = KEY_ENV if os.environ.get(KEY_ENV) else "the keyring's key"
            raise DecryptionError(
                f"the encryption key ({source}) does not open this store: {name!r} was "
                f"encrypted with another key; set {KEY_ENV} to the key it was written with"
            ) from None
        return


def _memory(name: str) -> MemoryStore:
    with _memory_guard:
        return _memory_stores.setdefault(name, MemoryStore())


@dataclass(frozen=True)
class StoreUrl:
    """The parts of a store URL: lowercased scheme, body (a path, a service...), options."""

    scheme: str
    body: str
    params: dict[str, str]  #: query parameters other than ``encrypt``
    encrypt: bool

    @property
    def path(self) -> Path | None:
        """The file or directory of a ``dir:``/``file:``/``sqlite:`` URL, else ``None``."""
        if self.scheme in {"dir", "file", "sqlite"} and self.body:
            return Path(self.body).expanduser()
        return None


def parse_store_url(url: str) -> StoreUrl:
    """Split a store URL into its parts; nothing is opened or checked here."""
    scheme, _, rest = url.strip().partition(":")
    body, _, query = rest.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True))
    encrypt = params.pop("encrypt", "0").lower() in _TRUE
    return StoreUrl(scheme.lower(), body, params, encrypt)


def with_encryption(url: str, encrypt: bool) -> str:
    """``url`` with ``encrypt=1`` added or removed; its other options (prefix, lease...) kept."""
    parts = parse_store_url(url)
    query = urlencode({**parts.params, **({"encrypt": "1"} if encrypt else {})})
    scheme = url.strip().partition(":")[0]
    return f"{scheme}:{parts.body}" + (f"?{query}" if query else "")


def open_store(url: str) -> Store:
    """Open the store a URL names; raise [`StoreUrlError`][] naming what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise StoreUrlError("store URL is empty; use dir:PATH, sqlite:PATH, redis://..., ...")
    url = url.strip()
    if ":" not in url:
        raise StoreUrlError(
            f"store URL {url!r} has no scheme; use dir:PATH, sqlite:PATH, memory:, "
            "redis://HOST:PORT/DB, keyring:SERVICE"
        )
    parts = parse_store_url(url)
    scheme, body, params, encrypt = parts.scheme, parts.body, parts.params, parts.encrypt
    unknown = sorted(params) if scheme in {"dir", "file", "sqlite", "memory", "keyring"} else []
    if unknown:
        # A misspelt option (``?encrypted=1``) must never quietly give a plaintext store.
        raise StoreUrlError(
            f"store URL option {unknown[0]!r} is not known for {scheme}: stores; "
            "the only option there is encrypt=1"
        )
    store: Store
    if scheme in {"dir", "file"}:
        if parts.path is None:
            raise StoreUrlError("dir: store URL needs a path, e.g. dir:~/.cache/hac-client")
        store = DirectoryStore(parts.path)
    elif scheme == "sqlite":
        if parts.path is None:
            raise StoreUrlError("sqlite: store URL needs a file path, e.g. sqlite:sessions.db")
        store = SqliteStore(parts.path)
    elif scheme == "memory":
        store = _memory(body)
    elif is_redis_url(url):
        from sessionkeeper.stores.redis.store import RedisStore

        # Parsed strictly: a password holding '?' or '#' is refused, never split into
        # options. Once it parses, the plain split above found ``encrypt`` right.
        store = RedisStore(parse_redis_url(url, ignore=frozenset({"encrypt"})))
    elif scheme == "keyring":
        from sessionkeeper.stores.keyring import KeyringStore

        store = KeyringStore(body or "sessionkeeper")
    else:
        raise StoreUrlError(
            f"unknown store scheme {scheme!r} in {redact_url(url.split('?')[0])!r}; "
            "use dir:, sqlite:, memory:, redis://, redis+cluster://, redis+sentinel://, "
            "keyring:"
        )
    return EncryptedStore(store, encryption_key()) if encrypt else store


def resolve_store(url: str | None, default: Callable[[], Store]) -> Store:
    """The store of ``url``, else of ``SESSIONKEEPER_STORE``, else ``default()``."""
    chosen = url or os.environ.get(STORE_ENV)
    return open_store(chosen) if chosen else default()


__all__ = [
    "KEYRING_KEY_SERVICE",
    "KEYRING_KEY_USER",
    "STORE_ENV",
    "StoreUrl",
    "StoreUrlError",
    "encryption_key",
    "open_store",
    "parse_store_url",
    "redact_url",
    "resolve_store",
    "verify_key",
    "with_encryption",
]
