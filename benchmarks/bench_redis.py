"""RedisStore: overhead against raw redis-py, and refresh latency of a 16-worker fleet.

- RedisStore.get / put vs raw redis-py GET / SET on the same server and payload
  (rounds interleaved, medians), target <= 1.3x.
- 16 workers (4 threads in each of 4 processes) share one ATProto session
  through Redis and the fake PDS; every round they all call refresh_token() at
  the same instant. One refreshes, fifteen adopt its pair, each in turn under
  the lock. Reported: p50/p99 of those calls against one uncontended refresh
  measured in the same run (targets: half and all of a 16-place queue), and
  refreshSession calls per round (target exactly 1).
"""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import redis

from _report import await_ready, percentile
from _table import paired, print_table, verdict
from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.testing import FakePds
from sessionkeeper.testing.redis_server import RedisServer

PAYLOAD = json.dumps(
    {
        "accessJwt": "eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJIUzI1NiJ9." + "a" * 300 + ".sig",
        "refreshJwt": "eyJ0eXAiOiJyZWZyZXNoK2p3dCIsImFsZyI6IkhTMjU2In0." + "b" * 300 + ".sig",
        "handle": "bench.test",
        "did": "did:plc:benchbenchbenchbench",
        "email": "bench@example.com",
        "emailConfirmed": True,
        "emailAuthFactor": False,
        "active": True,
    },
    indent=2,
).encode()
PASSWORD = "bench password"
REFRESH = "com.atproto.server.refreshSession"


def overhead_rows(server: RedisServer) -> list[list[str]]:
    store = RedisStore(server.url, prefix=f"bench-{secrets.token_hex(3)}:")
    client: redis.Redis[bytes] = redis.Redis.from_url(server.url)
    raw_key = f"{store.prefix}raw"
    store.put("did_plc_bench.json", PAYLOAD)
    client.set(raw_key, PAYLOAD)
    rows = []
    ours, raw = paired(
        lambda: store.put("did_plc_bench.json", PAYLOAD),
        lambda: client.set(raw_key, PAYLOAD),
        number=2000,
    )
    rows.append(
        [
            "RedisStore.put / raw SET",
            f"{ours * 1e6:.0f} µs / {raw * 1e6:.0f} µs",
            f"{ours / raw:.2f}x",
            "<= 1.3x",
            verdict(ours / raw <= 1.3),
        ]
    )
    ours, raw = paired(
        lambda: store.get("did_plc_bench.json"), lambda: client.get(raw_key), number=2000
    )
    rows.append(
        [
            "RedisStore.get / raw GET",
            f"{ours * 1e6:.0f} µs / {raw * 1e6:.0f} µs",
            f"{ours / raw:.2f}x",
            "<= 1.3x",
            verdict(ours / raw <= 1.3),
        ]
    )

    def locked_put() -> None:
        with store.lock("did_plc_bench.json"):
            store.put("did_plc_bench.json", PAYLOAD)

    ours, raw = paired(locked_put, lambda: client.set(raw_key, PAYLOAD), number=500)
    rows.append(
        [
            "lock + fenced put + release / raw SET",
            f"{ours * 1e6:.0f} µs / {raw * 1e6:.0f} µs",
            f"{ours / raw:.2f}x",
            "reported (3 round trips)",
            "-",
        ]
    )
    store.close()
    client.close()
    return rows


FLEET_WORKER = textwrap.dedent(
    """
    import json, sys, threading, time
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.stores.redis.store import RedisStore

    redis_url, prefix, pds_url, did = sys.argv[1:5]
    threads, rounds, spacing = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
    latencies, late, guard = [], [0], threading.Lock()
    warm, go, start = threading.Barrier(threads + 1), threading.Event(), [0.0]

    def work():
        store = RedisStore(redis_url, prefix=prefix)
        mine, behind = [], 0
        with PersistentSessionManager(None, pds_url, store=store) as manager:
            # Warm up connections and scripts so the first round measures what later ones do.
            manager.load_session(did)
            manager.query("com.atproto.server.getSession")
            with store.lock("warm-up"):
                pass
            warm.wait()
            go.wait()
            for k in range(rounds):
                manager.load_session(did)  # each round starts from the stored pair
                delay = start[0] + k * spacing - time.time()
                if delay > 0:
                    time.sleep(delay)
                else:
                    behind += 1  # the previous round overran: this one starts late
                began = time.perf_counter()
                manager.refresh_token()
                mine.append(time.perf_counter() - began)
        with guard:
            latencies.extend(mine)
            late[0] += behind

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    warm.wait()
    print("ready", flush=True)
    start[0] = float(sys.stdin.readline())  # one start time for every process
    go.set()
    for w in workers:
        w.join()
    print(json.dumps({"latencies": latencies, "late": late[0]}), flush=True)
    """
)


@dataclass(frozen=True)
class FleetRun:
    """What one fleet measurement saw: every refresh_token latency, and what the server counted."""

    latencies: list[float]
    single: float  #: median of one uncontended refresh, measured just before
    refreshes: int
    rounds: int
    late: int


def fleet_run(
    server: RedisServer, processes: int, threads: int, rounds: int = 20, spacing: float = 0.5
) -> FleetRun:
    """``processes`` x ``threads`` workers call refresh_token() together, ``rounds`` times."""
    prefix = f"bench-fleet-{secrets.token_hex(3)}:"
    with FakePds(access_lifetime=3600) as pds:
        did = pds.create_account("bench.test", PASSWORD)
        store = RedisStore(server.url, prefix=prefix)
        with PersistentSessionManager(None, pds.url, store=store) as manager:
            manager.login("bench.test", PASSWORD)
            alone = []
            for _ in range(rounds):
                began = time.perf_counter()
                manager.refresh_token()
                alone.append(time.perf_counter() - began)
        store.close()
        single = statistics.median(alone)
        pds.reset_counts()
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, "-c", FLEET_WORKER, server.url, prefix, pds.url, did),
                    *(str(threads), str(rounds), repr(spacing)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(processes)
        ]
        await_ready(procs)  # every interpreter up, then all start at once
        start = time.time() + 1.0
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start!r}\n")
            proc.stdin.close()
        latencies: list[float] = []
        late = 0
        for proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            if proc.wait(timeout=300) != 0:
                raise SystemExit(f"fleet worker failed with exit code {proc.returncode}")
            figures = json.loads(out)
            latencies += figures["latencies"]
            late += figures["late"]
        return FleetRun(latencies, single, pds.counts[REFRESH], rounds, late)


def fleet_rows(server: RedisServer, rounds: int = 20, spacing: float = 0.5) -> list[list[str]]:
    run = fleet_run(server, 4, 4, rounds, spacing)
    latencies, single, late = run.latencies, run.single, run.late
    per_round = run.refreshes / rounds
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    return [
        [
            "refresh_token, 16 workers at once: p50 / one uncontended refresh",
            f"{p50 * 1e3:.1f} ms / {single * 1e3:.1f} ms",
            f"{p50 / single:.2f}x",
            "<= 8x (half the queue)",
            verdict(p50 / single <= 8.0),
        ],
        [
            "refresh_token, 16 workers at once: p99 / one uncontended refresh",
            f"{p99 * 1e3:.1f} ms / {single * 1e3:.1f} ms",
            f"{p99 / single:.2f}x",
            "<= 16x (whole queue)",
            verdict(p99 / single <= 16.0),
        ],
        [
            f"refreshSession calls per round ({len(latencies)} refresh_token calls, "
            f"{late} started late)",
            f"{run.refreshes} in {rounds} rounds",
            f"{per_round:.2f}",
            "exactly 1",
            verdict(per_round == 1.0),
        ],
    ]


def main() -> None:
    if RedisServer.find_binary() is None:
        raise SystemExit("redis-server is not installed: run `make redis-server`")
    with RedisServer(appendonly=False) as server:
        rows = overhead_rows(server) + fleet_rows(server)
    print_table("RedisStore", ["measure", "figures", "ratio", "target", ""], rows, save="redis")


if __name__ == "__main__":
    main()
