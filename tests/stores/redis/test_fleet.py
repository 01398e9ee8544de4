"""A fleet of processes and threads sharing one ATProto session through Redis.

Real redis-server, real fake PDS over HTTP, real processes (killed with
SIGKILL where the claim is about a dying holder). The fake counts what it saw.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable

import pytest

from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.atproto.codec import name_for_did
from sessionkeeper.atproto.jwt import token_expiry_or_none as jwt_expiry
from sessionkeeper.stores import StoreUnavailableError
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.testing import FakePds
from sessionkeeper.testing.redis_server import RedisServer
from tests.redis_fixture import require_redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"
GET_SESSION = "com.atproto.server.getSession"
PASSWORD = "correct horse battery staple"


def wait_for(condition: Callable[[], object], what: str, limit: int = 3000) -> None:
    """Poll ``condition()`` every 10 ms; fail naming ``what`` after ``limit`` polls."""
    pause = threading.Event()
    for _ in range(limit):
        if condition():
            return
        pause.wait(0.01)
    pytest.fail(f"gave up waiting for {what}")


@pytest.fixture
def prefix() -> str:
    return f"fleet-{secrets.token_hex(4)}:"


FLEET_WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.stores.redis.store import RedisStore

    redis_url, prefix, pds_url, did = sys.argv[1:5]
    threads, deadline, margin = int(sys.argv[5]), float(sys.argv[6]), float(sys.argv[7])
    results, guard = [], threading.Lock()
    barrier = threading.Barrier(threads)

    def work():
        # One manager per thread: each has its own in-memory session, so only the
        # store's lock and re-read keep the refresh single-flight.
        store = RedisStore(redis_url, prefix=prefix, lease=10)
        manager = PersistentSessionManager(None, pds_url, store=store, refresh_margin=margin)
        manager.load_session(did)
        barrier.wait()
        ok, failed, errors = 0, 0, []
        for _ in range(5000):
            if time.time() >= deadline:
                break
            try:
                answer = manager.query("com.atproto.server.getSession")
                ok += answer["did"] == did
            except Exception as exc:
                failed += 1
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
            time.sleep(0.05)
        with guard:
            results.append({"ok": ok, "failed": failed, "errors": errors[:3]})

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps(results), flush=True)
    """
)


@pytest.mark.timeout(180)
def test_sixteen_workers_in_four_processes_cross_expiry_with_exactly_one_refresh(
    redis_server: RedisServer, prefix: str
) -> None:
    lifetime, margin = 10.0, 3.0
    with FakePds(grace_period=0, access_lifetime=lifetime) as pds:
        did = pds.create_account("fleet.test", PASSWORD)
        store = RedisStore(redis_server.url, prefix=prefix)
        with PersistentSessionManager(None, pds.url, store=store) as manager:
            session = manager.login("fleet.test", PASSWORD)
        expires = jwt_expiry(session.access_jwt)
        assert expires is not None
        # Run past the first token's expiry, and stop before the refreshed token
        # (issued at expires - margin at the earliest) is itself due.
        deadline = expires + 1.0
        assert deadline < expires - margin + (lifetime - margin)
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    FLEET_WORKER,
                    redis_server.url,
                    prefix,
                    pds.url,
                    did,
                    "4",
                    repr(deadline),
                    repr(margin),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        outputs = [proc.communicate(timeout=150)[0] for proc in procs]
        assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
        results = [item for out in outputs for item in json.loads(out)]
        assert len(results) == 16
        failures = [r["errors"] for r in results if r["failed"]]
        assert failures == []
        assert all(r["ok"] > 0 for r in results)
        assert pds.counts[REFRESH] == 1
        assert pds.counts[CREATE] == 1
        assert pds.counts[GET_SESSION] == sum(r["ok"] for r in results)
        with PersistentSessionManager(None, pds.url, store=store) as check:
            stored = check.load_session(did)
        assert stored is not None
        assert (jwt_expiry(stored.access_jwt) or 0.0) > expires  # the refreshed pair is stored


SLOW_REFRESHER = textwrap.dedent(
    """
    import sys
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.stores.url import open_store

    store_url, pds_url, did = sys.argv[1:4]
    manager = PersistentSessionManager(None, pds_url, store=open_store(store_url))
    manager.load_session(did)
    manager.refresh_token()
    print("refreshed", flush=True)
    """
)


@pytest.mark.timeout(120)
def test_sigkilled_refresher_loses_no_session_another_refreshes_after_the_lease(
    redis_server: RedisServer, prefix: str
) -> None:
    lease = 2.0
    store_url = f"{redis_server.url}?prefix={prefix}&lease={lease:g}"
    with FakePds(access_lifetime=3600) as pds:
        did = pds.create_account("victim.test", PASSWORD)
        store = RedisStore(redis_server.url, prefix=prefix, lease=lease)
        with PersistentSessionManager(None, pds.url, store=store) as manager:
            manager.login("victim.test", PASSWORD)
        raw = store._client
        lock_key = f"{prefix}lock:{name_for_did(did)}"

        pds.latency = 10.0  # the refresh hangs in flight while we kill its sender
        victim = subprocess.Popen(
            [sys.executable, "-c", SLOW_REFRESHER, store_url, pds.url, did],
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_for(lambda: raw.exists(lock_key) and pds.counts[REFRESH] == 1, "the victim's refresh")
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        pds.latency = 0.0

        survivor = subprocess.run(
            [sys.executable, "-c", SLOW_REFRESHER, store_url, pds.url, did],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert survivor.returncode == 0, survivor.stderr
        assert survivor.stdout.strip() == "refreshed"
        assert pds.counts[REFRESH] == 2  # the victim's (never stored) and the survivor's
        assert pds.counts[CREATE] == 1  # no one had to log in again

        with PersistentSessionManager(None, pds.url, store=store) as check:
            assert check.load_session(did) is not None
            check.refresh_token()  # the stored refresh token is alive
            assert check.query(GET_SESSION)["did"] == did
        assert pds.counts[CREATE] == 1


@pytest.mark.timeout(180)
def test_redis_restart_gives_named_errors_while_down_and_loses_nothing(prefix: str) -> None:
    require_redis_server()
    outcomes: Counter[str] = Counter()
    unexpected: list[str] = []
    messages: list[str] = []
    guard = threading.Lock()
    stop = threading.Event()

    with RedisServer(appendonly=True) as server, FakePds(access_lifetime=3600) as pds:
        did = pds.create_account("restart.test", PASSWORD)
        seed = RedisStore(server.url, prefix=prefix, lease=2)
        with PersistentSessionManager(None, pds.url, store=seed) as manager:
            manager.login("restart.test", PASSWORD)

        def work() -> None:
            store = RedisStore(server.url, prefix=prefix, lease=2, lock_timeout=30)
            for iteration in range(5000):
                if stop.is_set():
                    break
                try:
                    # Like one cron run: load from the store, sometimes refresh, call.
                    with PersistentSessionManager(None, pds.url, store=store) as run:
                        if run.load_session(did) is None:
                            raise AssertionError("session vanished from the store")
                        if iteration % 4 == 0:
                            run.refresh_token()
                        run.query(GET_SESSION)
                    key = "ok"
                except StoreUnavailableError as exc:
                    key = "unavailable"
                    with guard:
                        messages.append(str(exc))
                except Exception as exc:
                    key = "unexpected"
                    with guard:
                        unexpected.append(f"{type(exc).__name__}: {exc}"[:300])
                with guard:
                    outcomes[key] += 1
                stop.wait(0.02)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: outcomes["ok"] >= 20, "calls before the restart")
            server.stop()
            wait_for(lambda: outcomes["unavailable"] >= 8, "calls while redis is down")
            ok_while_down = outcomes["ok"]
            server.start()
            wait_for(lambda: outcomes["ok"] >= ok_while_down + 20, "calls after the restart")
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)

        assert unexpected == []
        assert outcomes["unavailable"] >= 8
        assert all(f"127.0.0.1:{server.port}" in m and "unavailable" in m for m in messages)
        assert pds.counts[CREATE] == 1  # the session survived: nobody logged in again
        with PersistentSessionManager(None, pds.url, store=seed) as check:
            assert check.load_session(did) is not None
            check.refresh_token()
            assert check.query(GET_SESSION)["did"] == did
