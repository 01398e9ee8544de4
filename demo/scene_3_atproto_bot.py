"""Scene 3: a Bluesky bot run from cron keeps one session across runs and processes.

A fake PDS runs as its own process. Bot run 1 (a new Python process) logs in
and posts; runs 2-10 (each a new process) reuse the stored session without a
single createSession. Then two hours pass on the server and 8 bot processes
start at the same moment: they share one refreshSession between them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

HANDLE, PASSWORD = "bot.test", "bot-app-password"
CREATE, REFRESH = "com.atproto.server.createSession", "com.atproto.server.refreshSession"
POST = "com.atproto.repo.createRecord"


class OffsetClock:
    """The real clock moved by a fixed offset (the server's clock moved as far)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def bot(session_dir: str, url: str, text: str, go: str | None, offset: float) -> int:
    """One cron run of the bot: reuse the stored session (log in only if none), post once."""
    from sessionkeeper.atproto import PersistentSessionManager

    with PersistentSessionManager(session_dir, url, clock=OffsetClock(offset)) as manager:
        stored = manager.list_sessions()
        logged_in = False
        if stored:
            manager.load_session(stored[0])
        else:
            manager.login(HANDLE, os.environ["BOT_PASSWORD"])
            logged_in = True
        if go:
            Path(go + ".ready-" + str(os.getpid())).touch()
            while not os.path.exists(go):
                time.sleep(0.005)
        session = manager.session
        assert session is not None
        try:
            answer = manager.procedure(
                POST,
                {"repo": session.did, "collection": "app.bsky.feed.post", "record": {"text": text}},
            )
            ok = True
        except Exception as exc:
            answer, ok = {"error": f"{type(exc).__name__}: {exc}"}, False
    print(json.dumps({"logged_in": logged_in, "ok": ok, "answer": answer}))
    return 0 if ok else 1


def start_fake() -> tuple[subprocess.Popen[str], str]:
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sessionkeeper.testing.fake_pds",
            "--port",
            "0",
            "--grace",
            "0",
            "--manual-clock",
            "--account",
            f"{HANDLE}:{PASSWORD}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fake.stdout is not None
    url = ""
    while not url:
        line = fake.stdout.readline()
        if not line:
            raise RuntimeError("the fake PDS did not start")
        if line.startswith("FAKE_PDS_URL="):
            url = line.strip().split("=", 1)[1]
    fake.stdout.readline()  # ACCOUNT=...
    return fake, url


def bot_command(
    session_dir: Path, url: str, text: str, go: str = "", offset: float = 0
) -> list[str]:
    return [sys.executable, __file__, "bot", str(session_dir), url, text, go, str(offset)]


def counts(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/__fake__/counts").json())


def main() -> int:
    console = Console()
    console.rule("[bold]Scene 3: an ATProto bot, ten cron runs and a stampede, one session")
    fake, url = start_fake()
    env = {**os.environ, "BOT_PASSWORD": PASSWORD}
    claims: list[tuple[str, bool]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sessionkeeper-demo-") as tmp:
            session_dir = Path(tmp) / "sessions"
            runs = []
            for run in range(1, 11):
                done = subprocess.run(
                    bot_command(session_dir, url, f"cron run {run}"),
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            after_runs = counts(url)["counts"]
            console.print(
                f"Run 1 logged in: {runs[0]['logged_in']}; runs 2-10 logged in: "
                f"{sum(r['logged_in'] for r in runs[1:])} times; posts made: "
                f"{sum(r['ok'] for r in runs)}/10."
            )
            console.print(
                f"The PDS saw {after_runs.get(CREATE, 0)} createSession and "
                f"{after_runs.get(POST, 0)} createRecord calls."
            )
            claims.append(("1 createSession for 10 runs", after_runs.get(CREATE, 0) == 1))
            claims.append(("10 posts made", sum(r["ok"] for r in runs) == 10))

            # Two hours pass on the server; the bots' clocks move as far.
            httpx.post(f"{url}/__fake__/advance", params={"seconds": 7201})
            httpx.post(f"{url}/__fake__/reset-counts")
            go = str(Path(tmp) / "go")
            stampede = [
                subprocess.Popen(
                    bot_command(session_dir, url, f"stampede {i}", go, 7201),
                    stdout=subprocess.PIPE,
                    text=True,
                    env=env,
                )
                for i in range(8)
            ]
            deadline = time.monotonic() + 60
            while len(list(Path(tmp).glob("go.ready-*"))) < 8 and time.monotonic() < deadline:
                time.sleep(0.01)
            Path(go).touch()
            results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in stampede]
            report = counts(url)
            seen = report["counts"]
            console.print(
                f"8 processes crossed the expiry together: {sum(r['ok'] for r in results)}/8 "
                f"posted, the PDS saw {seen.get(REFRESH, 0)} refreshSession, "
                f"{seen.get(CREATE, 0)} createSession, error answers: {report['errors'] or 0}."
            )
            table = Table(title="Calls the fake PDS counted during the stampede")
            table.add_column("XRPC method")
            table.add_column("calls", justify="right")
            for nsid, n in sorted(seen.items()):
                table.add_row(nsid, str(n))
            console.print(table)
            claims.append(("1 refreshSession for 8 processes", seen.get(REFRESH, 0) == 1))
            claims.append(("0 createSession in the stampede", seen.get(CREATE, 0) == 0))
            claims.append(("8/8 stampede posts made", all(r["ok"] for r in results)))
    finally:
        fake.terminate()
        fake.wait(10)
    for claim, held in claims:
        console.print(f"{'[green]held[/]' if held else '[red]FAILED[/]'}  {claim}")
    return 0 if all(held for _, held in claims) else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "bot":
        _, _, directory, pds_url, post_text, go_file, clock_offset = sys.argv
        sys.exit(bot(directory, pds_url, post_text, go_file or None, float(clock_offset)))
    sys.exit(main())
