"""``hac status`` and the status line a slow HAC shows on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.hac.session import SessionManager
from sessionkeeper.testing.fake_hac import FakeHac
from tests.cli.hac.helpers import hac_env, run_hac

pytestmark = pytest.mark.timeout(120)

LOGIN = {"HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
#: Longer than the status line's one-second delay, with a margin for a loaded machine.
SLOW = 1.8


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac() as server:
        yield server


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def _cache(home: Path) -> SessionManager:
    return SessionManager(home / ".cache" / "hac-client")


def test_status_reports_the_session_and_that_hac_takes_it(fake: FakeHac, home: Path) -> None:
    started = run_hac(home, "--url", fake.url, "session", "start", "local", "-u", "admin",
                      stdin="nimda\n")  # fmt: skip
    assert started.returncode == 0, started.stderr
    fake.reset_counts()
    shown = run_hac(home, "--url", fake.url, "status")
    assert shown.returncode == 0, shown.stderr
    assert "Environment: local" in shown.stdout and "User:        admin" in shown.stdout
    assert "Accepted:    yes" in shown.stdout
    report = json.loads(run_hac(home, "--url", fake.url, "status", "--json").stdout)
    assert report["environment"] == "local" and report["endpoint"] == "hac"
    assert report["username"] == "admin" and report["accepted"] is True
    assert report["url"] == fake.url and report["age_seconds"] >= 0
    assert fake.total_requests == 2 and fake.logins == 0  # one request per status


def test_status_of_a_session_hac_dropped_logs_in_nowhere_and_keeps_the_cache(
    fake: FakeHac, home: Path
) -> None:
    assert run_hac(home, "--url", fake.url, "groovy", "return 1", env=LOGIN).returncode == 0
    before = _cache(home).load_session(fake.url, "admin", "local/hac")
    fake.kill_all_sessions()
    logins = fake.logins
    # A password is at hand, yet status only observes.
    done = run_hac(home, "--url", fake.url, "status", "--json", env=LOGIN)
    assert done.returncode == 1
    assert json.loads(done.stdout)["accepted"] is False
    assert "hac --url " in done.stderr and "session start local --endpoint hac" in done.stderr
    assert fake.logins == logins
    assert _cache(home).load_session(fake.url, "admin", "local/hac") == before


def test_status_of_a_hac_that_does_not_answer_still_shows_the_session_it_asked_about(
    fake: FakeHac, home: Path
) -> None:
    started = run_hac(home, "--url", fake.url, "session", "start", "local", "-u", "admin",
                      stdin="nimda\n")  # fmt: skip
    assert started.returncode == 0, started.stderr
    url = fake.url
    fake.stop()  # HAC goes down
    shown = run_hac(home, "--url", url, "status")
    assert shown.returncode == 1
    assert f"URL:         {url}" in shown.stdout and "User:        admin" in shown.stdout
    assert shown.stdout.rstrip().endswith("Accepted:    unknown (see the error below)")
    assert "checking the session: cannot reach HAC" in shown.stderr
    assert "update data" not in shown.stderr
    as_json = run_hac(home, "--url", url, "status", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["error"] == "connection"  # one object, nothing else


def test_status_without_a_session_says_how_to_start_one(fake: FakeHac, home: Path) -> None:
    done = run_hac(home, "--url", fake.url, "status", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"] == "no_session"
    assert fake.total_requests == 0


def _stderr_on_a_terminal(argv: list[str], env: dict[str, str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with stderr on a pty (stdout a pipe); return code, stdout, terminal bytes."""
    main_fd, terminal_fd = pty.openpty()
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal_fd, env=env
        )
        os.close(terminal_fd)
        terminal = b""
        while True:
            ready, _, _ = select.select([main_fd], [], [], 60)
            assert ready, f"no end of output; so far: {terminal!r}"
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:  # the pty is closed once the process is gone
                break
            if not chunk:
                break
            terminal += chunk
        assert process.stdout is not None
        stdout = process.stdout.read()
        process.stdout.close()
        return process.wait(timeout=60), stdout, terminal
    finally:
        os.close(main_fd)


def test_a_slow_hac_shows_what_is_awaited_on_a_terminal_only(fake: FakeHac, home: Path) -> None:
    fake.latency = SLOW
    argv = [sys.executable, "-m", "sessionkeeper", "hac", "--url", fake.url, "groovy", "return 9"]
    code, stdout, terminal = _stderr_on_a_terminal(argv, hac_env(home, LOGIN))
    assert (code, stdout) == (0, b"9\n"), terminal
    text = terminal.decode()
    host = fake.url
    assert f"logging in to HAC at {host} as 'admin' (until " in text
    assert f"waiting for HAC at {host} (until " in text
    assert "\x1b[K" in text  # each line is erased when its answer comes
    assert "nimda" not in text
    # In a pipe (a CI log) the same slow run prints no status line.
    piped = run_hac(home, "--url", fake.url, "groovy", "return 10")
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "10\n", "")
