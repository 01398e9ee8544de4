"""RedisStore against a real redis-server: the Store contract, leases, fencing, outages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from sessionkeeper.stores import (
    MAX_VALUE_BYTES,
    LockLostError,
    LockTimeoutError,
    Store,
    StoreUnavailableError,
    StoreUrlError,
    ValueTooLargeError,
)
from sessionkeeper.stores.redis.store import RedisStore, redact_url
from sessionkeeper.stores.url import open_store
from sessionkeeper.testing.redis_server import RedisServer, RedisServerError
from sessionkeeper.testing.store_conformance import SharedStoreConformance
from tests.redis_fixture import require_redis_server

pytestmark = [pytest.mark.redis, pytest.mark.timeout(120)]

Factory = Callable[..., RedisStore]
LEASE = 2.0


def _raw(server: RedisServer) -> redis.Redis[bytes]:
    return redis.Redis.from_url(server.url)


class TestRedisStoreConformance(SharedStoreConformance):
    @pytest.fixture
    def store(self, redis_store_factory: Factory) -> Store:
        return redis_store_factory(lease=LEASE)

    @pytest.fixture
    def store_url(self, redis_server: RedisServer, store: RedisStore) -> str:
        return f"{redis_server.url}?prefix={store.prefix}&lease={LEASE:g}"

    def lock_recovery_seconds(self) -> float:
        # A dead holder keeps a Redis lock until its lease ends, plus one poll interval.
        return LEASE + 0.5


def test_values_live_under_the_prefix_and_names_strip_it(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory(prefix="glob*[x]?:")
    other = redis_store_factory(prefix="glob-other:")
    store.put("b", b"2")
    store.put("a", b"1")
    other.put("z", b"9")
    assert store.names() == ["a", "b"]
    assert other.names() == ["z"]
    assert _raw(redis_server).get("glob*[x]?:v:a") == b"1"


def test_oversized_values_written_by_others_are_refused_on_every_read(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory()
    _raw(redis_server).set(f"{store.prefix}v:huge", b"x" * (MAX_VALUE_BYTES + 1))
    with pytest.raises(ValueTooLargeError, match="'huge'"):
        store.get("huge")
    with pytest.raises(ValueTooLargeError, match="'huge'"):
        list(store.items())


def test_ttl_is_applied_on_every_put(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory(ttl=300)
    store.put("k", b"v")
    raw = _raw(redis_server)
    ttl_ms = raw.pttl(f"{store.prefix}v:k")
    assert 0 < ttl_ms <= 300_000
    with store.lock("k"):
        store.put("k", b"w")
    assert 0 < raw.pttl(f"{store.prefix}v:k") <= 300_000
    plain = redis_store_factory(prefix=store.prefix)
    plain.put("k", b"x")
    assert raw.pttl(f"{store.prefix}v:k") == -1  # no TTL: kept until deleted


def test_url_query_configures_prefix_lease_and_ttl(redis_server: RedisServer) -> None:
    store = RedisStore(f"{redis_server.url}?prefix=q1:&lease=7&ttl=60")
    assert (store.prefix, store.lease, store.ttl) == ("q1:", 7.0, 60.0)
    opened = open_store(f"{redis_server.url}?prefix=q2:&lease=3")
    assert isinstance(opened, RedisStore)
    assert (opened.prefix, opened.lease, opened.ttl) == ("q2:", 3.0, None)
    keyword = RedisStore(f"{redis_server.url}?prefix=q3:&lease=7", prefix="kw:", lease=4)
    assert (keyword.prefix, keyword.lease) == ("kw:", 4.0)  # a keyword given wins


def test_a_holder_past_its_lease_is_fenced_off_when_another_took_the_lock(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    slow = redis_store_factory(lease=0.2, renew=False)
    fast = redis_store_factory(lease=30)
    raw = _raw(redis_server)
    lock_key = f"{slow.prefix}lock:session"
    slow.put("session", b"v1")
    with slow.lock("session"):
        # Wait for the lease to end (a condition, not a duration), as a paused holder would.
        raw_wait_until_gone(raw, lock_key)
        with fast.lock("session", timeout=5):
            fast.put("session", b"v2-from-new-holder")
            with pytest.raises(LockLostError, match="no longer held"):
                slow.put("session", b"v2-from-stale-holder")
            with pytest.raises(LockLostError):
                slow.delete("session")
    assert fast.get("session") == b"v2-from-new-holder"


def test_a_holder_past_its_lease_is_refused_even_if_no_one_took_the_lock(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    # Nothing in Redis can prove that no one held the lock meanwhile (a restart
    # or a failover forgets every trace), so a holder whose lock is gone is refused.
    store = redis_store_factory(lease=0.2, renew=False)
    raw = _raw(redis_server)
    store.put("session", b"before")
    with store.lock("session"):
        raw_wait_until_gone(raw, f"{store.prefix}lock:session")
        with pytest.raises(LockLostError):
            store.put("session", b"after the lease")
    assert store.get("session") == b"before"


def raw_wait_until_gone(raw: redis.Redis[bytes], key: str) -> None:
    """Block until ``key`` no longer exists (bounded by the test timeout)."""
    event = threading.Event()
    while raw.exists(key):
        event.wait(0.02)


def test_release_never_deletes_another_holders_lock(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    slow = redis_store_factory(lease=0.2, renew=False)
    fast = redis_store_factory(lease=30)
    raw = _raw(redis_server)
    lock_key = f"{slow.prefix}lock:n"
    with slow.lock("n"):
        raw_wait_until_gone(raw, lock_key)
        other_has_it = threading.Event()
        done = threading.Event()

        def new_holder() -> None:
            with fast.lock("n", timeout=5):
                other_has_it.set()
                done.wait(10)

        thread = threading.Thread(target=new_holder)
        thread.start()
        other_has_it.wait(5)
    # The stale holder left its block: the new holder's lock must still be there.
    assert raw.exists(lock_key) == 1
    done.set()
    thread.join()
    assert raw.exists(lock_key) == 0


COUNTER = textwrap.dedent(
    """
    import sys
    from sessionkeeper.stores.redis.store import RedisStore
    store = RedisStore(sys.argv[1], prefix=sys.argv[2])
    for _ in range(int(sys.argv[3])):
        with store.lock("counter", timeout=60):
            value = int(store.get("counter") or b"0")
            store.put("counter", str(value + 1).encode())
    """
)


def test_lock_makes_read_modify_write_exact_across_processes(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory()
    procs = [
        subprocess.Popen([sys.executable, "-c", COUNTER, redis_server.url, store.prefix, "50"])
        for _ in range(4)
    ]
    assert [p.wait(timeout=100) for p in procs] == [0, 0, 0, 0]
    assert store.get("counter") == b"200"


HOLDER = textwrap.dedent(
    """
    import sys, time
    from sessionkeeper.stores.redis.store import RedisStore
    store = RedisStore(sys.argv[1], prefix=sys.argv[2], lease=float(sys.argv[3]))
    with store.lock("session"):
        print("locked", flush=True)
        time.sleep(600)
    """
)


def test_lock_of_a_sigkilled_holder_frees_after_its_lease_with_a_new_token(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory(lease=30)
    raw = _raw(redis_server)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, redis_server.url, store.prefix, "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    dead_token = raw.get(f"{store.prefix}lock:session")
    assert dead_token
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with pytest.raises(LockTimeoutError, match="another holder has it; its lease ends in"):
        # A longer-leased contender cannot steal early: only the holder's lease counts.
        blocker = redis_store_factory(lease=30)
        with blocker.lock("session", timeout=0):
            pass
    with store.lock("session", timeout=10):
        assert raw.get(f"{store.prefix}lock:session") not in (None, dead_token)
        store.put("session", b"recovered")
    assert store.get("session") == b"recovered"


def test_unreachable_server_raises_store_unavailable_naming_the_url_not_the_password() -> None:
    require_redis_server()
    with RedisServer(appendonly=False, password="s3cret-pass") as server:
        store = RedisStore(server.url, lease=1)
        store.put("k", b"v")
        assert "s3cret" not in repr(store)
        server.stop()
        for operation in (
            lambda: store.get("k"),
            lambda: store.put("k", b"w"),
            lambda: store.delete("k"),
            store.names,
            lambda: store.lock("k").__enter__(),
        ):
            with pytest.raises(StoreUnavailableError) as info:
                operation()
            message = str(info.value)
            assert f"127.0.0.1:{server.port}" in message
            assert "s3cret" not in message
            assert "***" in message


def test_wrong_password_is_a_clear_unavailable_error() -> None:
    require_redis_server()
    with RedisServer(appendonly=False, password="right-one") as server:
        wrong = server.url.replace("right-one", "wrong-one")
        with pytest.raises(StoreUnavailableError, match="refused the credentials") as info:
            RedisStore(wrong).get("k")
        assert "wrong-one" not in str(info.value)


def test_values_survive_a_server_restart_and_the_store_reconnects(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory()
    store.put("durable", b"before restart")
    redis_server.restart()
    assert store.get("durable") == b"before restart"
    store.put("durable", b"after restart")
    assert store.get("durable") == b"after restart"


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("redis://user:pw@h:6379/0") == "redis://user:***@h:6379/0"
    assert redact_url("redis://:pw@h/1") == "redis://:***@h/1"
    assert redact_url("redis://h:6379/0") == "redis://h:6379/0"
    assert redact_url("redis://h:1/0?password=pw&db=2") == "redis://h:1/0?password=***&db=2"
    assert redact_url("redis://u:pw@h:notaport/0") == "redis://u:***@h:notaport/0"


def test_a_password_given_as_a_query_parameter_stays_out_of_reprs_and_errors() -> None:
    store = RedisStore("redis://127.0.0.1:1/0?password=query-secret", lease=1)
    assert "query-secret" not in repr(store)
    with pytest.raises(StoreUnavailableError) as info:
        store.get("k")
    assert "query-secret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


@pytest.mark.parametrize("query", ["lease=abc", "lease=0", "ttl=-5", "ttl=soon"])
def test_a_bad_store_option_in_a_url_is_a_store_url_error_naming_it(query: str) -> None:
    option = query.split("=")[0]
    with pytest.raises(StoreUrlError, match=option):
        open_store(f"redis://127.0.0.1:1/0?{query}")


def test_missing_binary_gives_a_named_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RedisServerError, match="make redis-server"):
        RedisServer(appendonly=False).start()
    with pytest.raises(RedisServerError, match="not executable"):
        RedisServer(appendonly=False, binary=str(tmp_path)).start()


def test_a_server_that_never_answers_fails_with_its_log_and_leaves_no_temp_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fake = tmp_path / "bin" / "redis-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Fatal: cannot listen'\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(RedisServerError, match="cannot listen"), RedisServer(binary=str(fake)):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin"]


def test_release_leaves_one_expiring_wake_signal_for_waiters(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory(lease=5)
    raw = _raw(redis_server)
    wake_key = f"{store.prefix}wake:n"
    for _ in range(3):
        with store.lock("n"):
            pass
    assert raw.llen(wake_key) == 1  # capped: unclaimed signals never pile up
    assert 0 < raw.pttl(wake_key) <= 5000


def test_a_waiter_blocked_on_the_wake_signal_gets_the_lock_when_it_is_released(
    redis_store_factory: Factory,
) -> None:
    store = redis_store_factory(lease=60)
    holding, acquired = threading.Event(), threading.Event()
    release = threading.Event()

    def holder() -> None:
        with store.lock("n"):
            holding.set()
            release.wait(30)

    def waiter() -> None:
        with store.lock("n", timeout=30):
            acquired.set()

    first = threading.Thread(target=holder)
    first.start()
    holding.wait(10)
    second = threading.Thread(target=waiter)
    second.start()
    assert not acquired.wait(0.3)  # still held: the waiter blocks
    release.set()
    first.join()
    second.join(timeout=30)
    assert acquired.is_set()


def test_missing_redis_server_skips_locally_but_fails_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="make redis-server"):
        require_redis_server()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have every real component"):
        require_redis_server()


def test_a_live_holder_keeps_its_lock_past_the_lease_by_renewing_it(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory(lease=0.3)
    other = redis_store_factory(lease=0.3)
    raw = _raw(redis_server)
    lock_key = f"{store.prefix}lock:session"
    with store.lock("session"):
        renewals, last = 0, raw.pttl(lock_key)
        pause = threading.Event()
        while renewals < 4:  # several whole leases pass while we hold the lock
            pause.wait(0.02)
            now = raw.pttl(lock_key)
            assert now > 0, "the lease ran out while its holder was alive"
            renewals += now > last
            last = now
        with pytest.raises(LockTimeoutError), other.lock("session", timeout=0):
            pass
        store.put("session", b"written after many leases")
    assert store.get("session") == b"written after many leases"
    assert raw.exists(lock_key) == 0


STOPPABLE_HOLDER = textwrap.dedent(
    """
    import sys
    from sessionkeeper.stores import LockLostError
    from sessionkeeper.stores.redis.store import RedisStore
    store = RedisStore(sys.argv[1], prefix=sys.argv[2], lease=0.5)
    with store.lock("session"):
        print("locked", flush=True)
        sys.stdin.readline()
        try:
            store.put("session", b"from the stopped holder")
            print("written", flush=True)
        except LockLostError:
            print("lost", flush=True)
    """
)


def test_a_stopped_holder_stops_renewing_and_is_fenced_off_when_it_resumes(
    redis_server: RedisServer, redis_store_factory: Factory
) -> None:
    store = redis_store_factory(lease=30)
    raw = _raw(redis_server)
    holder = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE_HOLDER, redis_server.url, store.prefix],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        os.kill(holder.pid, signal.SIGSTOP)  # a frozen VM, a long GC pause
        raw_wait_until_gone(raw, f"{store.prefix}lock:session")
        with store.lock("session", timeout=10):
            store.put("session", b"from the new holder")
        os.kill(holder.pid, signal.SIGCONT)
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "lost"
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            os.kill(holder.pid, signal.SIGCONT)
            holder.kill()
        holder.wait()
    assert store.get("session") == b"from the new holder"
