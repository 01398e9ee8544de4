"""A refresh the server has done is never lost because the store failed to save it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from sessionkeeper.atproto import (
    AsyncPersistentSessionManager,
    PersistentSessionManager,
    name_for_did,
)
from sessionkeeper.clock import ManualClock
from sessionkeeper.testing.fake_pds import FakePds
from tests.atproto_fixtures import FlakyStore

pytestmark = pytest.mark.timeout(60)
REFRESH = "com.atproto.server.refreshSession"


@pytest.fixture
def pds(clock: ManualClock) -> Iterator[FakePds]:
    with FakePds(clock=clock, grace_period=0, access_lifetime=600) as fake:
        yield fake


def test_tokens_rotated_while_the_store_is_down_stay_usable(
    pds: FakePds, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    did = pds.create_account("alice.test", "alice-pass")
    store = FlakyStore()
    with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
        first = manager.login("alice.test", "alice-pass")
        clock.advance(601)
        store.down = True
        with caplog.at_level(logging.ERROR):
            fresh = manager.refresh_token()
        assert fresh.refresh_jwt != first.refresh_jwt
        assert manager.session == fresh
        assert "could not store the new tokens" in caplog.text
        assert fresh.refresh_jwt not in caplog.text
        # The old refresh token is dead (grace 0): only the kept pair still works.
        assert manager.query("com.atproto.server.getSession")["did"] == did
        store.down = False
        clock.advance(601)
        stored_after = manager.refresh_token()
        assert store.get(name_for_did(did)) is not None
        assert stored_after.refresh_jwt != fresh.refresh_jwt
    assert pds.counts[REFRESH] == 2
    assert pds.errors[REFRESH] == 0


def test_the_async_manager_keeps_them_too(pds: FakePds, clock: ManualClock) -> None:
    did = pds.create_account("alice.test", "alice-pass")
    store = FlakyStore()

    async def scenario() -> None:
        manager = AsyncPersistentSessionManager(None, pds.url, store=store, clock=clock)
        try:
            first = await manager.login("alice.test", "alice-pass")
            clock.advance(601)
            store.down = True
            fresh = await manager.refresh_token()
            assert fresh.refresh_jwt != first.refresh_jwt
            assert (await manager.query("com.atproto.server.getSession"))["did"] == did
        finally:
            await manager.aclose()

    asyncio.run(scenario())
    assert pds.errors[REFRESH] == 0


def test_an_older_stored_pair_is_never_adopted_over_a_newer_one_in_memory(
    pds: FakePds, clock: ManualClock
) -> None:
    did = pds.create_account("alice.test", "alice-pass")
    store = FlakyStore()
    with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
        first = manager.login("alice.test", "alice-pass")
        clock.advance(500)  # inside the 120 s margin; the stored access token stays valid
        store.down = True
        assert manager.query("com.atproto.server.getSession")["did"] == did
        kept = manager.session
        assert kept is not None and kept.refresh_jwt != first.refresh_jwt
        store.down = False
        # The stored pair is the login's: different, unexpired, but older. Adopting it
        # would bring back a refresh token the server has already revoked.
        newest = manager.refresh_token()
        assert newest.refresh_jwt not in {first.refresh_jwt, kept.refresh_jwt}
    assert pds.counts[REFRESH] == 2
    assert pds.errors[REFRESH] == 0
