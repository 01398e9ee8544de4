"""Bot runs against the reference ATProto PDS: a persisted session vs a login per run.

A "bot run" is a new python process that builds a PersistentSessionManager on
one session directory, logs in only when no session is stored, and makes one
``com.atproto.server.getSession`` call. The baseline bot logs in on every run,
as scripts without session persistence do. Both run sequentially against the
same PDS in the same process of this benchmark; the PDS's own request log says
how many createSession calls it answered.

Target: 1 createSession for all the persisted runs (the baseline makes one per
run; a real PDS allows 30 per 5 minutes and 300 per day per account).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _table import print_table, verdict
from sessionkeeper.testing.reference_pds import (
    ReferencePds,
    ReferencePdsUnavailable,
    default_tools_dir,
    is_installed,
)

PASSWORD_ENV = "BENCH_BOT_PASSWORD"

#: One bot run. The password comes through the environment, never argv (ps shows argv).
BOT = """
import os, sys
from sessionkeeper.atproto import PersistentSessionManager

session_dir, url, handle, mode = sys.argv[1:5]
with PersistentSessionManager(session_dir, url) as manager:
    stored = manager.list_sessions() if mode == "persisted" else []
    if stored:
        manager.load_session(stored[0])
    else:
        manager.login(handle, os.environ["BENCH_BOT_PASSWORD"])
    answer = manager.query("com.atproto.server.getSession")
if answer["handle"] != handle:
    sys.exit(f"getSession answered for {answer['handle']!r}, not {handle!r}")
"""

SESSION_NSIDS = (
    "com.atproto.server.createSession",
    "com.atproto.server.refreshSession",
    "com.atproto.server.getSession",
)


@dataclass
class Series:
    """One kind of bot: its session directory, its total wall time, what the PDS saw."""

    mode: str
    session_dir: Path
    seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)


def run_bot(pds: ReferencePds, script: Path, series: Series, account: tuple[str, str]) -> None:
    """One bot run in a new python process; add its wall time and PDS calls to ``series``."""
    handle, password = account
    before = pds.counts()
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(script), str(series.session_dir), pds.url, handle, series.mode],
        env={**os.environ, PASSWORD_ENV: password},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    series.seconds += time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{series.mode} bot run failed:\n{result.stderr[-2000:]}")
    series.counts.update(pds.counts() - before)


def run_series(
    pds: ReferencePds, script: Path, work: Path, account: tuple[str, str], runs: int
) -> tuple[Series, Series]:
    """Run both bots ``runs`` times, interleaved, so load changes on the machine hit both alike."""
    persisted = Series("persisted", work / "persisted")
    baseline = Series("login-each-run", work / "baseline")
    pds.reset_counts()
    for index in range(runs):
        # Alternate who goes first so neither always runs on a warmer PDS.
        pair = (persisted, baseline) if index % 2 == 0 else (baseline, persisted)
        for series in pair:
            run_bot(pds, script, series, account)
    return persisted, baseline


def main() -> int:
    """Run both bots against a fresh PDS and print the tables; non-zero on a missed target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="bot runs per series (default 100)")
    args = parser.parse_args()
    if not is_installed():
        print(
            f"the reference PDS is not installed in {default_tools_dir()}; "
            "run `make reference-pds`",
            file=sys.stderr,
        )
        return 1

    with tempfile.TemporaryDirectory(prefix="bench-reference-pds-") as temp:
        work = Path(temp)
        script = work / "bot.py"
        script.write_text(BOT)
        try:
            pds = ReferencePds().start()
        except ReferencePdsUnavailable as exc:
            print(str(exc), file=sys.stderr)
            return 1
        try:
            handle = "benchbot.test"
            password = "bench-" + os.urandom(8).hex()
            pds.create_account(handle, password)
            persisted, baseline = run_series(pds, script, work, (handle, password), args.runs)
        finally:
            pds.stop()

    startup = pds.startup_seconds or 0.0
    return report(persisted, baseline, args.runs, startup)


def report(persisted: Series, baseline: Series, runs: int, startup: float) -> int:
    """Print the tables; return 0 when the target (one createSession in all) is met."""
    create = "com.atproto.server.createSession"
    rows = [
        [
            label,
            str(runs),
            str(series.counts[create]),
            str(series.counts["com.atproto.server.refreshSession"]),
            str(series.counts["com.atproto.server.getSession"]),
            f"{series.seconds:.1f} s",
            f"{series.seconds / runs * 1000:.0f} ms",
        ]
        for label, series in (("persisted", persisted), ("login each run", baseline))
    ]
    print_table(
        f"{runs} bot runs of each kind, interleaved, against the reference PDS "
        f"(@atproto/pds, started in {startup:.1f} s)",
        ["bot", "runs", "create", "refresh", "getSession", "wall", "per run"],
        rows,
        save="reference-pds-runs",
    )
    call_ratio = baseline.counts[create] / max(persisted.counts[create], 1)
    time_ratio = baseline.seconds / persisted.seconds
    met = (
        persisted.counts[create] == 1 and persisted.counts["com.atproto.server.getSession"] == runs
    )
    print_table(
        "Ratios (same run)",
        ["measure", "value", "target", "verdict"],
        [
            ["createSession calls, persisted", str(persisted.counts[create]), "1", verdict(met)],
            ["createSession: baseline / persisted", f"{call_ratio:.0f}x", f"{runs}x", ""],
            [
                "wall time: baseline / persisted",
                f"{time_ratio:.2f}x",
                "> 1",
                verdict(time_ratio > 1),
            ],
        ],
        save="reference-pds",
    )
    if baseline.counts[create] > 30:
        print(
            "A real PDS allows 30 createSession per 5 minutes per account: the baseline's "
            f"{baseline.counts[create]} logins would be refused from run 31 on."
        )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
