"""Many stored app-password sessions, written straight into a store's medium.

A curve at 100,000 sessions needs them stored in seconds: one durable ``put``
each (an fsync, a commit, a round trip) would take minutes and measure the
filling, not the code under test. These are written the way the store keeps
them, without the per-session durability.
"""

from __future__ import annotations

import base64
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator

from sessionkeeper.atproto import AtpSessionData
from sessionkeeper.atproto.codec import encode_session, name_for_did
from sessionkeeper.stores import DirectoryStore, SqliteStore, Store
from sessionkeeper.stores.redis.store import RedisStore

#: ``(number, did)`` to the session's ``(refresh_jwt, access_jwt)``.
Tokens = Callable[[int, str], tuple[str, str]]


def did_of(number: int) -> str:
    """A distinct, valid ``did:plc:`` for each number."""
    return "did:plc:" + base64.b32encode(number.to_bytes(15, "big")).decode().lower()[:24]


def opaque_tokens(number: int, did: str) -> tuple[str, str]:
    """Token-sized strings with no readable claims: nothing reads them but a parser."""
    return (
        "eyJ0eXAiOiJyZWZyZXNoK2p3dCJ9." + "r" * 200 + ".sig",
        "eyJ0eXAiOiJhdCtqd3QifQ." + "a" * 200 + ".sig",
    )


def password_sessions(count: int, tokens: Tokens = opaque_tokens) -> Iterator[tuple[str, bytes]]:
    """``(name, stored bytes)`` of ``count`` distinct password sessions."""
    for number in range(count):
        did = did_of(number)
        refresh, access = tokens(number, did)
        session = AtpSessionData(
            refresh_jwt=refresh,
            access_jwt=access,
            handle=f"bot-{number}.test",
            did=did,
            email=f"bot-{number}@example.com",
            email_confirmed=True,
        )
        yield name_for_did(did), encode_session(session)


def fill(store: Store, entries: Iterable[tuple[str, bytes]]) -> None:
    """Write ``entries`` straight into the store's medium (no fsync per entry)."""
    if isinstance(store, DirectoryStore):
        for name, data in entries:
            fd = os.open(store.path / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
    elif isinstance(store, SqliteStore):
        store.put("warm-up", b"{}")  # creates the schema
        store.delete("warm-up")
        with sqlite3.connect(store.path) as conn:
            conn.executemany("INSERT INTO kv (name, data) VALUES (?, ?)", entries)
        conn.close()
    elif isinstance(store, RedisStore):
        pipe = store._client.pipeline(transaction=False)
        for number, (name, data) in enumerate(entries, 1):
            pipe.set(store._keys.value(name), data)
            if number % 5000 == 0:  # bounded batches: the pipeline buffers every command
                pipe.execute()
        pipe.execute()
    else:
        raise TypeError(f"no direct fill for {type(store).__name__}")
