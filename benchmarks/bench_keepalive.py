"""keepalive over a large store, and lost refresh answers recovered without a login.

(a) 10,000 stored app-password sessions in each store (directory, sqlite,
redis), of which 1% have a refresh token lapsing within the window (real
sessions of a fake PDS whose clock started 85 days back); the rest are due in
90 days and are never sent. Measured: refreshSession requests (target: exactly
the 100 due), and keepalive's wall time against a plain scan of the same store
(reading and decoding every session), in the same run.

(b) 20 times: a process refreshes a session and is SIGKILLed after the server
answered, before the store write; the next holder refreshes. On a server with
the reference PDS's 2-hour grace every lost answer is recovered. Target: 0
createSession calls.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jwt

from _table import print_table, verdict
from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.atproto.codec import encode_session, name_for_did
from sessionkeeper.atproto.listing import stored_sessions
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.clock import ManualClock
from sessionkeeper.maintenance.keepalive import Action, keepalive
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.stores.sqlite import SqliteStore
from sessionkeeper.testing import FakePds
from sessionkeeper.testing.redis_server import RedisServer

DAY = 86400.0
SESSIONS, DUE = 10_000, 100
KILLS = 20
REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"


def synthetic(index: int, now: float) -> AtpSessionData:
    """A well-formed session whose refresh token lapses in 90 days (never sent anywhere)."""
    did = f"did:plc:bench{index:020d}"
    key = b"not-the-key-of-any-server-32byte"
    access = jwt.encode({"sub": did, "exp": int(now + 7200), "scope": "com.atproto.access"}, key)
    refresh = jwt.encode(
        {"sub": did, "exp": int(now + 90 * DAY), "jti": str(index), "scope": "com.atproto.refresh"},
        key,
    )
    return AtpSessionData(refresh, access, f"bench{index}.test", did)


def fill(store: Store, pds: FakePds, clock: ManualClock, prefix: str) -> None:
    """DUE real sessions made 85 days ago on ``pds``, and SESSIONS - DUE synthetic ones."""
    for index in range(DUE):
        handle = f"{prefix}{index}.test"
        pds.create_account(handle, "pw")
        with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
            manager.login(handle, "pw")
    now = time.time()
    for index in range(SESSIONS - DUE):
        session = synthetic(index, now)
        store.put(name_for_did(session.did), encode_session(session))


def scan_and_keepalive(store: Store, pds: FakePds) -> list[str]:
    """One store: scan time, keepalive time and what it sent."""
    started = time.perf_counter()
    listed = stored_sessions(store)
    scan = time.perf_counter() - started
    pds.reset_counts()
    started = time.perf_counter()
    report = keepalive(store, within=7 * DAY, service=pds.url)
    took = time.perf_counter() - started
    refreshed = sum(row.action is Action.REFRESHED for row in report)
    sent = pds.counts[REFRESH]
    ok = len(listed) == SESSIONS and sent == DUE == refreshed
    return [
        f"{len(listed):,}",
        f"{sent} / {DUE}",
        f"{scan:.2f} s",
        f"{took:.2f} s",
        f"{took / scan:.2f}",
        verdict(ok),
    ]


def keepalive_rows(tmp: Path, redis_url: str) -> list[list[str]]:
    rows = []
    stores: list[tuple[str, Any]] = [
        ("directory", lambda: DirectoryStore(tmp / "dir")),
        ("sqlite", lambda: SqliteStore(tmp / "sessions.db")),
        ("redis", lambda: RedisStore(redis_url, prefix="bench-keepalive:")),
    ]
    for label, make in stores:
        # The server's clock starts 85 days back: the real sessions' refresh tokens
        # lapse in 5 days by the real clock keepalive uses; then it jumps to now.
        clock = ManualClock(time.time() - 85 * DAY)
        with FakePds(clock=clock) as pds:
            store = make()
            fill(store, pds, clock, label)
            clock.advance(85 * DAY)
            rows.append([label, *scan_and_keepalive(store, pds)])
    return rows


def victim(session_dir: str, url: str, did: str) -> int:
    """Refresh, then hang once the answer is read (before the store write) to be killed."""
    import httpx

    def hang(response: httpx.Response) -> None:
        if response.url.path.endswith(REFRESH):
            response.read()
            print("ANSWERED", flush=True)
            time.sleep(600)

    http = httpx.Client(event_hooks={"response": [hang]})
    with PersistentSessionManager(session_dir, url, http=http) as manager:
        manager.load_session(did)
        manager.refresh_token()
    return 0


def lost_answer_row(tmp: Path) -> list[str]:
    sessions = tmp / "lost"
    with FakePds() as pds:  # the reference PDS's 2-hour grace
        pds.create_account("lost.test", "pw")
        with PersistentSessionManager(sessions, pds.url) as manager:
            did = manager.login("lost.test", "pw").did
        pds.reset_counts()
        detected = _Recoveries()
        logging.getLogger("sessionkeeper").addHandler(detected)
        for _ in range(KILLS):
            process = subprocess.Popen(
                [sys.executable, __file__, "victim", str(sessions), pds.url, did],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert process.stdout is not None
            if process.stdout.readline().strip() != "ANSWERED":
                raise SystemExit("the victim did not reach its refresh answer")
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            with PersistentSessionManager(sessions, pds.url) as survivor:
                survivor.load_session(did)
                survivor.refresh_token()
                survivor.query("com.atproto.server.getSession")
        logging.getLogger("sessionkeeper").removeHandler(detected)
        creates = pds.counts[CREATE]
    recovered = detected.count
    return [str(KILLS), str(recovered), str(creates), verdict(creates == 0 and recovered == KILLS)]


class _Recoveries(logging.Handler):
    """Counts the refreshes that found a lost answer and recovered the session."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("recovered the session"):
            self.count += 1


def main() -> int:
    with tempfile.TemporaryDirectory() as where, RedisServer(appendonly=False) as redis_server:
        tmp = Path(where)
        rows = keepalive_rows(tmp, redis_server.url)
        print_table(
            f"keepalive over {SESSIONS:,} stored sessions, {DUE} due (lapsing within 7 d)",
            [
                "store",
                "sessions",
                "refreshSession sent / due",
                "plain scan",
                "keepalive",
                "keepalive / scan",
                "target: sent = due",
            ],
            rows,
        )
        lost = lost_answer_row(tmp)
        print_table(
            "lost refresh answers (process SIGKILLed after the server answered)",
            [
                "killed refreshes",
                "lost answers detected and recovered",
                "createSession calls",
                "target: 0 createSession",
            ],
            [lost],
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "victim":
        sys.exit(victim(*sys.argv[2:5]))
    os.environ.pop("SESSIONKEEPER_STORE", None)
    sys.exit(main())
