"""Lock hand-over at 1, 4, 16 and 64 contending processes, against a blocking ``flock``.

A single-flight refresh is a queue: every process that finds a token due takes
the store's lock once, in turn. Each round here releases N processes at once;
each takes the lock of one name once and lets it go. A hand-over is the time
from one holder's release (or the next one's request, if later) to the next
one's acquire; with one process it is the uncontended acquire. The floor is the
same queue on a raw blocking ``fcntl.flock`` (the kernel wakes a waiter the
moment the lock is free), run in the same rounds. The rounds also check
exclusion: no two holds may overlap.

    python benchmarks/bench_lock_curve.py [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from _charts import Series, line_chart
from _report import markdown_table, percentile, write_outputs
from _table import print_table

NAME = "did_plc_fleet.json"
KINDS = ("flock", "dir", "redis")
LABELS = {"flock": "raw flock (floor)", "dir": "DirectoryStore", "redis": "RedisStore"}


def now() -> float:
    """A system-wide monotonic clock, comparable between processes."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


@contextmanager
def raw_flock(path: Path) -> Iterator[None]:
    """The floor: a blocking exclusive ``flock`` on one file."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def opener(kind: str, target: str) -> Callable[[], AbstractContextManager[None]]:
    """A function taking the lock of ``kind`` on ``target`` (a directory or a Redis URL)."""
    if kind == "flock":
        path = Path(target) / ".raw.lock"
        return lambda: raw_flock(path)
    from sessionkeeper.stores import open_store

    store = open_store(target if kind == "redis" else f"dir:{target}")
    return lambda: store.lock(NAME)


def holder(kind: str, target: str) -> int:
    """One contending process: on each ``go`` line, take the lock once and report times."""
    take = opener(kind, target)
    with take():  # first use sets up connections, scripts and the lock file
        pass
    print("ready", flush=True)
    for _line in sys.stdin:
        asked = now()
        with take():
            got = now()
            released = now()
        print(json.dumps([asked, got, released]), flush=True)
    return 0


def hand_overs(holds: list[list[float]]) -> list[float]:
    """Seconds from each release (or later request) to the next acquire; exclusion checked."""
    ordered = sorted(holds, key=lambda h: h[1])
    for before, after in itertools.pairwise(ordered):
        if after[1] < before[2]:
            raise SystemExit("two processes held the lock at once: exclusion is broken")
    if len(ordered) == 1:
        return [ordered[0][1] - ordered[0][0]]
    return [after[1] - max(before[2], after[0]) for before, after in itertools.pairwise(ordered)]


def measure(
    processes: int, rounds: int, targets: dict[str, str], kinds: list[str]
) -> dict[str, float]:
    """p99 hand-over of each kind at ``processes`` contenders, rounds interleaved by kind."""
    gaps: dict[str, list[float]] = {kind: [] for kind in kinds}
    with ExitStack() as stack:
        procs: dict[str, list[subprocess.Popen[str]]] = {}
        for kind in kinds:
            procs[kind] = [
                stack.enter_context(
                    subprocess.Popen(
                        [sys.executable, __file__, "holder", kind, targets[kind]],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
                for _ in range(processes)
            ]
        for group in procs.values():
            for proc in group:
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise SystemExit("a lock holder did not start")
        for _ in range(rounds):
            for kind in kinds:  # one kind at a time, so they never compete for the CPUs
                for proc in procs[kind]:
                    assert proc.stdin is not None
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
                holds = []
                for proc in procs[kind]:
                    assert proc.stdout is not None
                    holds.append(json.loads(proc.stdout.readline()))
                gaps[kind] += hand_overs(holds)
        for group in procs.values():
            for proc in group:
                assert proc.stdin is not None
                proc.stdin.close()
                if proc.wait(60) != 0:
                    raise SystemExit("a lock holder failed")
    return {kind: percentile(values, 0.99) for kind, values in gaps.items()}


@contextmanager
def targets_for(kinds: list[str]) -> Iterator[dict[str, str]]:
    """A directory for flock and DirectoryStore, a redis-server for RedisStore."""
    with tempfile.TemporaryDirectory(prefix="bench-lock-") as name, ExitStack() as stack:
        targets = {"flock": name, "dir": name}
        if "redis" in kinds:
            from sessionkeeper.testing import RedisServer

            if RedisServer.find_binary() is None:
                raise SystemExit("redis-server is not installed: run `make redis-server`")
            server = stack.enter_context(RedisServer(appendonly=False))
            targets["redis"] = f"{server.url}?prefix=lock-{secrets.token_hex(3)}:"
        yield targets


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=0, help="0: about 240 hand-overs each")
    parser.add_argument("--quick", action="store_true", help="small sizes; no docs written")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.processes.split(",")] if not args.quick else [1, 4]
    kinds = list(KINDS)
    results: dict[str, Any] = {"processes": counts, "p99_ms": {kind: [] for kind in kinds}}
    with targets_for(kinds) as targets:
        for count in counts:
            rounds = args.rounds or (3 if args.quick else max(5, 240 // count))
            p99 = measure(count, rounds, targets, kinds)
            for kind in kinds:
                results["p99_ms"][kind].append(p99[kind] * 1e3)
    columns = ["contending processes", *(f"{LABELS[k]} p99 ms" for k in kinds), "dir / floor"]
    rows = [
        [
            str(count),
            *(f"{results['p99_ms'][k][i]:.2f}" for k in kinds),
            f"{results['p99_ms']['dir'][i] / results['p99_ms']['flock'][i]:.1f}x",
        ]
        for i, count in enumerate(counts)
    ]
    title = "Lock hand-over p99, N processes taking one name's lock once per round"
    print_table(title, columns, rows)
    if not args.quick:
        write_outputs("lock-handover", markdown_table(columns, rows), results)
        line_chart(
            "lock-handover",
            "Lock hand-over p99",
            "contending processes",
            "p99 hand-over (ms)",
            [
                *(Series(LABELS[k], counts, results["p99_ms"][k]) for k in kinds if k != "flock"),
                Series(LABELS["flock"], counts, results["p99_ms"]["flock"], floor_of=LABELS["dir"]),
            ],
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "holder":
        sys.exit(holder(sys.argv[2], sys.argv[3]))
    sys.exit(main(sys.argv[1:]))
