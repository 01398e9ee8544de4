"""Two accounts on one manager: every MarshalX request acts on the account its token names.

The manager's current session is whichever account was loaded last; a client
of the other account must still log out, refresh and call as itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sessionkeeper.atproto import (
    AsyncPersistentSessionManager,
    PersistentSessionManager,
)
from sessionkeeper.atproto.marshalx import (
    MARSHALX_REFRESH_MARGIN,
    async_persistent_client,
    persistent_client,
)
from sessionkeeper.clock import ManualClock
from sessionkeeper.testing.fake_pds import FakePds
from tests.atproto.marshalx.support import CREATE_RECORD, PAST_EXP, REFRESH, posts, stored

pytestmark = pytest.mark.timeout(60)


def test_one_clients_delete_session_logs_out_its_own_account_and_not_the_other(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, alice: str, bob: str
) -> None:
    client_a = persistent_client(manager, "alice.test", "alice-pass")
    client_b = persistent_client(manager, "bob.test", "bob-pass")
    assert manager.session is not None and manager.session.did == bob  # loaded last
    assert client_a.com.atproto.server.delete_session() is True
    # Alice is logged out on the server and in the store...
    assert pds.live_refresh_tokens(alice) == 0
    assert manager.list_sessions() == [bob]
    # ...and Bob is untouched: alive on the server, stored, current, and calling.
    assert pds.live_refresh_tokens(bob) == 1
    assert manager.session is not None and manager.session.did == bob
    client_b.send_post("bob is still in")
    assert posts(pds, bob) == ["bob is still in"]
    assert client_b.com.atproto.server.delete_session() is True
    assert manager.session is None and manager.list_sessions() == []
    assert pds.live_refresh_tokens(bob) == 0


def test_the_async_clients_delete_session_logs_out_its_own_account_too(
    tmp_path: Path, pds: FakePds, clock: ManualClock, alice: str, bob: str
) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(
            tmp_path / "sessions", pds.url, clock=clock, refresh_margin=MARSHALX_REFRESH_MARGIN
        ) as manager:
            client_a = await async_persistent_client(manager, "alice.test", "alice-pass")
            client_b = await async_persistent_client(manager, "bob.test", "bob-pass")
            assert await client_a.com.atproto.server.delete_session() is True
            assert await manager.list_sessions() == [bob]
            assert manager.session is not None and manager.session.did == bob
            await client_b.send_post("bob is still in")

    asyncio.run(scenario())
    assert pds.live_refresh_tokens(alice) == 0 and pds.live_refresh_tokens(bob) == 1
    assert posts(pds, bob) == ["bob is still in"]


def test_one_clients_refresh_rotates_its_own_account_and_leaves_the_current_one(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, alice: str, bob: str
) -> None:
    client_a = persistent_client(manager, "alice.test", "alice-pass")
    persistent_client(manager, "bob.test", "bob-pass")
    bob_before = stored(tmp_path, bob)
    alice_refresh = client_a.export_session_string().split(":::")[3]
    answer = client_a.com.atproto.server.refresh_session(
        headers={"Authorization": f"Bearer {alice_refresh}"}
    )
    assert pds.counts[REFRESH] == 1 and pds.errors[REFRESH] == 0
    assert answer.did == alice
    assert answer.refresh_jwt == stored(tmp_path, alice)["refreshJwt"] != alice_refresh
    assert stored(tmp_path, bob) == bob_before
    assert manager.session is not None and manager.session.did == bob


def test_a_refused_call_of_the_other_account_is_refreshed_and_replayed_as_that_account(
    tmp_path: Path,
    pds: FakePds,
    manager: PersistentSessionManager,
    clock: ManualClock,
    alice: str,
    bob: str,
) -> None:
    client_a = persistent_client(manager, "alice.test", "alice-pass")
    persistent_client(manager, "bob.test", "bob-pass")
    bob_before = stored(tmp_path, bob)
    clock.advance(PAST_EXP)
    pds.reset_counts()
    client_a.send_post("alice, after exp")  # refused, refreshed once for Alice, replayed
    assert (pds.counts[REFRESH], pds.counts[CREATE_RECORD]) == (1, 2)
    assert posts(pds, alice) == ["alice, after exp"] and posts(pds, bob) == []
    assert stored(tmp_path, alice)["refreshJwt"] != client_a.export_session_string().split(":::")[3]
    assert stored(tmp_path, bob) == bob_before
    assert manager.session is not None and manager.session.did == bob
    # Alice's next call carries her stored, refreshed token: no second refresh.
    client_a.send_post("alice again")
    assert (pds.counts[REFRESH], pds.counts[CREATE_RECORD]) == (1, 3)
