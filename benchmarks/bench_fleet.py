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

Counted by the server: refreshSession and createSession calls; by the workers:
which accounts each round touched, failed calls, latencies, peak memory. Expected
refreshes are the (account, round) pairs touched after an expiry, so the target
is exactly 1 refresh per account per expiry it was used across. Afterwards every
account is loaded afresh and refreshed once more: a session that cannot be is
lost.

    python benchmarks/bench_fleet.py [--accounts 1000] [--workers 16] [--quick] [--json]
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

from _report import markdown_table, percentile, write_outputs
from _table import print_table, verdict

GET_SESSION = "com.atproto.server.getSession"
REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"
PASSWORD = "fleet-pass"
# Long enough that a round never reaches the 120 s refresh margin on its own;
# only the jumps between rounds make tokens due.
ACCESS_LIFETIME = 900.0
STORES = ("dir", "redis")


class SettableClock:
    """The real clock plus an offset the parent sets each round (the fake PDS's clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


# --- a worker process ------------------------------------------------------------------------


def worker(store_url: str, pds_url: str, dids_file: str, calls: int, seed: int) -> int:
    """Serve rounds read from stdin (``round OFFSET`` / ``stop``); answer each with JSON."""
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.stores import open_store

    dids: list[str] = json.loads(Path(dids_file).read_text())
    picker = random.Random(seed)
    clock = SettableClock()
    store = open_store(store_url)
    client = httpx.Client()
    endpoint = f"{pds_url}/xrpc/{GET_SESSION}"
    managers: dict[int, PersistentSessionManager] = {}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
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
            manager = managers.get(index)
            try:
                began = time.perf_counter()
                if manager is None:
                    manager = PersistentSessionManager(
                        None, pds_url, store=store, http=client, clock=clock
                    )
                    manager.load_session(dids[index])
                    managers[index] = manager
                manager.query(GET_SESSION)
                ours.append(time.perf_counter() - began)
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {exc}")
                continue
            session = manager.session
            assert session is not None
            headers = {"Authorization": f"Bearer {session.access_jwt}"}
            began = time.perf_counter()
            answer = client.get(endpoint, headers=headers)
            answer.raise_for_status()
            answer.json()
            raw.append(time.perf_counter() - began)
        report = {"ours": ours, "raw": raw, "touched": sorted(touched), "failed": failed}
        print(json.dumps(report), flush=True)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rss_kib": rss_after, "rss_start_kib": rss_before}), flush=True)
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


def sign_in(store: str, pds_url: str, handles: list[str], clock: SettableClock) -> None:
    """Log every account in once, into ``store`` (the fleet starts from stored sessions)."""
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.stores import open_store

    opened = open_store(store)
    with httpx.Client() as client:
        for handle in handles:
            with PersistentSessionManager(
                None, pds_url, store=opened, http=client, clock=clock
            ) as manager:
                manager.login(handle, PASSWORD)


def survivors(store: str, pds_url: str, dids: list[str], clock: SettableClock) -> int:
    """How many accounts still load from the store and refresh once more."""
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.errors import SessionkeeperError
    from sessionkeeper.stores import open_store

    opened = open_store(store)
    alive = 0
    with httpx.Client() as client:
        for did in dids:
            with PersistentSessionManager(
                None, pds_url, store=opened, http=client, clock=clock
            ) as manager:
                try:
                    if manager.load_session(did) is None:
                        continue
                    manager.refresh_token()
                    alive += 1
                except SessionkeeperError:
                    continue
    return alive


def run_fleet(
    kind: str, pds_url: str, tmp: Path, args: argparse.Namespace, dids: list[str]
) -> dict[str, Any]:
    """One store: sign in, run the rounds, count what the server saw and what survived."""
    control = httpx.Client(base_url=pds_url)
    clock = SettableClock()
    calls = math.ceil(args.visits * args.accounts / args.workers)
    handles = [f"fleet-{i}.test" for i in range(args.accounts)]
    dids_file = tmp / "dids.json"
    dids_file.write_text(json.dumps(dids))
    with ExitStack() as stack:
        store = stack.enter_context(store_url(kind, tmp / kind))
        # The fake's clock stands still; the parent's clock follows it.
        clock.offset = server_now(control) - time.time()
        sign_in(store, pds_url, handles, clock)
        control.post("/__fake__/reset-counts").raise_for_status()
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, __file__, "worker", store, pds_url, str(dids_file)),
                    *(str(calls), str(args.seed + n)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(args.workers)
        ]
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("a fleet worker did not start")
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
        counts = control.get("/__fake__/counts").json()["counts"]
        clock.offset = server_now(control) - time.time()
        alive = survivors(store, pds_url, dids, clock)
    control.close()
    for message in sorted(set(failed))[:5]:
        print(f"  {kind}: failed call: {message}", file=sys.stderr)
    refreshes = counts.get(REFRESH, 0)
    return {
        "store": kind,
        "accounts": args.accounts,
        "workers": args.workers,
        "rounds": args.rounds,
        "calls": len(ours) + len(failed),
        "failed": len(failed),
        "refreshes": refreshes,
        "expected_refreshes": expected,
        "refreshes_per_expiry": refreshes / expected if expected else 0.0,
        "create_sessions": counts.get(CREATE, 0),
        "lost": args.accounts - alive,
        # Each worker's calls over the time it spent in them, summed over the fleet.
        "calls_per_s": len(ours) / busy * args.workers if busy else 0.0,
        "ours_p50_ms": percentile(ours, 0.50) * 1e3,
        "ours_p99_ms": percentile(ours, 0.99) * 1e3,
        "raw_p50_ms": percentile(raw, 0.50) * 1e3,
        "raw_p99_ms": percentile(raw, 0.99) * 1e3,
        "peak_rss_mib": max(rss) / 1024,
    }


def server_now(control: httpx.Client) -> float:
    """The fake's clock (advancing by 0 seconds answers with it)."""
    answer = control.post("/__fake__/advance", params={"seconds": 0})
    answer.raise_for_status()
    return float(answer.json()["now"])


def passed(figures: dict[str, Any]) -> bool:
    """Whether a store met the counting targets (timings are reported, not judged)."""
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
            r["store"],
            f"{r['refreshes']} / {r['expected_refreshes']} = {r['refreshes_per_expiry']:.2f}",
            str(r["lost"]),
            f"{r['failed']} of {r['calls']}",
            f"{r['calls_per_s']:.0f}",
            f"{r['ours_p50_ms']:.2f} / {r['raw_p50_ms']:.2f}",
            f"{r['ours_p99_ms']:.2f} / {r['raw_p99_ms']:.2f}",
            f"{r['peak_rss_mib']:.0f}",
        ]
        for r in results
    ]


COLUMNS = [
    "store",
    "refreshes / expiries used (1)",
    "lost (0)",
    "failed (0)",
    "calls/s",
    "p50 ms ours / fixed",
    "p99 ms ours / fixed",
    "peak MiB/worker",
]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="round 1 fresh, then expiries")
    parser.add_argument("--visits", type=float, default=3.0, help="calls per account per round")
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes; no docs written")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.workers, args.visits = 6, 4, 6.0
    if args.rounds < 3:
        parser.error("--rounds must be at least 3, so every token crosses its expiry twice")
    kinds = [k for k in args.stores.split(",") if k]
    if unknown := set(kinds) - set(STORES):
        parser.error(f"unknown store {sorted(unknown)[0]!r}; choose from {', '.join(STORES)}")

    results = []
    with fake_pds() as pds_url, tempfile.TemporaryDirectory(prefix="bench-fleet-") as name:
        with httpx.Client(base_url=pds_url) as control:
            dids = [
                control.post(
                    "/__fake__/accounts", params={"handle": f"fleet-{i}.test", "password": PASSWORD}
                ).json()["did"]
                for i in range(args.accounts)
            ]
        for kind in kinds:
            results.append(run_fleet(kind, pds_url, Path(name), args, dids))

    title = (
        f"Fleet: {args.accounts} accounts, {args.workers} worker processes, "
        f"{args.rounds} rounds ({args.rounds - 1} expiries), grace 0"
    )
    rows = table_rows(results)
    verdicts = [[*row, verdict(passed(r))] for row, r in zip(rows, results, strict=True)]
    print_table(title, [*COLUMNS, ""], verdicts)
    if args.json:
        print(json.dumps(results))
    if not args.quick:
        write_outputs("fleet", f"{title}.\n\n" + markdown_table(COLUMNS, rows), {"runs": results})
    return 0 if all(passed(r) for r in results) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        store_arg, pds_arg, dids_arg, calls_arg, seed_arg = sys.argv[2:7]
        sys.exit(worker(store_arg, pds_arg, dids_arg, int(calls_arg), int(seed_arg)))
    sys.exit(main(sys.argv[1:]))
