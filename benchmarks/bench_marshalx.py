"""MarshalX ``atproto`` bots: sessionkeeper's persistent client against MarshalX alone.

Every bot process is a real MarshalX ``Client`` (PyPI) calling
``app.bsky.actor.getProfile`` every 0.1 s against a fake PDS that revokes a
used refresh token at once (grace 0) and issues 903 s access tokens, which
MarshalX (refreshing 15 minutes before exp) finds due 3 s after each refresh.
Three ways to keep the session:

* **sessionkeeper**: ``persistent_client(manager, handle, password)``;
* **MarshalX + session string**: MarshalX's documented reuse pattern (load the
  saved string at start, else log in; save it on CREATE and REFRESH with
  ``open('w')``), and on a failed call the bot reloads the saved string, or
  logs in again when the saved one is the one that failed;
* **MarshalX, no recovery**: the same pattern without the reload: a failed
  call is only counted.

Scenarios: (a) 3 processes on one stored session for 7 s; (b) an empty store
and 3 processes starting together; (c) overlapping cron runs: 3 runs of 3 s
each, one starting every 1.5 s, on one stored session. The three ways run
side by side (each on its own fake), so they share the machine's load.

Counted by the server: createSession, refreshSession, revoked refreshes
(refreshSession answered ExpiredToken); by the bots: failed calls. Targets
for sessionkeeper: one createSession per empty store (none with a stored
session), nothing revoked, nothing failed. With grace 0 a second refresh of
one generation is revoked, so "0 revoked" is "one refreshSession per token
generation".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _table import print_table, verdict

HANDLE, PASSWORD = "bot.test", "bot-pass"
CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
ACCESS_LIFETIME = 903.0
CALL_EVERY = 0.1
VARIANTS = ("sessionkeeper", "session-string", "no-recovery")
LABELS = {
    "sessionkeeper": "sessionkeeper",
    "session-string": "MarshalX + session string",
    "no-recovery": "MarshalX, no recovery",
}


# --- the bot process ----------------------------------------------------------------------


def plain_client(url: str, saved: Path, *, fresh_login: bool = False) -> Any:
    """MarshalX's documented session reuse: load the saved string, else log in; save on change."""
    from atproto import Client, SessionEvent

    client = Client(base_url=url)

    def save(event: Any, session: Any) -> None:
        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):
            with open(saved, "w") as file:  # as the example does: no lock, not atomic
                file.write(session.export())

    client.on_session_change(save)
    text = saved.read_text() if saved.exists() and not fresh_login else ""
    if text:
        client.login(session_string=text)
    else:
        client.login(HANDLE, PASSWORD)
    return client


def recover(client: Any, saved: Path) -> None:
    """Reload the saved session string, or log in again if it is the one that failed."""
    text = saved.read_text() if saved.exists() else ""
    if text and text != client.export_session_string():
        client.login(session_string=text)
    else:
        client.login(HANDLE, PASSWORD)


def bot_client(variant: str, url: str, workdir: Path) -> Any:
    if variant == "sessionkeeper":
        from sessionkeeper.atproto import PersistentSessionManager
        from sessionkeeper.atproto.marshalx import MARSHALX_REFRESH_MARGIN, persistent_client

        manager = PersistentSessionManager(
            workdir / "sessions", url, refresh_margin=MARSHALX_REFRESH_MARGIN
        )
        return persistent_client(manager, HANDLE, PASSWORD)
    return plain_client(url, workdir / "session.txt")


def bot(argv: list[str]) -> int:
    """One bot run: wait for go (+ delay), get a client, call for a while, print counts."""
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("url")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("go")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    import atproto  # noqa: F401  (before the start signal: all runs start on time)

    Path(f"{args.go}.ready-{os.getpid()}").touch()
    while not os.path.exists(args.go):
        time.sleep(0.005)
    time.sleep(args.delay)
    ok = failed = 0
    try:
        client = bot_client(args.variant, args.url, args.workdir)
    except Exception:
        failed += 1  # the saved session did not work (or the login failed)
        if args.variant != "session-string":
            print(json.dumps({"ok": ok, "failed": failed}), flush=True)
            return 0
        client = plain_client(args.url, args.workdir / "session.txt", fresh_login=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            client.get_profile(HANDLE)
            ok += 1
        except Exception:
            failed += 1
            if args.variant == "session-string":
                try:
                    recover(client, args.workdir / "session.txt")
                except Exception:
                    failed += 1
        time.sleep(CALL_EVERY)
    print(json.dumps({"ok": ok, "failed": failed}), flush=True)
    return 0


# --- the driver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """Bot runs released together: each starts ``delay`` seconds after go, runs ``seconds``."""

    name: str
    delays: tuple[float, ...]
    seconds: float
    seeded: bool  # a session is stored before the runs start


SCENARIOS = (
    Scenario("3 processes, one session, 7 s", (0.0, 0.0, 0.0), 7.0, seeded=True),
    Scenario("empty store, 3 cold starts", (0.0, 0.0, 0.0), 0.5, seeded=False),
    Scenario("cron: 3 runs of 3 s, every 1.5 s", (0.0, 1.5, 3.0), 3.0, seeded=True),
)


def seed(variant: str, url: str, workdir: Path) -> None:
    """Store one logged-in session the way the variant keeps it."""
    if variant == "sessionkeeper":
        from sessionkeeper.atproto import PersistentSessionManager

        with PersistentSessionManager(workdir / "sessions", url) as manager:
            manager.login(HANDLE, PASSWORD)
    else:
        plain_client(url, workdir / "session.txt")


def spawn_bots(scenario: Scenario, variant: str, url: str, workdir: Path) -> list[Any]:
    """The scenario's bot runs of one variant, waiting for ``workdir/go``."""
    return [
        subprocess.Popen(
            [
                *(sys.executable, __file__, "bot", variant, url, str(workdir), str(workdir / "go")),
                *("--delay", str(delay), "--seconds", str(scenario.seconds)),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for delay in scenario.delays
    ]


def run(scenario: Scenario, tmp: Path) -> dict[str, dict[str, int]]:
    """One scenario, every variant at once, each on a fresh fake PDS of its own.

    The variants run side by side so that the machine's load is the same for all.
    """
    from sessionkeeper.testing.fake_pds import FakePds

    with contextlib.ExitStack() as stack:
        fakes: dict[str, FakePds] = {}
        bots: dict[str, list[Any]] = {}
        for variant in VARIANTS:
            fake = stack.enter_context(FakePds(grace_period=0, access_lifetime=ACCESS_LIFETIME))
            fake.create_account(HANDLE, PASSWORD)
            workdir = tmp / f"{variant}-{SCENARIOS.index(scenario)}"
            workdir.mkdir()
            fakes[variant] = fake
            bots[variant] = spawn_bots(scenario, variant, fake.url, workdir)
        everyone = [bot for group in bots.values() for bot in group]
        deadline = time.monotonic() + 180
        while len(list(tmp.glob(f"*-{SCENARIOS.index(scenario)}/go.ready-*"))) < len(everyone):
            if time.monotonic() > deadline or any(bot.poll() is not None for bot in everyone):
                raise RuntimeError("the bot processes did not get ready")
            time.sleep(0.01)
        # Seeded last, so every token generation starts at the go signal, however
        # long the bots took to start.
        for variant, fake in fakes.items():
            if scenario.seeded:
                seed(variant, fake.url, tmp / f"{variant}-{SCENARIOS.index(scenario)}")
            fake.reset_counts()
        for variant in VARIANTS:
            (tmp / f"{variant}-{SCENARIOS.index(scenario)}" / "go").touch()
        figures = {}
        for variant, group in bots.items():
            reports = [
                json.loads(b.communicate(timeout=120)[0].strip().splitlines()[-1]) for b in group
            ]
            counts, errors = dict(fakes[variant].counts), dict(fakes[variant].errors)
            figures[variant] = {
                "create": counts.get(CREATE, 0),
                "refresh": counts.get(REFRESH, 0),
                "revoked": errors.get(f"{REFRESH}:ExpiredToken", 0),
                "ok": sum(r["ok"] for r in reports),
                "failed": sum(r["failed"] for r in reports),
            }
        return figures


def main() -> int:
    started = time.monotonic()
    rows: list[list[str]] = []
    all_met = True
    with tempfile.TemporaryDirectory(prefix="bench-marshalx-") as name:
        for scenario in SCENARIOS:
            measured = run(scenario, Path(name))
            for variant in VARIANTS:
                figures = measured[variant]
                row = [scenario.name, LABELS[variant]]
                row += [str(figures[k]) for k in ("create", "refresh", "revoked", "failed", "ok")]
                if variant == "sessionkeeper":
                    met = (
                        figures["create"] == (0 if scenario.seeded else 1)
                        and figures["revoked"] == 0
                        and figures["failed"] == 0
                    )
                    all_met = all_met and met
                    row.append(verdict(met))
                else:
                    row.append("")
                rows.append(row)
    print_table(
        f"MarshalX bots on one account, grace 0 ({time.monotonic() - started:.0f} s)",
        ["scenario", "client", "createSession", "refreshSession", "revoked", "failed", "ok", ""],
        rows,
        save="marshalx",
    )
    return 0 if all_met else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "bot":
        sys.exit(bot(sys.argv[2:]))
    sys.exit(main())
