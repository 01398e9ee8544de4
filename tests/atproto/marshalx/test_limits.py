"""A MarshalX client is held to its manager's HTTP limits: one total deadline, a capped answer.

The session is made on the fake PDS and stored; a second manager on the same
store then points at a hostile server on 127.0.0.1, and the MarshalX client's
first call (the profile lookup of its login) meets it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from atproto import exceptions as atproto_exceptions
from sessionkeeper.atproto import AsyncPersistentSessionManager, PersistentSessionManager
from sessionkeeper.atproto.marshalx import async_persistent_client, persistent_client
from sessionkeeper.http_limits import (
    DEFAULT_MAX_BODY,
    MIB,
    DeadlineExceededError,
    ResponseTooLargeError,
    bounded_async_client,
    bounded_client,
)
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.testing.fake_pds import FakePds
from sessionkeeper.testing.hostile_server import Behaviour, HostileServer

pytestmark = pytest.mark.timeout(60)

#: The manager's total deadline in these tests (seconds).
DEADLINE = 2


@pytest.fixture
def store(tmp_path: Path, pds: FakePds, alice: str) -> DirectoryStore:
    """A store holding Alice's session, made on the fake PDS."""
    store = DirectoryStore(tmp_path / "sessions")
    with PersistentSessionManager(None, pds.url, store=store) as manager:
        manager.login("alice.test", "alice-pass")
    return store


def test_a_trickling_pds_is_cut_off_at_the_managers_total_deadline(store: DirectoryStore) -> None:
    with HostileServer("trickle-headers") as hostile:
        with (
            PersistentSessionManager(
                None, hostile.url, store=store, http=bounded_client(DEADLINE)
            ) as manager,
            pytest.raises(atproto_exceptions.InvokeTimeoutError) as caught,
        ):
            persistent_client(manager, "alice.test")
        cause = caught.value.__cause__
        assert isinstance(cause, DeadlineExceededError)
        assert f"within its {DEADLINE} s deadline" in str(cause)

        async def call_async() -> None:
            async with AsyncPersistentSessionManager(
                None, hostile.url, store=store, http=bounded_async_client(DEADLINE)
            ) as manager:
                await async_persistent_client(manager, "alice.test")

        with pytest.raises(atproto_exceptions.InvokeTimeoutError) as caught:
            asyncio.run(call_async())
        assert isinstance(caught.value.__cause__, DeadlineExceededError)
        assert hostile.requests == 2  # one call each, cut off, not retried


@pytest.mark.parametrize("behaviour", ["huge-body", "huge-chunked"])
def test_a_huge_answer_is_refused_at_the_managers_cap(
    store: DirectoryStore, behaviour: Behaviour
) -> None:
    size = 64 * MIB
    with HostileServer(behaviour, size=size) as hostile:
        with (
            PersistentSessionManager(None, hostile.url, store=store) as manager,
            pytest.raises(ResponseTooLargeError) as caught,
        ):
            persistent_client(manager, "alice.test")
        assert f"more than {DEFAULT_MAX_BODY} bytes" in str(caught.value)
        assert hostile.bytes_sent < size // 2  # it stopped reading; the body was not held

        async def call_async() -> None:
            async with AsyncPersistentSessionManager(None, hostile.url, store=store) as manager:
                await async_persistent_client(manager, "alice.test")

        with pytest.raises(ResponseTooLargeError):
            asyncio.run(call_async())
