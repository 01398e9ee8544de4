"""A fleet: A accounts used by W worker processes at random, every token expiring twice.

A fake PDS (its own process) revokes a used refresh token at once (grace 0), so a
second refresh of one token generation kills that account's session. Its clock is
manual: between rounds the benchmark moves it past every access token's expiry
and moves the workers' clocks with it, so in rounds 2 and 3 every account a worker
touches is due (the first touch refreshes proactively, the rest adopt). Each
worker process holds one ``PersistentSessionManager`` per account it has used,
all on one store (DirectoryStore, then RedisStore on a real redis-server) and one
HTTP client, and makes ``visits x A / W`` calls per round to accounts picked at
random. After each of our calls it makes the same call with the token our call
just used (a fixed valid token, no session layer) on the same client: the pairs
run under the same load, and their difference is what our layer adds.

The peer is MarshalX ``atproto`` as its docs teach session reuse, run on the same
load: one ``Client`` per account, its session string in the same shared store,
saved on every CREATE and REFRESH; a failed call reloads the stored string (or
logs in again when the stored one failed) and is counted. MarshalX judges
expiry on the same moved clock (its ``get_current_time``), 15 minutes early.

Counted by the server: refreshSession (and those refused as revoked) and
createSession calls; by the workers:
which accounts each round touched, failed calls, latencies, peak memory. Expected
refreshes are the (account, round) pairs touched after an expiry, so the target
is exactly 1 refresh per account per expiry it was used across. Afterwards every
account is loaded afresh and refreshed once more: a session that cannot be is
lost.

    python benchmarks/bench_fleet.py [--accounts 1000] [--workers 16] [--clients ...] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from _report import await_ready, markdown_table, percentile_ms, write_outputs
from _table import print_table, verdict
from sessionkeeper.errors import SessionkeeperError

GET_SESSION = "com.atproto.server.getSession"
REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"
PASSWORD = "fleet-pass"
# Long enough that a round never reaches a refresh margin on its own (ours is
# 120 s, MarshalX's 15 min); only the jumps between rounds make tokens due.
ACCESS_LIFETIME = 1800.0
STORES = ("dir", "redis")
CLIENTS = ("sessionkeeper", "marshalx")


class SettableClock:
    """The real clock plus an offset the parent sets each round (the fake PDS's clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# --- a worker process ------------------------------------------------------------------------


def handle_of(index: int) -> str:
    return f"fleet-{index}.test"


def string_name(index: int) -> str:
    """Where the MarshalX fleet keeps account ``index``'s session string."""
    return f"session-string-{index}"


class OurAccounts:
    """One ``PersistentSessionManager`` per account used, on one store and one HTTP client."""

    def __init__(self, store: Any, pds_url: str, client: httpx.Client, clock: SettableClock):
        self.store, self.pds_url, self.client, self.clock = store, pds_url, client, clock
        self.managers: dict[int, Any] = {}

    def warm(self) -> None:
        """Import what a call needs, so no call's latency is an import."""
        from sessionkeeper.atproto import PersistentSessionManager
        from sessionkeeper.stores.locking import LockFiles

        PersistentSessionManager(None, self.pds_url, store=self.store, http=self.client)
        LockFiles(lambda name: Path(name), 1.0)

    def call(self, index: int, did: str) -> str:
        """One getSession call as account ``index``; the access token it went out with."""
        from sessionkeeper.atproto import PersistentSessionManager

        manager = self.managers.get(index)
        if manager is None:
            manager = PersistentSessionManager(
                None, self.pds_url, store=self.store, http=self.client, clock=self.clock
            )
            manager.load_session(did)
            self.managers[index] = manager
        manager.query(GET_SESSION)
        session = manager.session
        assert session is not None
        return str(session.access_jwt)


def marshalx_client(pds_url: str, clock: SettableClock) -> Any:
    """A MarshalX ``Client`` whose idea of now is the fleet's clock."""
    from datetime import UTC, datetime

    from atproto import Client

    class FleetClient(Client):  # type: ignore[misc]
        def get_current_time(self) -> datetime:
            return datetime.fromtimestamp(clock.time(), tz=UTC)

    return FleetClient(base_url=pds_url)


class MarshalxAccounts:
    """MarshalX's documented reuse, one ``Client`` per account, strings in the shared store.

    A client starts from the stored session string and saves the string back on
    every CREATE and REFRESH. When a call fails, it reloads the stored string
    (another worker may have refreshed), or logs in again when the stored one
    is the one that failed; the failed call is counted.
    """

    def __init__(self, store: Any, pds_url: str, client: httpx.Client, clock: SettableClock):
        self.store, self.pds_url, self.clock = store, pds_url, clock
        self.clients: dict[int, Any] = {}

    def warm(self) -> None:
        """Import and build what a call needs, so no call's latency is an import."""
        marshalx_client(self.pds_url, self.clock)

    def open(self, index: int) -> Any:
        from atproto import SessionEvent

        client = marshalx_client(self.pds_url, self.clock)
        name = string_name(index)

        def save(event: Any, session: Any) -> None:
            if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
                self.store.put(name, session.export().encode())

        client.on_session_change(save)
        saved = self.store.get(name)
        if saved:
            client.login(session_string=saved.decode(), fetch_bsky_profile=False)
        else:
            client.login(handle_of(index), PASSWORD, fetch_bsky_profile=False)
        return client

    def call(self, index: int, did: str) -> str:
        """One getSession call as account ``index``; the access token it went out with."""
        client = self.clients.get(index)
        if client is None:
            client = self.clients[index] = self.open(index)
        try:
            client.com.atproto.server.get_session()
        except Exception:
            saved = self.store.get(string_name(index))
            if saved and saved.decode() != client.export_session_string():
                client.login(session_string=saved.decode(), fetch_bsky_profile=False)
            else:
                client.login(handle_of(index), PASSWORD, fetch_bsky_profile=False)
            raise
        return str(client._session.access_jwt)


def worker(kind: str, store_url: str, pds_url: str, dids_file: str, calls: int, seed: int) -> int:
    """Serve rounds read from stdin (``round OFFSET`` / ``stop``); answer each with JSON."""
    from sessionkeeper.stores import open_store

    dids: list[str] = json.loads(Path(dids_file).read_text())
    picker = random.Random(seed)
    clock = SettableClock()
    client = httpx.Client()
    pool = (OurAccounts if kind == "sessionkeeper" else MarshalxAccounts)(
        open_store(store_url), pds_url, client, clock
    )
    endpoint = f"{pds_url}/xrpc/{GET_SESSION}"
    pool.warm()
    print("ready", flush=True)
    for line in sys.stdin:
        command = line.split()
        if command[0] == "stop":
            break
        clock.offset = float(command[1])
        ours: list[float] = []
        raw: list[float] = []
        touched: set[int] = set()
        failed: list[str] = []
        for _ in range(calls):
            index = picker.randrange(len(dids))
            touched.add(index)
            try:
                began = time.perf_counter()
                token = pool.call(index, dids[index])
                ours.append(time.perf_counter() - began)
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {str(exc)[:200]}")
                continue
            began = time.perf_counter()
            answer = client.get(endpoint, headers={"Authorization": f"Bearer {token}"})
            answer.raise_for_status()
            answer.json()
            raw.append(time.perf_counter() - began)
        report = {"ours": ours, "raw": raw, "touched": sorted(touched), "failed": failed}
        print(json.dumps(report), flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_kib": rss}), flush=True)
    return 0


# --- the parent ------------------------------------------------------------------------------


@contextmanager
def fake_pds() -> Iterator[str]:
    """A fake PDS process with grace 0 and a manual clock; yields its URL."""
    fake = subprocess.Popen(
        [
            *(sys.executable, "-m", "sessionkeeper.testing.fake_pds", "--port", "0"),
            *("--grace", "0", "--manual-clock", "--access-lifetime", str(ACCESS_LIFETIME)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        for line in fake.stdout:
            if line.startswith("FAKE_PDS_URL="):
                yield line.strip().split("=", 1)[1]
                return
        raise RuntimeError("the fake PDS did not start")
    finally:
        fake.terminate()
        fake.wait(10)


@contextmanager
def store_url(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh store of ``kind`` as a URL every process can open."""
    if kind == "dir":
        yield f"dir:{tmp / 'sessions'}"
        return
    from sessionkeeper.testing import RedisServer

    if RedisServer.find_binary() is None:
        raise SystemExit("redis-server is not installed: run `make redis-server`")
    with RedisServer(appendonly=False) as server:
        yield f"{server.url}?prefix=fleet-{secrets.token_hex(3)}:"


def sign_in(kind: str, store: str, pds_url: str, count: int, clock: SettableClock) -> None:
    """Log every account in once, into ``store`` (the fleet starts from stored sessions)."""
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.stores import open_store

    opened = open_store(store)
    if kind == "marshalx":
        marshalx = MarshalxAccounts(opened, pds_url, httpx.Client(), clock)
        for index in range(count):
            marshalx.open(index)  # no string stored yet: logs in and saves it
        return
    with httpx.Client() as client:
        for index in range(count):
            with PersistentSessionManager(
                None, pds_url, store=opened, http=client, clock=clock
            ) as manager:
                manager.login(handle_of(index), PASSWORD)


def alive(
    kind: str,
    opened: Any,
    pds_url: str,
    index: int,
    did: str,
    clock: SettableClock,
    http: httpx.Client,
) -> bool:
    """Whether account ``index`` still loads from the store and refreshes once more."""
    from sessionkeeper.atproto import PersistentSessionManager

    if kind == "marshalx":
        saved = opened.get(string_name(index))
        if saved is None:
            return False
        client = marshalx_client(pds_url, clock)
        try:
            client.login(session_string=saved.decode(), fetch_bsky_profile=False)
            client._refresh_and_set_session()
        except Exception:
            return False
        return True
    with PersistentSessionManager(None, pds_url, store=opened, http=http, clock=clock) as manager:
        try:
            if manager.load_session(did) is None:
                return False
            manager.refresh_token()
        except SessionkeeperError:
            return False
    return True


def run_fleet(
    kind: str,
    store_kind: str,
    pds_url: str,
    tmp: Path,
    args: argparse.Namespace,
    dids: list[str],
) -> dict[str, Any]:
    """One client on one store: sign in, run the rounds, count what the server saw and kept."""
    from sessionkeeper.stores import open_store

    control = httpx.Client(base_url=pds_url)
    clock = SettableClock()
    calls = math.ceil(args.visits * args.accounts / args.workers)
    dids_file = tmp / "dids.json"
    dids_file.write_text(json.dumps(dids))
    with ExitStack() as stack:
        store = stack.enter_context(store_url(store_kind, tmp / f"{kind}-{store_kind}"))
        # The fake's clock stands still; the parent's clock follows it.
        clock.offset = server_now(control) - time.time()
        sign_in(kind, store, pds_url, args.accounts, clock)
        control.post("/__fake__/reset-counts").raise_for_status()
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, __file__, "worker", kind, store, pds_url, str(dids_file)),
                    *(str(calls), str(args.seed + n)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(args.workers)
        ]
        await_ready(procs)
        ours: list[float] = []
        raw: list[float] = []
        failed: list[str] = []
        expected = 0
        busy = 0.0
        for round_number in range(args.rounds):
            if round_number:
                # Every access token issued so far is now past its expiry, for all.
                control.post(
                    "/__fake__/advance", params={"seconds": ACCESS_LIFETIME + 1}
                ).raise_for_status()
            offset = server_now(control) - time.time()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(f"round {offset!r}\n")
                proc.stdin.flush()
            touched: set[int] = set()
            for proc in procs:
                assert proc.stdout is not None
                report = json.loads(proc.stdout.readline())
                ours += report["ours"]
                raw += report["raw"]
                failed += report["failed"]
                touched.update(report["touched"])
                busy += sum(report["ours"])
            if round_number:
                expected += len(touched)
        rss: list[int] = []
        for proc in procs:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            rss.append(json.loads(proc.stdout.readline())["rss_kib"])
            if proc.wait(60) != 0:
                raise SystemExit(f"a fleet worker failed with exit code {proc.returncode}")
        counts = control.get("/__fake__/counts").json()
        clock.offset = server_now(control) - time.time()
        opened = open_store(store)
        with httpx.Client() as http:  # one client: building one per account costs more
            kept = sum(
                alive(kind, opened, pds_url, i, did, clock, http) for i, did in enumerate(dids)
            )
    control.close()
    for message in sorted(set(failed))[:3]:
        print(f"  {kind} on {store_kind}: failed call: {message}", file=sys.stderr)
    refreshes = counts["counts"].get(REFRESH, 0)
    return {
        "client": kind,
        "store": store_kind,
        "accounts": args.accounts,
        "workers": args.workers,
        "rounds": args.rounds,
        "calls": len(ours) + len(failed),
        "failed": len(failed),
        "refreshes": refreshes,
        "revoked": counts["errors"].get(REFRESH, 0),
        "expected_refreshes": expected,
        "refreshes_per_expiry": refreshes / expected if expected else 0.0,
        "create_sessions": counts["counts"].get(CREATE, 0),
        "lost": args.accounts - kept,
        # Each worker's calls over the time it spent in them, summed over the fleet.
        "calls_per_s": len(ours) / busy * args.workers if busy else 0.0,
        "ours_p50_ms": percentile_ms(ours, 0.50),
        "ours_p99_ms": percentile_ms(ours, 0.99),
        "raw_p50_ms": percentile_ms(raw, 0.50),
        "raw_p99_ms": percentile_ms(raw, 0.99),
        "peak_rss_mib": max(rss) / 1024,
    }


def server_now(control: httpx.Client) -> float:
    """The fake's clock (advancing by 0 seconds answers with it)."""
    answer = control.post("/__fake__/advance", params={"seconds": 0})
    answer.raise_for_status()
    return float(answer.json()["now"])


def passed(figures: dict[str, Any]) -> bool:
    """Whether a run met the counting targets (timings are reported, not judged)."""
    return bool(
        figures["refreshes"] == figures["expected_refreshes"]
        and figures["failed"] == 0
        and figures["lost"] == 0
        and figures["create_sessions"] == 0
    )


def table_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row per store, in the docs' and the terminal's table."""
    return [
        [
            LABELS[r["client"]],
            r["store"],
            f"{r['refreshes']} / {r['expected_refreshes']} = {r['refreshes_per_expiry']:.2f}",
            str(r["revoked"]),
            str(r["create_sessions"]),
            str(r["lost"]),
            f"{r['failed']} of {r['calls']}",
            f"{r['calls_per_s']:.0f}",
            f"{r['ours_p50_ms']:.2f} / {r['raw_p50_ms']:.2f}",
            f"{r['ours_p99_ms']:.2f} / {r['raw_p99_ms']:.2f}",
            f"{r['peak_rss_mib']:.0f}",
        ]
        for r in results
    ]


LABELS = {"sessionkeeper": "sessionkeeper", "marshalx": "MarshalX + session strings"}
COLUMNS = [
    "client",
    "store",
    "refreshes / expiries used (1)",
    "revoked refreshes (0)",
    "createSession (0)",
    "lost (0)",
    "failed (0)",
    "calls/s",
    "p50 ms ours / fixed",
    "p99 ms ours / fixed",
    "peak MiB/worker",
]


def report(stem: str, title: str, results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """Print one table, and write it (with its figures) into the docs unless quick."""
    rows = table_rows(results)
    verdicts = [
        [*row, verdict(passed(r)) if r["client"] == "sessionkeeper" else "reported"]
        for row, r in zip(rows, results, strict=True)
    ]
    print_table(title, [*COLUMNS, ""], verdicts)
    if not args.quick:
        write_outputs(stem, f"{title}.\n\n" + markdown_table(COLUMNS, rows), {"runs": results})


def title_of(args: argparse.Namespace) -> str:
    return (
        f"{args.accounts} accounts, {args.workers} worker processes, "
        f"{args.rounds} rounds ({args.rounds - 1} expiries), grace 0"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="round 1 fresh, then expiries")
    parser.add_argument("--visits", type=float, default=3.0, help="calls per account per round")
    parser.add_argument("--stores", default=",".join(STORES))
    # MarshalX keeps a whole HTTP client per account (the side-by-side table gives its
    # peak MiB per worker): a thousand accounts in each of 16 workers would not fit
    # beside other work on this machine, so the side-by-side run is smaller, and the
    # same for both.
    parser.add_argument("--peer-accounts", type=int, default=200)
    parser.add_argument("--peer-workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes, ours only; no docs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.workers, args.visits = 6, 4, 6.0
    if args.rounds < 3:
        parser.error("--rounds must be at least 3, so every token crosses its expiry twice")
    stores = [k for k in args.stores.split(",") if k]
    if unknown := set(stores) - set(STORES):
        parser.error(f"unknown store {sorted(unknown)[0]!r}; choose from {', '.join(STORES)}")
    peer = argparse.Namespace(**vars(args))
    peer.accounts, peer.workers = args.peer_accounts, args.peer_workers

    fleet: list[dict[str, Any]] = []
    peers: list[dict[str, Any]] = []
    with fake_pds() as pds_url, tempfile.TemporaryDirectory(prefix="bench-fleet-") as name:
        with httpx.Client(base_url=pds_url) as control:
            dids = [
                control.post(
                    "/__fake__/accounts", params={"handle": handle_of(i), "password": PASSWORD}
                ).json()["did"]
                for i in range(max(args.accounts, 0 if args.quick else peer.accounts))
            ]
        for store_kind in stores:
            fleet.append(
                run_fleet(
                    "sessionkeeper", store_kind, pds_url, Path(name), args, dids[: args.accounts]
                )
            )
        if not args.quick:
            for kind in CLIENTS:
                peers.append(
                    run_fleet(kind, "redis", pds_url, Path(name), peer, dids[: peer.accounts])
                )
    report("fleet", f"Fleet: {title_of(args)}", fleet, args)
    if peers:
        report("fleet-peer", f"Side by side on Redis: {title_of(peer)}", peers, peer)
    if args.json:
        print(json.dumps(fleet + peers))
    return 0 if all(passed(r) for r in fleet + peers if r["client"] == "sessionkeeper") else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        kind_arg, store_arg, pds_arg, dids_arg, calls_arg, seed_arg = sys.argv[2:8]
        sys.exit(worker(kind_arg, store_arg, pds_arg, dids_arg, int(calls_arg), int(seed_arg)))
    sys.exit(main(sys.argv[1:]))
