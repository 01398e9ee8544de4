"""Holders of one HAC session renew it once between them, even when one dies.

Each worker is a real process with its own HacClient on one cache directory
(threads of one client without a cache share its private store instead); the
server is the bundled FakeHac on 127.0.0.1, which counts every request.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sessionkeeper.hac.auth import BasicAuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.session import SessionManager, session_name
from sessionkeeper.testing.fake_hac import FakeHac

pytestmark = pytest.mark.timeout(120)

GROOVY = "POST /console/scripting/execute"
LOGIN_POST = "POST /j_spring_security_check"

#: Takes the cached session (no request), says so, waits for its start signal, runs a script.
WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from sessionkeeper.hac.auth import BasicAuthHandler
    from sessionkeeper.hac.client import HacClient
    from sessionkeeper.hac.session import SessionManager

    url, cache, n, ready, go = sys.argv[1:6]
    manager = SessionManager(Path(cache))
    with HacClient(url, BasicAuthHandler("admin", "nimda"), session_manager=manager) as client:
        client.login()
        Path(ready + ".tmp").write_text(client.session_info.session_id)
        Path(ready + ".tmp").rename(ready)  # whole, or not there yet
        while not Path(go).exists():
            time.sleep(0.005)
        print(client.execute_groovy("return " + n).execution_result)
    """
)


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac() as server:
        yield server


def _warm_cache(fake: FakeHac, cache: Path) -> str:
    """Log in once; return the session id every worker will start from."""
    manager = SessionManager(cache)
    with HacClient(fake.url, BasicAuthHandler("admin", "nimda"), session_manager=manager) as c:
        c.login()
    cached = manager.load_session(fake.url, "admin", "local")
    assert cached is not None
    return cached.session_id


def _wait_for(condition: Callable[[], bool], workers: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        for worker in workers:
            assert worker.poll() is None, f"a worker ended early: {worker.communicate()}"
        assert time.monotonic() < deadline, "workers did not get there within 60 s"
        time.sleep(0.01)


def _spawn(
    script: Path, fake: FakeHac, cache: Path, n: int, tmp_path: Path, go: Path
) -> tuple[subprocess.Popen[str], Path]:
    ready = tmp_path / f"ready-{n}"
    worker = subprocess.Popen(
        [sys.executable, str(script), fake.url, str(cache), str(n), str(ready), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return worker, ready


def _lock_holder(lock_file: Path) -> int | None:
    """The pid holding an ``flock`` on ``lock_file`` (from /proc/locks), if any."""
    inode = lock_file.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":  # "->" lines are waiters, not holders
            continue
        if int(fields[5].rsplit(":", 1)[1]) == inode:
            return int(fields[4])
    return None


@pytest.mark.parametrize("processes", [4])
def test_processes_whose_session_dies_at_once_log_in_once_between_them(
    processes: int, fake: FakeHac, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    dead = _warm_cache(fake, cache)
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "go"
    spawned = [_spawn(script, fake, cache, n, tmp_path, go) for n in range(processes)]
    workers = [worker for worker, _ in spawned]
    try:
        _wait_for(lambda: all(ready.exists() for _, ready in spawned), workers)
        assert {ready.read_text() for _, ready in spawned} == {dead}  # all hold one session
        fake.kill_all_sessions()  # a server restart: every process meets it at once
        fake.reset_counts()
        fake.latency = 0.05  # so the renewals overlap
        go.touch()
        for n, worker in enumerate(workers):
            out, err = worker.communicate(timeout=90)
            assert worker.returncode == 0, err
            assert out.strip() == str(n)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert fake.logins == 1
    assert fake.counts[LOGIN_POST] == 1
    assert fake.counts["GET /login"] == 1
    # Each process: its request with the dead session, then its replay with the new one.
    assert fake.counts[GROOVY] == 2 * processes
    assert sorted(run.script for run in fake.groovy_runs) == sorted(
        f"return {n}" for n in range(processes)
    )
    renewed = SessionManager(cache).load_session(fake.url, "admin", "local")
    assert renewed is not None and renewed.session_id != dead


def test_a_process_killed_while_logging_in_leaves_the_others_working(
    fake: FakeHac, tmp_path: Path
) -> None:
    processes = 4
    cache = tmp_path / "cache"
    dead = _warm_cache(fake, cache)
    lock_file = cache / f".{session_name(fake.url, 'admin', 'local')}.lock"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    go = tmp_path / "go"
    spawned = [_spawn(script, fake, cache, n, tmp_path, go) for n in range(processes)]
    workers = {worker.pid: worker for worker, _ in spawned}
    try:
        _wait_for(lambda: all(ready.exists() for _, ready in spawned), list(workers.values()))
        fake.kill_all_sessions()
        fake.reset_counts()
        fake.latency = 0.4  # the login takes a while: the others queue on the session's lock
        go.touch()
        # The process that won the lock is the one whose login the server now sees.
        _wait_for(lambda: fake.counts["GET /login"] >= 1, list(workers.values()))
        holder = _lock_holder(lock_file)
        assert holder in workers, f"the lock is held by {holder}, not by a worker"
        logins_before_the_kill = fake.counts[LOGIN_POST]
        os.kill(holder, signal.SIGKILL)
        victim = workers.pop(holder)
        victim.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL
        fake.latency = 0.0
        for worker in workers.values():
            out, err = worker.communicate(timeout=90)
            assert worker.returncode == 0, err
            assert out.strip().isdigit()
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    # The survivors logged in exactly once between them, after the victim's lock was freed.
    assert fake.counts[LOGIN_POST] - logins_before_the_kill == 1
    survivors = {f"return {n}" for n in range(processes)} - {
        f"return {n}" for n, (worker, _) in enumerate(spawned) if worker.pid == holder
    }
    assert {run.script for run in fake.groovy_runs} >= survivors
    renewed = SessionManager(cache).load_session(fake.url, "admin", "local")
    assert renewed is not None and renewed.session_id != dead
    assert _lock_holder(lock_file) is None


def test_threads_of_a_client_without_a_cache_renew_a_dead_session_once(fake: FakeHac) -> None:
    with HacClient(
        fake.url, BasicAuthHandler("admin", "nimda"), session_persistence=False
    ) as client:
        client.login()
        fake.kill_all_sessions()
        fake.latency = 0.02  # so the threads meet the dead session together
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                assert client.execute_groovy(f"return {n}").execution_result == str(n)
            except BaseException as exc:  # collected and re-raised in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert fake.logins == 2  # the first login and exactly one renewal, kept in memory only
    assert len(fake.groovy_runs) == 6
