"""keepalive at 1k, 10k and 100k stored sessions against a plain scan, and lost answers.

(a) For each store (DirectoryStore, SqliteStore, RedisStore on a real
redis-server) at 1,000, 10,000 and 100,000 stored app-password sessions: 1% are
real sessions, logged in through the manager on a fake PDS whose clock started
85 days back, so their refresh tokens lapse within the 7-day window; the rest
are due in 90 days and are never sent. All are written straight into the
store's medium. Measured: refreshSession requests (exactly the due count at
every size, else the run fails); keepalive's wall time (once: it refreshes the
due sessions); then keepalive again with nothing due (its scan and judgement
alone) in alternating rounds with its floor, a plain scan of the same store
(``stored_sessions``: reading and decoding every session).

(b) 20 times: a process refreshes a session and is SIGKILLed after the server
answered, before the store write; the next holder refreshes. On a server with
the reference PDS's 2-hour grace every lost answer is recovered. Target: 0
createSession calls.

    python benchmarks/bench_keepalive.py [--sizes 1000,10000,100000] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt

from _charts import Series, line_chart
from _report import markdown_table, write_outputs
from _sessions import fill, password_sessions
from _table import paired, print_table, verdict
from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.atproto.listing import stored_sessions
from sessionkeeper.clock import ManualClock
from sessionkeeper.maintenance.keepalive import Action, KeptAlive, keepalive
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.stores.sqlite import SqliteStore
from sessionkeeper.testing import FakePds
from sessionkeeper.testing.redis_server import RedisServer

DAY = 86400.0
WITHIN = 7 * DAY
KILLS = 20
REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"
KINDS = ("dir", "sqlite", "redis")
LABELS = {"dir": "DirectoryStore", "sqlite": "SqliteStore", "redis": "RedisStore"}


def lapsing_in_90_days(now: float) -> Callable[[int, str], tuple[str, str]]:
    """Tokens of a well-formed session whose refresh token lapses in 90 days.

    Signed with a key no server holds: keepalive only reads their ``exp``, and
    never sends them, since they are not due.
    """
    key = b"not-the-key-of-any-server-32byte"

    def tokens(number: int, did: str) -> tuple[str, str]:
        refresh = {"sub": did, "exp": int(now + 90 * DAY), "jti": str(number)}
        access = {"sub": did, "exp": int(now + 7200), "scope": "com.atproto.access"}
        return (
            jwt.encode({**refresh, "scope": "com.atproto.refresh"}, key),
            jwt.encode(access, key),
        )

    return tokens


@contextmanager
def opened(kind: str, tmp: Path, redis_url: str) -> Iterator[Store]:
    """A fresh, empty store of ``kind``."""
    if kind == "dir":
        yield DirectoryStore(tmp / f"dir-{secrets.token_hex(3)}")
    elif kind == "sqlite":
        yield SqliteStore(tmp / f"{secrets.token_hex(3)}.db")
    else:
        store = RedisStore(redis_url, prefix=f"keepalive-{secrets.token_hex(3)}:")
        try:
            yield store
        finally:
            store._client.flushall()
            store.close()


def log_in_due(pds: FakePds, clock: ManualClock, due: int) -> Iterator[tuple[str, bytes]]:
    """The stored entries of ``due`` real sessions, logged in through the manager on ``pds``.

    Each login goes to a store of its own: a login by handle reads every stored
    session to find one to reuse, so a thousand logins into one store would cost
    a thousand growing scans. The entries (session and issuer record, as the
    manager wrote them) are then written into the measured store with the rest.
    """
    with httpx.Client() as http:
        for index in range(due):
            handle = f"due{index}.test"
            pds.create_account(handle, "pw")
            scratch = MemoryStore()
            with PersistentSessionManager(
                None, pds.url, store=scratch, clock=clock, http=http
            ) as manager:
                manager.login(handle, "pw")
            yield from scratch.items()


def point(store: Store, size: int, synthetic: list[tuple[str, bytes]]) -> dict[str, Any]:
    """One store at ``size`` sessions: keepalive once, the plain scan around it, the counts."""
    due = size // 100
    # The server's clock starts 85 days back: the real sessions' refresh tokens
    # lapse in 5 days by the real clock keepalive uses; then it jumps to now.
    clock = ManualClock(time.time() - 85 * DAY)
    with FakePds(clock=clock) as pds:
        started = time.perf_counter()
        real = list(log_in_due(pds, clock, due))
        logins = time.perf_counter() - started
        fill(store, real + synthetic[: size - due])
        filled = time.perf_counter() - started
        clock.advance(85 * DAY)
        repeat = 1 if size >= 100_000 else 3 if size >= 10_000 else 5

        def scan() -> None:
            listed = len(stored_sessions(store))
            if listed != size:
                raise SystemExit(f"the plain scan found {listed} sessions of {size}")

        idle_reports: list[list[KeptAlive]] = []

        def idle() -> None:
            idle_reports.append(keepalive(store, within=WITHIN, service=pds.url))

        scan()  # the first read of the filled store is not the one measured
        pds.reset_counts()
        started = time.perf_counter()
        report = keepalive(store, within=WITHIN, service=pds.url)
        took = time.perf_counter() - started
        # Now nothing is due: keepalive is its scan and its judgement, which the
        # plain scan bounds below; measured in alternating rounds.
        idle_s, floor_s = paired(idle, scan, repeat=repeat)
        sent = pds.counts[REFRESH]
    return {
        "sessions": size,
        "due": due,
        "sent": sent,
        "refreshed": sum(row.action is Action.REFRESHED for row in report),
        "fine": sum(row.action is Action.FINE for row in report),
        "idle_fine": min(sum(row.action is Action.FINE for row in r) for r in idle_reports),
        "keepalive_ms": took * 1e3,
        "idle_ms": idle_s * 1e3,
        "floor_ms": floor_s * 1e3,
        "login_s": logins,
        "fill_s": filled,
    }


def correct(figures: dict[str, Any]) -> bool:
    """Every due session refreshed with one request, every other one left alone, then none due."""
    due, size = figures["due"], figures["sessions"]
    once = figures["sent"] == figures["refreshed"] == due and figures["fine"] == size - due
    return bool(once and figures["idle_fine"] == size)


def curve(sizes: list[int], tmp: Path, redis_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every store at every size; the synthetic sessions are made once per size."""
    points: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    for size in sizes:
        synthetic = list(password_sessions(size, lapsing_in_90_days(time.time())))
        for kind in KINDS:
            with opened(kind, tmp, redis_url) as store:
                figures = point(store, size, synthetic)
            points[kind].append(figures)
            print(
                f"{kind} {size}: keepalive {figures['keepalive_ms']:.0f} ms, "
                f"nothing due {figures['idle_ms']:.0f} ms, "
                f"floor {figures['floor_ms']:.0f} ms, sent {figures['sent']} / {figures['due']} "
                f"(logins {figures['login_s']:.1f} s, whole fill {figures['fill_s']:.1f} s)",
                flush=True,
            )
    return points


def victim(session_dir: str, url: str, did: str) -> int:
    """Refresh, then hang once the answer is read (before the store write) to be killed."""

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


def lost_answers(tmp: Path, kills: int) -> dict[str, int]:
    """Kill ``kills`` refreshes after the answer; count recoveries and fresh logins."""
    sessions = tmp / "lost"
    with FakePds() as pds:  # the reference PDS's 2-hour grace
        pds.create_account("lost.test", "pw")
        with PersistentSessionManager(sessions, pds.url) as manager:
            did = manager.login("lost.test", "pw").did
        pds.reset_counts()
        detected = _Recoveries()
        logging.getLogger("sessionkeeper").addHandler(detected)
        for _ in range(kills):
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
    return {"killed": kills, "recovered": detected.count, "create_sessions": creates}


class _Recoveries(logging.Handler):
    """Counts the refreshes that found a lost answer and recovered the session."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("recovered the session"):
            self.count += 1


def curve_table(sizes: list[int], points: dict[str, list[dict[str, Any]]]) -> list[list[str]]:
    """One row per size and store: keepalive, then with nothing due, against the plain scan."""
    rows = []
    for i, size in enumerate(sizes):
        for kind in KINDS:
            f = points[kind][i]
            rows.append(
                [
                    f"{size:,}",
                    LABELS[kind],
                    f"{f['sent']:,} / {f['due']:,}",
                    f"{f['keepalive_ms']:,.0f}",
                    f"{f['idle_ms']:,.0f}",
                    f"{f['floor_ms']:,.0f}",
                    f"{f['keepalive_ms'] / f['floor_ms']:.1f}x",
                    f"{f['idle_ms'] / f['floor_ms']:.2f}x",
                    verdict(correct(f)),
                ]
            )
    return rows


def plain(cell: str) -> str:
    """A cell without its terminal colour markup."""
    from rich.text import Text

    return Text.from_markup(cell).plain


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--quick", action="store_true", help="small sizes; no docs written")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    args = parser.parse_args(argv)
    sizes = [200, 1000] if args.quick else [int(n) for n in args.sizes.split(",")]
    kills = 3 if args.quick else KILLS
    if RedisServer.find_binary() is None:
        raise SystemExit("redis-server is not installed: run `make redis-server`")
    with (
        tempfile.TemporaryDirectory(prefix="bench-keepalive-") as where,
        RedisServer(appendonly=False) as redis_server,
    ):
        tmp = Path(where)
        points = curve(sizes, tmp, redis_server.url)
        lost = lost_answers(tmp, kills)
    columns = [
        "sessions",
        "store",
        "refreshSession sent / due",
        "keepalive ms",
        "again, nothing due, ms",
        "plain scan ms (floor)",
        "keepalive / floor",
        "nothing due / floor",
        "target: sent = due",
    ]
    rows = curve_table(sizes, points)
    print_table("keepalive against a plain scan of the same store, 1% due", columns, rows)
    lost_ok = lost["create_sessions"] == 0 and lost["recovered"] == kills
    lost_columns = [
        "killed refreshes",
        "lost answers detected and recovered",
        "createSession calls",
        "target: 0 createSession",
    ]
    lost_row = [str(kills), str(lost["recovered"]), str(lost["create_sessions"]), verdict(lost_ok)]
    print_table(
        "lost refresh answers (process SIGKILLed after the server answered)",
        lost_columns,
        [lost_row],
    )
    ok = lost_ok and all(correct(f) for kind in KINDS for f in points[kind])
    if not args.quick:
        results: dict[str, Any] = {
            "sessions": sizes,
            "keepalive_ms": {k: [f["keepalive_ms"] for f in points[k]] for k in KINDS},
            "idle_ms": {k: [f["idle_ms"] for f in points[k]] for k in KINDS},
            "floor_ms": {k: [f["floor_ms"] for f in points[k]] for k in KINDS},
            "points": points,
        }
        write_outputs(
            "keepalive-scan",
            markdown_table(columns, [list(map(plain, row)) for row in rows]),
            results,
        )
        line_chart(
            "keepalive-scan",
            "keepalive, 1% due (solid), against a plain scan (dashed)",
            "stored sessions",
            "milliseconds",
            [
                *(Series(LABELS[k], sizes, results["keepalive_ms"][k]) for k in KINDS),
                *(
                    Series(f"{LABELS[k]} scan", sizes, results["floor_ms"][k], LABELS[k])
                    for k in KINDS
                ),
            ],
        )
        write_outputs(
            "keepalive-lost", markdown_table(lost_columns, [list(map(plain, lost_row))]), lost
        )
    if args.json:
        print(json.dumps({"points": points, "lost": lost}))
    if not ok:
        print("FAIL: a target was missed", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "victim":
        sys.exit(victim(*sys.argv[2:5]))
    os.environ.pop("SESSIONKEEPER_STORE", None)
    sys.exit(main(sys.argv[1:]))
