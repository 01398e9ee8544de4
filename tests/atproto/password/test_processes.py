"""Processes sharing one session directory: one refresh for all, and kill -9 loses nothing.

This file is also the worker: ``python test_atproto_processes.py worker ...`` runs
one process that loads the shared session, waits for the start signal, and
makes calls from several threads.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import PersistentSessionManager, name_for_did
from sessionkeeper.clock import ManualClock
from sessionkeeper.testing.fake_pds import FakePds

REFRESH = "com.atproto.server.refreshSession"
GET_SESSION = "com.atproto.server.getSession"
WORKER = Path(__file__).resolve()


class OffsetClock:
    """The system clock shifted by a fixed number of seconds."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def worker(argv: list[str]) -> int:
    """One process: load the session, wait for the go file, call from N threads, report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--did", required=True)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--clock-offset", type=float, default=0.0)
    parser.add_argument("--margin", type=float, default=120.0)
    parser.add_argument("--ready", default=None)
    parser.add_argument("--go", default=None)
    parser.add_argument("--hang", choices=["before-refresh", "after-refresh-answer"])
    args = parser.parse_args(argv)

    def hang_on_request(request: httpx.Request) -> None:
        if args.hang == "before-refresh" and request.url.path.endswith(REFRESH):
            print("REFRESH_LOCKED", flush=True)
            time.sleep(600)

    def hang_on_response(response: httpx.Response) -> None:
        if args.hang == "after-refresh-answer" and response.url.path.endswith(REFRESH):
            response.read()
            print("REFRESH_ANSWERED", flush=True)
            time.sleep(600)

    http = httpx.Client(event_hooks={"request": [hang_on_request], "response": [hang_on_response]})
    manager = PersistentSessionManager(
        args.dir,
        args.url,
        clock=OffsetClock(args.clock_offset),
        http=http,
        refresh_margin=args.margin,
    )
    if manager.load_session(args.did) is None:
        print(json.dumps({"error": "no session"}), flush=True)
        return 1
    if args.ready:
        Path(args.ready).touch()
    if args.go:
        deadline = time.monotonic() + 60
        while not os.path.exists(args.go):
            if time.monotonic() > deadline:
                return 2
            time.sleep(0.005)
    ok = 0
    failures: list[str] = []
    guard = threading.Lock()

    def calls() -> None:
        nonlocal ok
        for _ in range(args.calls):
            try:
                manager.query(GET_SESSION)
            except Exception as exc:
                with guard:
                    failures.append(f"{type(exc).__name__}: {exc}")
            else:
                with guard:
                    ok += 1

    threads = [threading.Thread(target=calls) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    session = manager.session
    report: dict[str, Any] = {
        "ok": ok,
        "failed": failures,
        "access": session.access_jwt if session else None,
        "refresh": session.refresh_jwt if session else None,
    }
    print(json.dumps(report), flush=True)
    manager.close()
    return 0


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), "worker", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def fake_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def pds(fake_clock: ManualClock) -> Iterator[FakePds]:
    with FakePds(clock=fake_clock, grace_period=0) as fake:
        yield fake


def stampede(
    tmp_path: Path,
    pds: FakePds,
    did: str,
    processes: int,
    clock_offset: float,
    margin: float = 120.0,
    threads: int = 4,
    calls: int = 3,
) -> list[dict[str, Any]]:
    go = tmp_path / "go"
    workers = [
        spawn(
            "--dir",
            str(tmp_path / "sessions"),
            "--url",
            pds.url,
            "--did",
            did,
            "--threads",
            str(threads),
            "--calls",
            str(calls),
            "--clock-offset",
            str(clock_offset),
            "--margin",
            str(margin),
            "--ready",
            str(tmp_path / f"ready-{i}"),
            "--go",
            str(go),
        )
        for i in range(processes)
    ]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{i}").exists() for i in range(processes)):
        assert time.monotonic() < deadline, "workers did not get ready"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.01)
    go.touch()  # every process crosses the expiry at once
    reports = []
    for w in workers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


@pytest.mark.timeout(120)
@pytest.mark.parametrize("path", ["reactive", "proactive", "margin-longer-than-lifetime"])
def test_refresh_is_single_flight_across_processes(
    tmp_path: Path, pds: FakePds, fake_clock: ManualClock, path: str
) -> None:
    did = pds.create_account("bot.test", "bot-pass")
    with PersistentSessionManager(tmp_path / "sessions", pds.url) as m:
        m.login("bot.test", "bot-pass")
    # The server's clock passes the access token's exp. Reactive: the workers do not
    # know (their clock is real), so their calls are refused with ExpiredToken.
    # Proactive: their clock moved as far, so they refresh before calling.
    # Margin longer than the token's life: every token is due at once, so the
    # waiting processes must adopt the first one's pair rather than refresh again.
    if path != "margin-longer-than-lifetime":
        fake_clock.advance(7201)
    pds.reset_counts()
    processes = 6 if path == "reactive" else 4
    offset = 7201.0 if path == "proactive" else 0.0
    long_margin = path == "margin-longer-than-lifetime"
    # With such a margin every call is due, so each process makes one call only.
    threads, calls = (1, 1) if long_margin else (4, 3)
    margin = 100_000.0 if long_margin else 120.0
    reports = stampede(tmp_path, pds, did, processes, offset, margin, threads, calls)
    assert pds.counts[REFRESH] == 1
    assert [r["failed"] for r in reports] == [[]] * processes
    assert sum(r["ok"] for r in reports) == processes * threads * calls
    stored = json.loads((tmp_path / "sessions" / name_for_did(did)).read_text())
    assert {(r["access"], r["refresh"]) for r in reports} == {
        (stored["accessJwt"], stored["refreshJwt"])
    }
    if path != "reactive":
        assert pds.errors[GET_SESSION] == 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("moment", ["before-refresh", "after-refresh-answer"])
def test_a_process_killed_mid_refresh_does_not_lose_the_session(
    tmp_path: Path, moment: str
) -> None:
    # Default grace period: a refresh token whose rotation answer was lost with the
    # killed process can still be used once more by the next process.
    fake_clock = ManualClock()
    with FakePds(clock=fake_clock) as pds:
        did = pds.create_account("bot.test", "bot-pass")
        with PersistentSessionManager(tmp_path / "sessions", pds.url) as m:
            before = m.login("bot.test", "bot-pass")
        fake_clock.advance(7201)
        victim = spawn(
            "--dir",
            str(tmp_path / "sessions"),
            "--url",
            pds.url,
            "--did",
            did,
            "--threads",
            "1",
            "--calls",
            "1",
            "--hang",
            moment,
        )
        assert victim.stdout is not None
        line = victim.stdout.readline()
        assert line.strip() in {"REFRESH_LOCKED", "REFRESH_ANSWERED"}, victim.communicate()
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        stored = json.loads((tmp_path / "sessions" / name_for_did(did)).read_text())
        assert stored == before.to_json_dict()  # the old pair is intact, not half-written
        survivor = spawn(
            "--dir",
            str(tmp_path / "sessions"),
            "--url",
            pds.url,
            "--did",
            did,
            "--threads",
            "2",
            "--calls",
            "2",
        )
        out, err = survivor.communicate(timeout=60)
        report = json.loads(out.strip().splitlines()[-1])
        assert report["failed"] == [] and report["ok"] == 4, err
        stored = json.loads((tmp_path / "sessions" / name_for_did(did)).read_text())
        assert stored["refreshJwt"] == report["refresh"] != before.refresh_jwt
        expected = 1 if moment == "before-refresh" else 2
        assert pds.counts[REFRESH] == expected


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    sys.exit(worker(sys.argv[2:]))
