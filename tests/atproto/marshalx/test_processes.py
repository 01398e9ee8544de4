"""A fleet of real MarshalX clients in real processes: one login, one refresh per generation.

This file is also the worker: ``python test_marshalx_processes.py worker ...``
runs one process that waits for the start signal, gets its client from
``persistent_client`` (or ``async_persistent_client``), calls for a while,
and reports what it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sessionkeeper.atproto import name_for_did
from sessionkeeper.testing.fake_pds import FakePds

CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
WORKER = Path(__file__).resolve()
#: MarshalX refreshes 15 minutes before exp: a 903 s token is due 3 s after it is issued.
ACCESS_LIFETIME = 903.0
CALL_SECONDS = 9.0


class Report:
    """What one worker saw: calls that worked, calls that failed, refresh tokens held."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed: list[str] = []
        self.seen: set[str] = set()
        self.refresh_events = 0

    def on_session_change(self, event: Any, session: Any) -> None:
        if event.value == "refresh":
            self.refresh_events += 1
        self.seen.add(session.refresh_jwt)

    def call_failed(self, exc: Exception) -> None:
        self.failed.append(f"{type(exc).__name__}: {exc}"[:300])

    def dump(self) -> str:
        return json.dumps(
            {
                "ok": self.ok,
                "failed": self.failed,
                "seen": sorted(self.seen),
                "refresh_events": self.refresh_events,
            }
        )


def run_sync(args: argparse.Namespace, report: Report) -> None:
    from sessionkeeper.atproto import PersistentSessionManager
    from sessionkeeper.atproto.marshalx import MARSHALX_REFRESH_MARGIN, persistent_client

    with PersistentSessionManager(
        args.dir, args.url, refresh_margin=MARSHALX_REFRESH_MARGIN
    ) as manager:
        client = persistent_client(manager, args.handle, args.password)
        report.seen.add(client.export_session_string().split(":::")[3])
        client.on_session_change(report.on_session_change)
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            try:
                client.send_post(f"from {os.getpid()}")
                report.ok += 1
            except Exception as exc:
                report.call_failed(exc)
            time.sleep(0.05)


async def run_async(args: argparse.Namespace, report: Report) -> None:
    from sessionkeeper.atproto import AsyncPersistentSessionManager
    from sessionkeeper.atproto.marshalx import MARSHALX_REFRESH_MARGIN, async_persistent_client

    async with AsyncPersistentSessionManager(
        args.dir, args.url, refresh_margin=MARSHALX_REFRESH_MARGIN
    ) as manager:
        client = await async_persistent_client(manager, args.handle, args.password)
        report.seen.add(client.export_session_string().split(":::")[3])
        client.on_session_change(report.on_session_change)
        deadline = time.monotonic() + args.seconds

        async def calls() -> None:
            while time.monotonic() < deadline:
                try:
                    await client.get_profile(args.handle)
                    report.ok += 1
                except Exception as exc:
                    report.call_failed(exc)
                await asyncio.sleep(0.05)

        await asyncio.gather(calls(), calls())


def worker(argv: list[str]) -> int:
    """One process: import, wait for the go file, get a client, call, print the report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["sync", "async"], required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--handle", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--go", required=True)
    args = parser.parse_args(argv)
    import atproto  # noqa: F401  (imported before the start, so all start together)

    Path(args.ready).touch()
    deadline = time.monotonic() + 120
    while not os.path.exists(args.go):
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.005)
    report = Report()
    if args.mode == "sync":
        run_sync(args, report)
    else:
        asyncio.run(run_async(args, report))
    print(report.dump(), flush=True)
    return 0


@pytest.mark.timeout(240)
def test_a_fleet_of_marshalx_clients_logs_in_once_and_refreshes_once_per_generation(
    tmp_path: Path,
) -> None:
    # Grace 0: a refresh token used twice is revoked, so any double refresh shows.
    # The login takes 0.3 s, so the cold-starting processes meet at the login lock.
    with FakePds(grace_period=0, access_lifetime=ACCESS_LIFETIME, create_session_floor=0.3) as pds:
        did = pds.create_account("bot.test", "bot-pass")
        modes = ["sync"] * 3 + ["async"] * 2
        go = tmp_path / "go"
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKER),
                    "worker",
                    f"--mode={mode}",
                    f"--dir={tmp_path / 'sessions'}",
                    f"--url={pds.url}",
                    "--handle=bot.test",
                    "--password=bot-pass",
                    f"--seconds={CALL_SECONDS}",
                    f"--ready={tmp_path / f'ready-{i}'}",
                    f"--go={go}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i, mode in enumerate(modes)
        ]
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"ready-{i}").exists() for i in range(len(modes))):
            assert time.monotonic() < deadline, "workers did not get ready"
            assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
            time.sleep(0.02)
        go.touch()
        reports = []
        for w in workers:
            out, err = w.communicate(timeout=120)
            assert w.returncode == 0, err[-3000:]
            reports.append(json.loads(out.strip().splitlines()[-1]))
        counts, errors = dict(pds.counts), dict(pds.errors)
    assert counts[CREATE] == 1  # five cold starts, one login
    assert [r["failed"] for r in reports] == [[]] * len(modes)
    assert all(r["ok"] > 0 for r in reports)
    assert errors.get(REFRESH, 0) == 0  # no refresh token was revoked
    generations = set().union(*(r["seen"] for r in reports))
    # Every pair after the login came from one refreshSession, and all were seen.
    assert counts[REFRESH] == len(generations) - 1 >= 2, (counts, errors)
    assert sum(r["refresh_events"] for r in reports) >= counts[REFRESH]
    stored = json.loads((tmp_path / "sessions" / name_for_did(did)).read_text())
    assert stored["refreshJwt"] in generations


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    sys.exit(worker(sys.argv[2:]))
