"""``list_sessions`` at 1k, 10k and 100k stored sessions, against the read-and-parse floor.

For each store (DirectoryStore, SqliteStore, RedisStore on a real redis-server)
the ATProto manager lists every stored session; the floor reads the same
values the most direct way that store allows (``scandir`` and ``read``; one
``SELECT``; ``SCAN`` and ``MGET``) and parses each with orjson, building no
session objects. Both run in alternating rounds (medians). A listing that
grew faster than its floor would show as a widening gap on the chart.

    python benchmarks/bench_listing_curve.py [--sizes 1000,10000,100000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import secrets
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson
import redis

from _charts import Series, line_chart
from _report import markdown_table, write_outputs
from _sessions import fill, password_sessions
from _table import paired, print_table
from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.stores import DirectoryStore, SqliteStore, Store
from sessionkeeper.stores.redis.store import RedisStore

KINDS = ("dir", "sqlite", "redis")
LABELS = {"dir": "DirectoryStore", "sqlite": "SqliteStore", "redis": "RedisStore"}


def floor_of(store: Store) -> Callable[[], int]:
    """Read and parse every value the most direct way this store allows; count them."""
    if isinstance(store, DirectoryStore):
        root = store.path

        def directory() -> int:
            count = 0
            with os.scandir(root) as entries:
                for entry in entries:
                    if not entry.name.startswith("."):
                        with open(entry.path, "rb") as file:
                            orjson.loads(file.read())
                        count += 1
            return count

        return directory
    if isinstance(store, SqliteStore):
        path = store.path

        def table() -> int:
            with sqlite3.connect(path) as conn:
                rows = conn.execute("SELECT name, data FROM kv").fetchall()
            conn.close()
            for _, data in rows:
                orjson.loads(data)
            return len(rows)

        return table
    if isinstance(store, RedisStore):
        client = store._client
        pattern = store._keys.value_pattern()

        def keys() -> int:
            found = list(client.scan_iter(match=pattern, count=500))
            for start in range(0, len(found), 200):
                for data in client.mget(found[start : start + 200]):
                    if data is not None:
                        orjson.loads(data)
            return len(found)

        return keys
    raise TypeError(f"no floor for {type(store).__name__}")


@contextmanager
def opened(kind: str, tmp: Path, server_url: str | None) -> Iterator[Store]:
    """A fresh, empty store of ``kind``."""
    if kind == "dir":
        yield DirectoryStore(tmp / f"dir-{secrets.token_hex(3)}")
    elif kind == "sqlite":
        yield SqliteStore(tmp / f"{secrets.token_hex(3)}.db")
    else:
        assert server_url is not None
        store = RedisStore(server_url, prefix=f"list-{secrets.token_hex(3)}:")
        try:
            yield store
        finally:
            client: redis.Redis[bytes] = redis.Redis.from_url(server_url)
            client.flushall()
            client.close()
            store.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--quick", action="store_true", help="small sizes; no docs written")
    args = parser.parse_args(argv)
    sizes = [200, 2000] if args.quick else [int(n) for n in args.sizes.split(",")]
    results: dict[str, Any] = {"sessions": sizes, "ours_ms": {}, "floor_ms": {}}
    with tempfile.TemporaryDirectory(prefix="bench-list-") as name, ExitStack() as stack:
        from sessionkeeper.testing import RedisServer

        if RedisServer.find_binary() is None:
            raise SystemExit("redis-server is not installed: run `make redis-server`")
        server = stack.enter_context(RedisServer(appendonly=False))
        for kind in KINDS:
            ours_ms: list[float] = []
            floor_ms: list[float] = []
            for size in sizes:
                with opened(kind, Path(name), server.url) as store:
                    fill(store, password_sessions(size))
                    manager = PersistentSessionManager(None, "http://127.0.0.1:9", store=store)
                    floor = floor_of(store)
                    if len(manager.list_sessions()) != size or floor() != size:
                        raise SystemExit(f"{kind}: a listing did not find all {size} sessions")
                    repeat = 1 if size >= 100_000 else 3 if size >= 10_000 else 7
                    ours, base = paired(manager.list_sessions, floor, repeat=repeat)
                    ours_ms.append(ours * 1e3)
                    floor_ms.append(base * 1e3)
                    print(f"{kind} {size}: {ours * 1e3:.1f} ms, floor {base * 1e3:.1f} ms")
            results["ours_ms"][kind] = ours_ms
            results["floor_ms"][kind] = floor_ms
    columns = ["sessions", *(f"{LABELS[k]} ms (floor)" for k in KINDS)]
    rows = [
        [
            f"{size:,}",
            *(
                f"{results['ours_ms'][k][i]:.1f} ({results['floor_ms'][k][i]:.1f}, "
                f"{results['ours_ms'][k][i] / results['floor_ms'][k][i]:.1f}x)"
                for k in KINDS
            ),
        ]
        for i, size in enumerate(sizes)
    ]
    print_table("list_sessions against reading and parsing every value", columns, rows)
    if not args.quick:
        write_outputs("list-sessions", markdown_table(columns, rows), results)
        line_chart(
            "list-sessions",
            "list_sessions (solid) against read-and-parse (dashed)",
            "stored sessions",
            "milliseconds",
            [
                *(Series(LABELS[k], sizes, results["ours_ms"][k]) for k in KINDS),
                *(
                    Series(f"{LABELS[k]} floor", sizes, results["floor_ms"][k], LABELS[k])
                    for k in KINDS
                ),
            ],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
