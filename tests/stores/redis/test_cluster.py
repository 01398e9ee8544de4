"""RedisStore on a real 3-master Redis Cluster: the Store contract, slots, fencing.

Every key of one name carries one hash tag, so each Lua script touches one
slot; different names spread over the masters.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from redis.cluster import RedisCluster

from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.stores import (
    LockLostError,
    Store,
    StoreError,
    StoreUnavailableError,
    StoreUrlError,
)
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.stores.url import open_store
from sessionkeeper.testing import FakePds
from sessionkeeper.testing.redis_server import RedisClusterServers, RedisServer
from sessionkeeper.testing.store_conformance import FRIENDLY_NAMES, SharedStoreConformance
from tests.redis_fixture import require_redis_server
from tests.support import run_store_cli

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]

LEASE = 2.0
BRACED_NAMES = ["a}b", "}starts-with-a-brace", "{tagged}", "{}", "x{y}z{w}"]


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterServers]:
    require_redis_server()
    with RedisClusterServers(3) as cluster:
        yield cluster


@pytest.fixture
def cluster_store(redis_cluster: RedisClusterServers) -> Iterator[Callable[..., RedisStore]]:
    prefix = f"c-{secrets.token_hex(4)}:"
    made: list[RedisStore] = []

    def make(**options: object) -> RedisStore:
        options.setdefault("prefix", prefix)
        store = RedisStore(redis_cluster.url, **options)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


def _raw(cluster: RedisClusterServers) -> RedisCluster[bytes]:
    host, port = cluster.servers[0].host, cluster.servers[0].port
    return RedisCluster(host=host, port=port)


class TestRedisClusterConformance(SharedStoreConformance):
    @pytest.fixture
    def store(self, cluster_store: Callable[..., RedisStore]) -> Store:
        return cluster_store(lease=LEASE)

    @pytest.fixture
    def store_url(self, redis_cluster: RedisClusterServers, store: RedisStore) -> str:
        return f"{redis_cluster.url}?prefix={store.prefix}&lease={LEASE:g}"

    def lock_recovery_seconds(self) -> float:
        return LEASE + 0.5


def test_every_key_of_a_name_is_in_one_slot_and_names_spread_over_the_masters(
    redis_cluster: RedisClusterServers, cluster_store: Callable[..., RedisStore]
) -> None:
    store = cluster_store(lease=LEASE)
    raw = _raw(redis_cluster)
    names = [*FRIENDLY_NAMES, *BRACED_NAMES, *(f"n{i}" for i in range(24))]
    nodes = set()
    for name in names:
        with store.lock(name):
            store.put(name, name.encode())
        keys = [store._keys.value(name), store._keys.lock(name), store._keys.wake(name)]
        assert len({raw.keyslot(key) for key in keys}) == 1, name
        node = raw.get_node_from_key(keys[0])
        assert node is not None
        nodes.add(node.name)
    assert len(nodes) == 3  # the names live on every master, not in one slot
    assert store.names() == sorted(names)  # SCAN visits every master
    assert dict(store.items()) == {name: name.encode() for name in names}
    assert raw.get(store._keys.value("n1")) == b"n1"
    raw.close()


def test_a_stale_holder_is_fenced_off_on_the_cluster(
    redis_cluster: RedisClusterServers, cluster_store: Callable[..., RedisStore]
) -> None:
    slow = cluster_store(lease=0.2, renew=False)
    fast = cluster_store(lease=30)
    raw = _raw(redis_cluster)
    slow.put("session", b"v1")
    with slow.lock("session"):
        pause = threading.Event()
        while cast(Any, raw).exists(slow._keys.lock("session")):
            pause.wait(0.02)
        with fast.lock("session", timeout=5):
            fast.put("session", b"v2")
            with pytest.raises(LockLostError):
                slow.put("session", b"stale")
    assert fast.get("session") == b"v2"
    raw.close()


def test_cluster_urls_refuse_what_a_cluster_cannot_do(redis_cluster: RedisClusterServers) -> None:
    with pytest.raises(StoreUrlError, match="must not have one"):
        open_store(f"{redis_cluster.url}?prefix=app{{x}}:")
    with pytest.raises(StoreUrlError, match="replicas= is not supported on Redis Cluster"):
        open_store(f"{redis_cluster.url}?replicas=1")


def test_a_plain_redis_url_to_a_cluster_node_does_not_pretend_to_be_a_cluster(
    redis_cluster: RedisClusterServers,
) -> None:
    # A cluster node answers MOVED for keys it does not own: the error says so.
    node = redis_cluster.servers[0]
    store = RedisStore(f"redis://{node.host}:{node.port}/0", prefix="plain:")
    failures = 0
    for i in range(10):
        try:
            store.put(f"n{i}", b"x")
        except StoreError as exc:
            assert "open the cluster as redis+cluster://" in str(exc)
            failures += 1
    assert failures > 0
    store.close()


def test_an_unreachable_cluster_is_a_named_unavailable_error() -> None:
    with pytest.raises(StoreUnavailableError, match="unavailable") as info:
        RedisStore("redis+cluster://:cluster-pw@127.0.0.1:1,127.0.0.1:2?lease=1")
    assert "redis+cluster://:***@127.0.0.1:1,127.0.0.1:2" in str(info.value)
    assert "cluster-pw" not in str(info.value)


def test_store_migrate_moves_single_server_keys_onto_the_cluster(
    redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    # The documented way from one server to a cluster, whose keys carry hash tags.
    with RedisServer(appendonly=False) as single, FakePds() as pds:
        source = RedisStore(single.url, prefix="move:")
        pds.create_account("move.test", "move password")
        with PersistentSessionManager(None, pds.url, store=source) as manager:
            manager.login("move.test", "move password")
        sessions = dict(source.items())
        assert len(sessions) == 2  # the session and the record of its issuing service
        done = run_store_cli(
            "migrate",
            "--from",
            f"{single.url}?prefix=move:",
            "--to",
            f"{redis_cluster.url}?prefix=moved:",
            cwd=tmp_path,
        )
        source.close()
    assert done.returncode == 0, done.stdout + done.stderr
    target = RedisStore(f"{redis_cluster.url}?prefix=moved:")
    assert dict(target.items()) == sessions
    target.close()
