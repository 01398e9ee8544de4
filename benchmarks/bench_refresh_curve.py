"""Refresh p99 through Redis at 1 to 64 workers sharing one session, against one refresh.

Each round every worker calls ``refresh_token()`` at the same instant (the
fleet of ``bench_redis.py``, at more sizes): one refreshes, the rest adopt its
pair. Workers are threads spread over up to 8 processes. The floor is one
uncontended refresh measured in the same run; a single-flight queue of N is
bounded below by that refresh plus N - 1 adoptions, each a turn of the lock.
Also counted: refreshSession calls per round (exactly 1 at every size).

    python benchmarks/bench_refresh_curve.py [--workers 1,4,16,64] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _charts import Series, line_chart
from _report import markdown_table, percentile, write_outputs
from _table import print_table
from bench_redis import fleet_run
from sessionkeeper.testing.redis_server import RedisServer


def split(workers: int) -> tuple[int, int]:
    """Processes and threads per process for ``workers`` (at most 8 processes)."""
    processes = min(workers, 8)
    return processes, -(-workers // processes)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4,8,16,32,64")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="small sizes; no docs written")
    args = parser.parse_args(argv)
    sizes = [1, 4] if args.quick else [int(n) for n in args.workers.split(",")]
    rounds = 3 if args.quick else args.rounds
    if RedisServer.find_binary() is None:
        raise SystemExit("redis-server is not installed: run `make redis-server`")
    results: dict[str, Any] = {
        "workers": [],
        "p50_ms": [],
        "p99_ms": [],
        "single_ms": [],
        "refreshes_per_round": [],
    }
    with RedisServer(appendonly=False) as server:
        for size in sizes:
            processes, threads = split(size)
            # Rounds far enough apart that the slowest queue finishes before the next.
            run = fleet_run(server, processes, threads, rounds, spacing=0.3 + 0.02 * size)
            results["workers"].append(processes * threads)
            results["p50_ms"].append(percentile(run.latencies, 0.50) * 1e3)
            results["p99_ms"].append(percentile(run.latencies, 0.99) * 1e3)
            results["single_ms"].append(run.single * 1e3)
            results["refreshes_per_round"].append(run.refreshes / rounds)
    columns = ["workers", "p50 ms", "p99 ms", "one refresh ms (floor)", "p99 / floor", "refreshes"]
    rows = [
        [
            str(results["workers"][i]),
            f"{results['p50_ms'][i]:.1f}",
            f"{results['p99_ms'][i]:.1f}",
            f"{results['single_ms'][i]:.1f}",
            f"{results['p99_ms'][i] / results['single_ms'][i]:.1f}x",
            f"{results['refreshes_per_round'][i]:.2f} per round",
        ]
        for i in range(len(results["workers"]))
    ]
    print_table("refresh_token through Redis, all workers at once", columns, rows)
    ok = all(r == 1.0 for r in results["refreshes_per_round"])
    if not args.quick:
        write_outputs("refresh-redis", markdown_table(columns, rows), results)
        line_chart(
            "refresh-redis",
            "refresh_token through Redis, all workers at once",
            "workers sharing one session",
            "milliseconds",
            [
                Series("p99", results["workers"], results["p99_ms"]),
                Series("p50", results["workers"], results["p50_ms"]),
                Series("one refresh (floor)", results["workers"], results["single_ms"], "p99"),
            ],
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
