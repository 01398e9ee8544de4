"""login() reuses a stored session while it can be refreshed, creates one only otherwise,
and force=True replaces (and revokes) it: sync and async, against the fake PDS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.atproto import (
    AsyncPersistentSessionManager,
    PersistentSessionManager,
    SessionError,
)
from sessionkeeper.atproto.codec import name_for_did
from sessionkeeper.atproto.issuer import issuer_name
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores import MemoryStore
from sessionkeeper.testing.fake_pds import FakePds

pytestmark = pytest.mark.timeout(60)

CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
HOUR = 3600.0


@pytest.fixture
def pds(clock: ManualClock) -> Iterator[FakePds]:
    with FakePds(clock=clock, access_lifetime=2 * HOUR) as fake:
        yield fake


def test_an_expired_access_token_is_refreshed_at_login_not_replaced(
    tmp_path: Path, pds: FakePds, clock: ManualClock
) -> None:
    pds.create_account("alice.test", "pw", email="alice@example.com")
    with PersistentSessionManager(tmp_path, pds.url, clock=clock) as manager:
        first = manager.login("alice.test", "pw")
        clock.advance(3 * HOUR)
        again = manager.login("ALICE@example.com", "pw")  # the e-mail names it too
    assert (pds.counts[CREATE], pds.counts[REFRESH]) == (1, 1)
    assert again.did == first.did and again.access_jwt != first.access_jwt


def test_a_session_the_server_declared_dead_is_replaced_by_a_new_login(
    tmp_path: Path, pds: FakePds, clock: ManualClock
) -> None:
    did = pds.create_account("alice.test", "pw")
    with PersistentSessionManager(tmp_path, pds.url, clock=clock) as manager:
        first = manager.login("alice.test", "pw")
        pds.revoke_all(did)
        clock.advance(3 * HOUR)
        fresh = manager.login("alice.test", "pw")
        assert manager.load_session(did) == fresh
    assert pds.counts[CREATE] == 2
    assert fresh.refresh_jwt != first.refresh_jwt


def test_a_past_refresh_expiry_is_not_reused(
    tmp_path: Path, pds: FakePds, clock: ManualClock
) -> None:
    pds.create_account("alice.test", "pw")
    with PersistentSessionManager(tmp_path, pds.url, clock=clock) as manager:
        manager.login("alice.test", "pw")
        clock.advance(91 * 24 * HOUR)
        manager.login("alice.test", "pw")
    assert (pds.counts[CREATE], pds.counts[REFRESH]) == (2, 0)


def test_async_login_reuses_and_force_revokes(tmp_path: Path, pds: FakePds) -> None:
    did = pds.create_account("alice.test", "pw")

    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url) as manager:
            first = await manager.login("alice.test", "pw")
            assert await manager.login(did, "pw") == first
            assert pds.counts[CREATE] == 1
            forced = await manager.login("alice.test", "pw", force=True)
            assert forced.refresh_jwt != first.refresh_jwt
            assert pds.counts[CREATE] == 2 and pds.live_refresh_tokens(did) == 1

    asyncio.run(scenario())


def test_resume_makes_a_stored_session_current_without_a_password(
    tmp_path: Path, pds: FakePds, clock: ManualClock
) -> None:
    did = pds.create_account("alice.test", "pw")
    with PersistentSessionManager(tmp_path, pds.url, clock=clock) as manager:
        assert manager.resume("alice.test") is None
        first = manager.login("alice.test", "pw")
    with PersistentSessionManager(tmp_path, pds.url, clock=clock) as later:
        assert later.resume("@alice.test") == first == later.session
        clock.advance(3 * HOUR)
        refreshed = later.resume(did)
        assert refreshed is not None and refreshed.access_jwt != first.access_jwt
        pds.revoke_all(did)
        clock.advance(3 * HOUR)
        assert later.resume(did) is None  # the server ended it: a login is needed
    assert (pds.counts[CREATE], pds.counts[REFRESH]) == (1, 2)


def test_a_session_another_service_issued_is_never_reused_nor_sent_there(tmp_path: Path) -> None:
    with FakePds() as issuer, FakePds() as other:
        issuer.create_account("alice.test", "pass-a")
        other.create_account("alice.test", "pass-b")
        with PersistentSessionManager(tmp_path, issuer.url) as at_a:
            from_a = at_a.login("alice.test", "pass-a")
        with PersistentSessionManager(tmp_path, other.url) as at_b:
            with pytest.raises(SessionError):
                at_b.login("alice.test", "wrong-for-b")  # no reuse of A's session here
            from_b = at_b.login("alice.test", "pass-b")
            at_b.query("com.atproto.server.getSession")
        assert from_b.did != from_a.did
        with PersistentSessionManager(tmp_path, issuer.url) as again_at_a:
            assert again_at_a.login("alice.test", "not-needed").did == from_a.did  # reused
            again_at_a.query("com.atproto.server.getSession")
        # B saw one failed and one good createSession and A's session never: no refresh there.
        assert other.counters()["counts"].get("com.atproto.server.refreshSession") is None
        assert issuer.counters()["counts"]["com.atproto.server.createSession"] == 1


def test_a_stored_session_without_an_issuer_record_is_not_reused(tmp_path: Path) -> None:
    with FakePds() as pds:
        pds.create_account("alice.test", "pass")
        with PersistentSessionManager(tmp_path, pds.url) as manager:
            first = manager.login("alice.test", "pass")
        (tmp_path / issuer_name(first.did)).unlink()  # stored by a version that kept none
        with PersistentSessionManager(tmp_path, pds.url) as manager:
            second = manager.login("alice.test", "pass")
        assert second.refresh_jwt != first.refresh_jwt
        assert pds.counters()["counts"]["com.atproto.server.createSession"] == 2


def test_logout_leaves_no_record_of_the_session_behind(pds: FakePds, clock: ManualClock) -> None:
    pds.create_account("bob.test", "pass")
    store = MemoryStore()
    with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
        manager.login("bob.test", "pass")
        manager.refresh_token()  # writes its intent record
        assert len(store.names()) > 1
        manager.logout()
    assert store.names() == []


class CountingStore(MemoryStore):
    """A memory store that counts whole-store reads and single reads."""

    def __init__(self) -> None:
        super().__init__()
        self.bulk_reads = 0
        self.reads: list[str] = []

    def items(self) -> Iterator[tuple[str, bytes]]:
        self.bulk_reads += 1
        return super().items()

    def get(self, name: str) -> bytes | None:
        self.reads.append(name)
        return super().get(name)


def test_a_login_decodes_only_the_entries_that_may_name_its_account(
    pds: FakePds, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A large store costs a reusing login one read of it (by handle) or one entry (by DID)."""
    store = CountingStore()
    dids = {h: pds.create_account(h, "pw") for h in ("alice.test", "bob.test")}
    for handle in dids:
        with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
            manager.login(handle, "pw")
    # An entry no decode can read: any login that decoded it would warn about it.
    store.put(name_for_did("did:plc:corruptcorruptcorrupt"), b"{not json")
    store.bulk_reads, store.reads = 0, []
    with caplog.at_level(logging.WARNING, logger="sessionkeeper"):
        with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
            assert manager.login("@Alice.test", "pw").did == dids["alice.test"]
            assert store.bulk_reads == 1
            assert "skipping" not in caplog.text  # the corrupt entry was never decoded
            store.bulk_reads = 0
            assert manager.resume(dids["bob.test"]) is not None  # by DID: its entry alone
            assert store.bulk_reads == 0
            assert name_for_did(dids["bob.test"]) in store.reads
            assert manager.resume("did:plc:nobody") is None
        assert pds.counts[CREATE] == 2  # the two first logins; none since
        assert len(manager.sessions()) == 2  # a whole listing does meet the corrupt entry
    assert "skipping" in caplog.text
