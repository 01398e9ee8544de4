"""Fencing on the lock's own token: a holder whose lock Redis forgot is refused.

Redis forgets a lock when it restarts without persistence, fails over to a
replica that had not received it, or evicts it. A fence counter kept in Redis
is forgotten with it, so only the holder's random token, checked atomically
with each write, proves the lock is still held.
"""

from __future__ import annotations

import logging

import pytest
import redis

from sessionkeeper.stores import LockLostError
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.testing.redis_server import RedisServer
from tests.redis_fixture import require_redis_server

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]


def test_a_holder_is_refused_after_redis_restarted_empty_and_another_wrote(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_redis_server()
    with RedisServer(appendonly=False) as server:
        first = RedisStore(server.url, prefix="fence:", lease=30)
        second = RedisStore(server.url, prefix="fence:", lease=30)
        first.put("session", b"v1")
        with (
            caplog.at_level(logging.WARNING, logger="sessionkeeper.stores.redis.store"),
            first.lock("session"),
        ):
            server.restart()  # no persistence: the lock and every value are gone
            with second.lock("session", timeout=5):
                second.put("session", b"v2 from the new holder")
            with pytest.raises(LockLostError, match="Redis lost it"):
                first.put("session", b"stale write of the old holder")
            with pytest.raises(LockLostError):
                first.delete("session")
        assert second.get("session") == b"v2 from the new holder"
        released = [r.getMessage() for r in caplog.records if "at release" in r.getMessage()]
        assert released and "was refused" in released[0]
        first.close()
        second.close()


def test_a_holder_whose_lock_was_evicted_is_refused_though_no_one_else_took_it() -> None:
    require_redis_server()
    with RedisServer(appendonly=False) as server:
        store = RedisStore(server.url, prefix="evict:", lease=30)
        store.put("session", b"kept")
        with store.lock("session"):
            redis.Redis.from_url(server.url).delete("evict:lock:session")  # as an eviction
            with pytest.raises(LockLostError):
                store.put("session", b"unsafe")
        assert store.get("session") == b"kept"
        store.close()


def test_a_write_under_the_lock_is_accepted_while_the_lock_holds_the_token() -> None:
    require_redis_server()
    with RedisServer(appendonly=False) as server:
        store = RedisStore(server.url, prefix="ok:", lease=30)
        with store.lock("session"):
            store.put("session", b"one")
            assert store.delete("session") is True
            store.put("session", b"two")
        assert store.get("session") == b"two"
        store.close()


def test_a_lock_released_while_its_lease_is_renewed_is_not_reported_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The renewer's snapshot may name a lock its holder gives back meanwhile: no alarm."""
    require_redis_server()
    with RedisServer(appendonly=False) as server:
        store = RedisStore(server.url, prefix="renew:", lease=30)
        renewer = store._renewer
        assert renewer is not None
        with store.lock("session"):
            snapshot = list(renewer._held.items())
        with caplog.at_level(logging.WARNING, logger="sessionkeeper.stores.redis.store"):
            renewer.renew_all(snapshot)  # the renewal that raced with the release
        assert not [r for r in caplog.records if "no longer held" in r.getMessage()]
        store.close()


def test_a_held_lock_that_redis_lost_is_reported_by_the_renewer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    require_redis_server()
    with RedisServer(appendonly=False) as server:
        store = RedisStore(server.url, prefix="lost:", lease=30)
        renewer = store._renewer
        assert renewer is not None
        with store.lock("session"):
            snapshot = list(renewer._held.items())
            redis.Redis.from_url(server.url).delete("lost:lock:session")  # as an eviction
            with caplog.at_level(logging.WARNING, logger="sessionkeeper.stores.redis.store"):
                renewer.renew_all(snapshot)
        lost = [r.getMessage() for r in caplog.records if "no longer held by" in r.getMessage()]
        assert lost and "lost:lock:session" in lost[0]
        store.close()
