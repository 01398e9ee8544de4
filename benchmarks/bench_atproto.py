"""ATProto session manager: a refresh stampede across processes, and the per-call cost.

(a) 8 processes x 8 threads share one session directory and cross the access
token's expiry at the same moment, on a fake PDS (its own process) that
revokes a used refresh token at once (grace 0): once with the workers' clocks
past the expiry (proactive refresh), once with only the server's clock past
it (the calls are refused and refreshed reactively). Targets: 1 refreshSession
per round, 0 failed calls.

(b) ``manager.query()`` against a raw ``httpx`` GET with the same bearer token
on the same client and the same fake PDS over loopback, interleaved in one
run. Target: ours / raw <= 1.15.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from _table import print_table, verdict

HANDLE, PASSWORD = "bench.test", "bench-pass"
GET_SESSION = "com.atproto.server.getSession"
REFRESH = "com.atproto.server.refreshSession"
PROCESSES, THREADS, CALLS = 8, 8, 5
HOT_ROUNDS, HOT_CALLS = 7, 300


class OffsetClock:
    """The real clock moved by a fixed offset."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def worker(session_dir: str, url: str, go: str, offset: float) -> int:
    """One stampede process: load the session, wait for go, call from THREADS threads."""
    from sessionkeeper.atproto import PersistentSessionManager

    manager = PersistentSessionManager(session_dir, url, clock=OffsetClock(offset))
    manager.load_session(manager.list_sessions()[0])
    Path(f"{go}.ready-{os.getpid()}").touch()
    while not os.path.exists(go):
        time.sleep(0.002)
    ok, failed = 0, 0
    guard = threading.Lock()

    def calls() -> None:
        nonlocal ok, failed
        for _ in range(CALLS):
            try:
                manager.query(GET_SESSION)
                with guard:
                    ok += 1
            except Exception as exc:
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
                with guard:
                    failed += 1

    threads = [threading.Thread(target=calls) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"ok": ok, "failed": failed}))
    manager.close()
    return 0


def start_fake() -> tuple[subprocess.Popen[str], str]:
    """The fake PDS as its own process (grace 0, manual clock); returns it and its URL."""
    fake = subprocess.Popen(
        [
            *(sys.executable, "-m", "sessionkeeper.testing.fake_pds", "--port", "0"),
            *("--grace", "0", "--manual-clock", "--account", f"{HANDLE}:{PASSWORD}"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    for line in fake.stdout:
        if line.startswith("FAKE_PDS_URL="):
            return fake, line.strip().split("=", 1)[1]
    fake.kill()
    raise RuntimeError("the fake PDS did not start")


def stampede(tmp: Path, url: str, control: httpx.Client, offset: float, tag: str) -> dict[str, Any]:
    """Advance the server past the expiry, release all workers at once, count."""
    control.post("/__fake__/advance", params={"seconds": 7201})
    control.post("/__fake__/reset-counts")
    go = str(tmp / f"go-{tag}")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", str(tmp / "sessions"), url, go, str(offset)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    deadline = time.monotonic() + 120
    while len(list(tmp.glob(f"go-{tag}.ready-*"))) < PROCESSES:
        if time.monotonic() > deadline:
            raise RuntimeError("stampede workers did not get ready")
        time.sleep(0.01)
    Path(go).touch()
    reports = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    seen = control.get("/__fake__/counts").json()
    return {
        "refreshes": seen["counts"].get(REFRESH, 0),
        "ok": sum(r["ok"] for r in reports),
        "failed": sum(r["failed"] for r in reports),
        "refused": seen["errors"].get(GET_SESSION, 0),
    }


def hot_path(url: str, session_dir: Path) -> tuple[float, float]:
    """Median seconds per call: manager.query() and a raw GET with the same token."""
    from sessionkeeper.atproto import PersistentSessionManager

    with httpx.Client() as client:
        manager = PersistentSessionManager(session_dir, url, http=client)
        session = manager.load_session(manager.list_sessions()[0])
        assert session is not None
        endpoint = f"{manager.pds_endpoint}/xrpc/{GET_SESSION}"
        headers = {"Authorization": f"Bearer {session.access_jwt}"}

        def ours() -> None:
            for _ in range(HOT_CALLS):
                manager.query(GET_SESSION)

        def raw() -> None:
            for _ in range(HOT_CALLS):
                response = client.get(endpoint, headers=headers)
                response.raise_for_status()
                response.json()

        ours()
        raw()  # warm both paths (connections, caches)
        ours_times: list[float] = []
        raw_times: list[float] = []
        for _ in range(HOT_ROUNDS):
            for fn, into in ((ours, ours_times), (raw, raw_times)):
                started = time.perf_counter()
                fn()
                into.append((time.perf_counter() - started) / HOT_CALLS)
        return statistics.median(ours_times), statistics.median(raw_times)


def main() -> int:
    from sessionkeeper.atproto import PersistentSessionManager

    fake, url = start_fake()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-atproto-") as name,
            httpx.Client(base_url=url) as control,
        ):
            tmp = Path(name)
            with PersistentSessionManager(tmp / "sessions", url) as manager:
                manager.login(HANDLE, PASSWORD)
            ours, raw = hot_path(url, tmp / "sessions")
            # Round 1: the workers' clocks are past the expiry too (proactive refresh).
            proactive = stampede(tmp, url, control, 7201.0, "proactive")
            # Round 2: only the server's clock moved on; calls are refused (reactive).
            reactive = stampede(tmp, url, control, 7201.0, "reactive")
    finally:
        fake.terminate()
        fake.wait(10)

    total = PROCESSES * THREADS * CALLS
    rows = []
    ok = True
    for label, figures in (("proactive", proactive), ("reactive", reactive)):
        refresh_ok = figures["refreshes"] == 1
        failed_ok = figures["failed"] == 0 and figures["ok"] == total
        ok = ok and refresh_ok and failed_ok
        rows.append(
            [
                f"{label}: refreshSession calls (target 1)",
                str(figures["refreshes"]),
                verdict(refresh_ok),
            ]
        )
        rows.append(
            [
                f"{label}: failed calls of {total} (target 0)",
                f"{figures['failed']} (refused then retried: {figures['refused']})",
                verdict(failed_ok),
            ]
        )
    ratio = ours / raw
    rows.append(
        [
            "query() / raw httpx GET (target <= 1.15)",
            f"{ratio:.3f}x ({ours * 1e6:.0f} us vs {raw * 1e6:.0f} us per call)",
            verdict(ratio <= 1.15),
        ]
    )
    print_table(
        f"ATProto: {PROCESSES} processes x {THREADS} threads crossing expiry; hot path",
        ["measure", "value", "target"],
        rows,
        save="atproto",
    )
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(worker(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])))
    sys.exit(main())
