"""RedisStore through Sentinel: a real master, replica and 3 Sentinels, and a failover.

Processes refresh one ATProto session through the store while the master is
SIGKILLed and the Sentinels promote the replica. What the fake PDS and the
store saw afterwards is counted: no stale write accepted, at most one refresh
per token generation (beyond generations whose new pair could not be stored),
named errors while no master is reachable, no acknowledged write lost.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.stores import Store, StoreError, StoreUnavailableError
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.testing import FakePds
from sessionkeeper.testing.redis_server import RedisSentinelGroup
from sessionkeeper.testing.store_conformance import SharedStoreConformance
from tests.redis_fixture import require_redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(150)]

REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"
GET_SESSION = "com.atproto.server.getSession"
PASSWORD = "correct horse battery staple"
#: Every write waits for the replica, so what was acknowledged survives the failover.
OPTIONS = "lease=2&replicas=1&replicas_timeout=0.5"
#: The data servers' password, with characters a URL must encode.
SECRET = "fail#over/pa?ss@word"


def wait_for(condition: Callable[[], object], what: str, limit: float = 60.0) -> None:
    """Poll ``condition()`` every 10 ms; fail naming ``what`` after ``limit`` seconds."""
    pause = threading.Event()
    for _ in range(int(limit * 100)):
        if condition():
            return
        pause.wait(0.01)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture(scope="module")
def steady_group() -> Iterator[RedisSentinelGroup]:
    require_redis_server()
    with RedisSentinelGroup(replicas=1, sentinels=3) as group:
        yield group


class TestRedisSentinelConformance(SharedStoreConformance):
    """The Store contract through Sentinel, every write confirmed by the replica."""

    @pytest.fixture
    def store_url(self, steady_group: RedisSentinelGroup) -> str:
        return f"{steady_group.url}?prefix=s-{secrets.token_hex(4)}:&lease=2&replicas=1"

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[Store]:
        store = RedisStore(store_url)
        yield store
        store.close()

    def lock_recovery_seconds(self) -> float:
        return 2.5


@pytest.fixture
def sentinel_group() -> Iterator[RedisSentinelGroup]:
    require_redis_server()
    with RedisSentinelGroup(replicas=1, sentinels=3, down_after_ms=1000, password=SECRET) as group:
        yield group


WORKER = textwrap.dedent(
    """
    import json, logging, sys, threading, time
    from pathlib import Path
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.stores import LockTimeoutError, StoreUnavailableError
    from sessionkeeper.stores.url import open_store

    store_url, pds_url, did, stop_file, threads = sys.argv[1:6]
    guard = threading.Lock()
    unsaved = []

    class Unsaved(logging.Handler):
        # The refresh flow logs this when the PDS rotated but the store refused the write.
        def emit(self, record):
            if "could not store the new tokens" in record.getMessage():
                with guard:
                    unsaved.append(record.getMessage()[:200])

    logging.getLogger("sessionkeeper").addHandler(Unsaved(logging.ERROR))
    results = []

    def work():
        store = open_store(store_url)
        manager = PersistentSessionManager(None, pds_url, store=store)
        manager.load_session(did)
        with guard:
            print("ready", flush=True)
        ok, named, messages, unexpected = 0, 0, [], []
        while not Path(stop_file).exists():
            try:
                manager.refresh_token()
                manager.query("com.atproto.server.getSession")
                ok += 1
            except (StoreUnavailableError, LockTimeoutError) as exc:
                named += 1
                messages.append(f"{type(exc).__name__}: {exc}"[:300])
            except Exception as exc:
                unexpected.append(f"{type(exc).__name__}: {exc}"[:300])
            time.sleep(0.02)
        with guard:
            results.append(
                {"ok": ok, "named": named, "messages": messages[-5:], "unexpected": unexpected}
            )

    workers = [threading.Thread(target=work) for _ in range(int(threads))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"threads": results, "unsaved": unsaved}), flush=True)
    """
)


class AckedWriter:
    """Writes 1, 2, 3... to one name; remembers the last value the store acknowledged."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.acked = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        value = 0
        while not self._stop.is_set():
            value += 1
            try:
                self.store.put("acked", str(value).encode())
                self.acked = value
            except StoreError:
                self.failed += 1
            self._stop.wait(0.01)

    def __enter__(self) -> AckedWriter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_a_sigkilled_master_fails_over_without_stale_writes_or_lost_acknowledged_ones(
    sentinel_group: RedisSentinelGroup, tmp_path: Path
) -> None:
    store_url = f"{sentinel_group.url}?prefix=failover:&{OPTIONS}"
    stop_file = tmp_path / "stop"
    old_master = sentinel_group.master
    replica = sentinel_group.replicas[0]
    with FakePds(access_lifetime=3600) as pds:
        did = pds.create_account("failover.test", PASSWORD)
        seed = RedisStore(store_url)
        with PersistentSessionManager(None, pds.url, store=seed) as manager:
            manager.login("failover.test", PASSWORD)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, store_url, pds.url, did, str(stop_file), "2"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        try:
            for proc in procs:  # every thread has loaded the session before the kill
                assert proc.stdout is not None
                assert [proc.stdout.readline().strip() for _ in range(2)] == ["ready"] * 2
            with AckedWriter(RedisStore(store_url)) as writer:
                wait_for(lambda: pds.counts[REFRESH] >= 10, "refreshes before the failover")
                wait_for(lambda: writer.acked >= 5, "acknowledged writes before the failover")
                old_master.kill()  # SIGKILL, mid-run
                acked_at_kill = writer.acked
                refreshes_at_kill = pds.counts[REFRESH]
                sentinel_group.wait_for_master(replica.port)
                sentinel_group.rejoin_as_replica(old_master)
                wait_for(
                    lambda: pds.counts[REFRESH] >= refreshes_at_kill + 10,
                    "refreshes after the failover",
                )
                wait_for(lambda: writer.acked > acked_at_kill, "acknowledged writes after it")
        finally:
            stop_file.touch()
            outputs = [proc.communicate(timeout=60)[0] for proc in procs]
        assert not any("pa?ss" in out or "fail#" in out for out in outputs)
        assert [proc.returncode for proc in procs] == [0, 0]
        reports = [json.loads(out) for out in outputs]
        threads = [t for report in reports for t in report["threads"]]
        unsaved = [m for report in reports for m in report["unsaved"]]

        # Errors while no master was reachable were named ones, and there were some.
        assert [t["unexpected"] for t in threads] == [[]] * 4
        assert sum(t["named"] for t in threads) > 0, threads
        assert all(t["ok"] > 0 for t in threads)
        for message in (m for t in threads for m in t["messages"]):
            kind = message.split(":", 1)[0]
            assert kind in {"StoreUnavailableError", "LockTimeoutError"}, message
            if kind == "StoreUnavailableError":  # names the store, hides the password
                assert message.startswith("StoreUnavailableError: Redis at redis+sentinel://:***@")

        # One refresh per token generation: every refresh but those whose new pair the
        # store could not take used a token no one had used before (a stale write
        # putting back an older pair would show here as a reused token).
        generations = pds.live_refresh_tokens(did) - 1
        reused = pds.counts[REFRESH] - generations
        assert reused <= len(unsaved), (reused, unsaved)
        assert pds.errors.get(REFRESH, 0) == 0
        assert pds.counts[CREATE] == 1  # nobody had to log in again

        # Nothing acknowledged was lost: the promoted replica had every confirmed write.
        check = RedisStore(store_url)
        assert int(check.get("acked") or b"0") >= writer.acked >= acked_at_kill > 0
        with PersistentSessionManager(None, pds.url, store=check) as survivor:
            assert survivor.load_session(did) is not None
            survivor.refresh_token()  # the stored refresh token is the live one
            assert survivor.query(GET_SESSION)["did"] == did
        assert pds.errors.get(REFRESH, 0) == 0
        assert sentinel_group.master_port() == replica.port
        check.close()
        seed.close()


def test_no_reachable_sentinel_is_a_named_unavailable_error() -> None:
    store = RedisStore("redis+sentinel://:pw-sentinel-test@127.0.0.1:1/svc?lease=1")
    with pytest.raises(StoreUnavailableError, match="unavailable") as info:
        store.put("k", b"v")
    assert "redis+sentinel://:***@127.0.0.1:1/svc" in str(info.value)
    assert "pw-sentinel-test" not in str(info.value)
