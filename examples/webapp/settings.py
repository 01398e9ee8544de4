"""The example app's settings, read from the environment, and the keys it keeps in files.

- ``WEBAPP_URL``: where browsers reach the app. ``https://...`` makes it a
  confidential client (it serves ``/client-metadata.json`` and ``/jwks.json``
  and signs ``private_key_jwt`` assertions); ``http://127.0.0.1:PORT`` (the
  default, port 8000) a loopback client for development, with no metadata to host.
- ``WEBAPP_STORE``: a store URL (``redis://host:6379/0?prefix=web:``); by
  default ``sqlite:WEBAPP_DATA/sessions.db``. The worker reads the same one.
- ``WEBAPP_DATA``: the folder of the SQLite file and the two keys
  (``client-key.json``, the client's ES256 key; ``cookie-key``, which signs the
  browser's sign-in cookie), made with mode 0600 on first start; ``./webapp-data``.
- ``WEBAPP_LISTEN``: ``HOST:PORT`` to listen on; by default the ``WEBAPP_URL``
  host and port when it is http, else ``127.0.0.1:8000`` (behind a TLS proxy).
- ``ATP_HANDLE_RESOLVER`` / ``ATP_PLC_DIRECTORY``: how handles and DIDs resolve
  (by default DNS and ``https://<handle>/.well-known``, and plc.directory).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sessionkeeper.atproto import AsyncOAuthClient, OAuthClient, generate_dpop_jwk
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.url import open_store

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Settings:
    """Where the app is reached, where sessions live, how identities resolve."""

    public_url: str
    store_url: str
    data_dir: Path
    listen: tuple[str, int]
    handle_resolver: str | None
    plc_directory: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """The settings of ``env`` (by default the process environment)."""
        env = dict(os.environ if env is None else env)
        public_url = env.get("WEBAPP_URL", DEFAULT_URL).rstrip("/")
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"WEBAPP_URL {public_url!r} is not an http(s) URL")
        data_dir = Path(env.get("WEBAPP_DATA", "webapp-data")).resolve()
        listen = env.get("WEBAPP_LISTEN")
        if listen:
            host, _, port = listen.rpartition(":")
            host = host.strip("[]")  # [::1]:8000
        elif parts.scheme == "http":
            host, port = parts.hostname, str(parts.port or 80)
        else:
            host, port = "127.0.0.1", "8000"
        return cls(
            public_url=public_url,
            store_url=env.get("WEBAPP_STORE") or f"sqlite:{data_dir / 'sessions.db'}",
            data_dir=data_dir,
            listen=(host, int(port)),
            handle_resolver=env.get("ATP_HANDLE_RESOLVER") or None,
            plc_directory=env.get("ATP_PLC_DIRECTORY") or "https://plc.directory",
        )

    @property
    def confidential(self) -> bool:
        """Whether the app is a confidential (web) client: only on https."""
        return self.public_url.startswith("https://")

    @property
    def redirect_uri(self) -> str:
        """Where the authorization server sends the browser back."""
        return f"{self.public_url}/oauth/callback"

    def open_store(self) -> Store:
        """The store the app and the worker share."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return open_store(self.store_url)

    def client_options(self, store: Store) -> dict[str, Any]:
        """The OAuth client's options: the same for the app (async) and the worker."""
        options: dict[str, Any] = {
            "store": store,
            "redirect_uri": self.redirect_uri,
            "handle_resolver": self.handle_resolver,
            "plc_directory": self.plc_directory,
        }
        if self.confidential:
            options["client_id"] = f"{self.public_url}/client-metadata.json"
            options["client_key"] = secret_json(
                self.data_dir / "client-key.json", generate_dpop_jwk
            )
        return options

    def async_client(self, store: Store) -> AsyncOAuthClient:
        """The app's OAuth client."""
        return AsyncOAuthClient(**self.client_options(store))

    def client(self, store: Store) -> OAuthClient:
        """The worker's OAuth client."""
        return OAuthClient(**self.client_options(store))

    def cookie_key(self) -> bytes:
        """The key that signs the browser's sign-in cookie (made on first use)."""
        made = secret_json(self.data_dir / "cookie-key", lambda: {"key": secrets.token_hex(32)})
        return bytes.fromhex(made["key"])


def secret_json(path: Path, make: Callable[[], dict[str, str]]) -> dict[str, str]:
    """The JSON object in ``path``; made by ``make()`` and written 0600 if there is none."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(make(), out)
        try:
            # link() never replaces: of two processes starting at once, one key wins for both.
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    value: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return value
