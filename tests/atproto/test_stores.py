"""ATProto sessions on other stores: Redis shared by several "machines", encrypted at rest."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable

import pytest

from sessionkeeper.atproto import (
    AsyncPersistentSessionManager,
    PersistentSessionManager,
    name_for_did,
)
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores.encrypted import EncryptedStore
from sessionkeeper.stores.errors import StoreUnavailableError
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.testing.fake_pds import FakePds
from sessionkeeper.testing.redis_server import RedisServer
from tests.redis_fixture import require_redis_server

pytestmark = pytest.mark.timeout(60)

GET_SESSION = "com.atproto.server.getSession"
REFRESH = "com.atproto.server.refreshSession"


@pytest.mark.redis
def test_managers_on_separate_redis_connections_share_one_refresh(
    redis_store_factory: Callable[..., RedisStore], pds: FakePds, clock: ManualClock
) -> None:
    did = pds.create_account("fleet.test", "fleet-pass")
    key = secrets.token_hex(32)
    machines = [
        PersistentSessionManager(
            None, pds.url, store=EncryptedStore(redis_store_factory(), key), clock=clock
        )
        for _ in range(4)
    ]
    try:
        machines[0].login("fleet.test", "fleet-pass")
        for machine in machines[1:]:
            assert machine.load_session(did) is not None
        raw = machines[0].store.inner.get(name_for_did(did))  # type: ignore[attr-defined]
        assert raw is not None and b"refreshJwt" not in raw  # encrypted at rest
        clock.advance(7201)
        failures: list[BaseException] = []
        barrier = threading.Barrier(len(machines) * 2)

        def call(machine: PersistentSessionManager) -> None:
            barrier.wait()
            try:
                machine.query(GET_SESSION)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=call, args=(m,)) for m in machines * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert failures == []
        assert pds.counts[REFRESH] == 1
        assert len({m.session.refresh_jwt for m in machines if m.session}) == 1
    finally:
        for machine in machines:
            machine.close()


@pytest.mark.redis
def test_a_proactive_refresh_with_the_store_down_uses_the_still_valid_token(
    pds: FakePds, clock: ManualClock
) -> None:
    """Refreshing early is a courtesy: a store that is away must not fail a call that the
    current token still carries; once the token has expired, the named error comes out."""
    require_redis_server()
    did = pds.create_account("early.test", "early-pass")
    with RedisServer(appendonly=False) as server:
        store = RedisStore(server.url, prefix="early:", lease=5, lock_timeout=2)
        with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
            first = manager.login("early.test", "early-pass")

            async def both_managers() -> None:
                async with AsyncPersistentSessionManager(
                    None, pds.url, store=store, clock=clock
                ) as twin:
                    assert await twin.load_session(did) == first
                    clock.advance(7200 - 60)  # inside the 120 s margin, a minute before exp
                    server.stop()
                    assert manager.query(GET_SESSION)["did"] == did
                    assert (await twin.query(GET_SESSION))["did"] == did

            asyncio.run(both_managers())
            assert manager.session == first
            clock.advance(120)  # now the token has expired: nothing to fall back on
            with pytest.raises(StoreUnavailableError):
                manager.query(GET_SESSION)
        assert pds.counts[REFRESH] == 0
