"""Store layer and HAC session cache: ratios against baselines measured in the same run.

- DirectoryStore.put vs the durable-write floor done inline (write, fsync, rename, dir fsync)
- DirectoryStore.get + json.loads vs a raw read + json.loads
- list_sessions over 10,000 sessions on DirectoryStore and SqliteStore
- load_session / save_session vs the original hac-client-core 0.1.2 (own venv, subprocess)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tracemalloc
from functools import partial
from pathlib import Path

import orjson

from _table import paired, print_table, verdict
from hac_client_core import SessionManager
from sessionkeeper.stores import DirectoryStore, SqliteStore, Store, iter_items

REPO = Path(__file__).resolve().parent.parent
PAYLOAD = json.dumps(
    {
        "session_id": "8F0C2B7D9A1E4F6B" * 2,
        "csrf_token": "b7c1e5d2-9f0a-4c3e-8d21-7a6b5c4d3e2f",
        "route_cookie": "ROUTE=.node1",
        "environment": "local",
        "base_url": "https://localhost:9002",
        "username": "admin",
        "created_at": 1763770000.0,
        "last_used_at": 1763771000.0,
        "is_authenticated": True,
    },
    indent=2,
).encode()


def durable_write_floor(directory: Path, name: str, data: bytes) -> None:
    """The least a crash-safe write can do: temp, fsync, rename, fsync the directory."""
    temp = directory / f".{name}.floor.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, directory / name)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def raw_read(path: Path) -> object:
    """A plain read and parse, the fastest way to load a JSON file."""
    with open(path, "rb") as handle:
        return json.loads(handle.read())


def store_rows(tmp: Path) -> list[list[str]]:
    rows = []
    store = DirectoryStore(tmp / "dir")
    floor_dir = tmp / "floor"
    floor_dir.mkdir()
    ours, floor = paired(
        lambda: store.put("session_x.json", PAYLOAD),
        lambda: durable_write_floor(floor_dir, "session_x.json", PAYLOAD),
        repeat=21,
        number=20,
    )
    rows.append(
        [
            "DirectoryStore.put / durable-write floor",
            f"{ours * 1e6:.0f} µs / {floor * 1e6:.0f} µs",
            f"{ours / floor:.2f}x",
            "<= 1.3x",
            verdict(ours / floor <= 1.3),
        ]
    )
    ours, raw = paired(
        lambda: json.loads(store.get("session_x.json") or b""),
        lambda: raw_read(floor_dir / "session_x.json"),
        repeat=11,
        number=1000,
    )
    rows.append(
        [
            "DirectoryStore.get + json.loads / raw read + json.loads",
            f"{ours * 1e6:.1f} µs / {raw * 1e6:.1f} µs",
            f"{ours / raw:.2f}x",
            "<= 2x",
            verdict(ours / raw <= 2.0),
        ]
    )
    return rows


def fill(manager: SessionManager, count: int) -> None:
    """Write ``count`` sessions straight into the store (no fsync wait per session is needed)."""
    from sessionkeeper.hac.session import session_name

    for i in range(count):
        name = session_name("https://localhost:9002", "admin", f"env{i}")
        document = json.loads(PAYLOAD)
        document["environment"] = f"env{i}"
        document["last_used_at"] = 1763771000.0 + i
        manager.store.put(name, json.dumps(document, indent=2).encode())


def parse_floor(store: Store) -> None:
    """The least a listing can do: read every value and parse it, building no session objects."""
    for _, data in iter_items(store):
        orjson.loads(data)


def listing_rows(tmp: Path) -> list[list[str]]:
    rows = []
    cases: list[tuple[str, Store, float]] = [
        ("DirectoryStore", DirectoryStore(tmp / "list-dir"), 0.5),
        ("SqliteStore", SqliteStore(tmp / "list.db"), 0.05),
    ]
    for label, store, target in cases:
        manager = SessionManager(store=store)
        fill(manager, 10_000)
        seconds, floor = paired(manager.list_sessions, partial(parse_floor, store), repeat=5)
        assert len(manager.list_sessions()) == 10_000
        tracemalloc.start()
        manager.list_sessions()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append(
            [
                f"list_sessions, 10,000 sessions, {label}",
                f"{seconds * 1000:.1f} ms (read + parse floor {floor * 1000:.1f} ms)",
                f"{seconds / target:.2f} of target, {seconds / floor:.2f}x floor",
                f"<= {target * 1000:.0f} ms",
                verdict(seconds <= target),
            ]
        )
        rows.append(
            [
                f"list_sessions peak memory, {label}",
                f"{peak / 2**20:.1f} MiB for {10_000 * len(PAYLOAD) / 2**20:.1f} MiB of JSON",
                f"{peak / (10_000 * len(PAYLOAD)):.1f}x the JSON",
                "reported",
                "-",
            ]
        )
    return rows


COMPARE = r"""
import json, sys, time
from pathlib import Path
from hac_client_core import SessionManager
cache = Path(sys.argv[1]); count = int(sys.argv[2])
mgr = SessionManager(cache)
url, user = "https://localhost:9002", "admin"
for i in range(count):
    mgr.save_session(url, user, f"env{i}", "SID%d" % i, "CSRF%d" % i, "ROUTE=.n1")
def median(fn, repeat=5, number=200):
    rounds = []
    for _ in range(repeat):
        t = time.perf_counter()
        for j in range(number):
            fn(j)
        rounds.append((time.perf_counter() - t) / number)
    return sorted(rounds)[len(rounds) // 2]
load = median(lambda j: mgr.load_session(url, user, f"env{j % count}"))
save = median(lambda j: mgr.save_session(url, user, f"env{j % count}", "SIDx", "CSRFx"), number=50)
print(json.dumps({"load": load, "save": save}))
"""


def original_python() -> str | None:
    result = subprocess.run(
        [str(REPO / "scripts" / "orig-hac-venv.sh")], capture_output=True, text=True, check=False
    )
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 else None


def versus_original_rows(tmp: Path) -> list[list[str]]:
    python = original_python()
    if python is None:
        return [["load/save vs original", "original venv unavailable", "-", "-", "[red]n/a[/]"]]
    figures = {}
    for label, interpreter in [("ours", sys.executable), ("original", python)]:
        output = subprocess.run(
            [interpreter, "-c", COMPARE, str(tmp / f"cache-{label}"), "1000"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        figures[label] = json.loads(output)
    load_ratio = figures["ours"]["load"] / figures["original"]["load"]
    save_ratio = figures["ours"]["save"] / figures["original"]["save"]
    return [
        [
            "load_session ours / original 0.1.2 (1,000-session cache)",
            f"{figures['ours']['load'] * 1e6:.1f} µs / {figures['original']['load'] * 1e6:.1f} µs",
            f"{load_ratio:.2f}x",
            "<= 1.0x",
            verdict(load_ratio <= 1.0),
        ],
        [
            "save_session ours / original 0.1.2 (ours: locked, fsynced, atomic)",
            f"{figures['ours']['save'] * 1e6:.0f} µs / {figures['original']['save'] * 1e6:.0f} µs",
            f"{save_ratio:.2f}x",
            "reported",
            "-",
        ],
    ]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sessionkeeper-bench-") as name:
        tmp = Path(name)
        rows = store_rows(tmp) + listing_rows(tmp) + versus_original_rows(tmp)
    print_table(
        "Stores and the HAC session cache",
        ["measure", "figures", "ratio", "target", ""],
        rows,
        save="stores",
    )


if __name__ == "__main__":
    main()
