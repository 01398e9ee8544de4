"""A server that answered 429 is reported as rate-limiting, never as unreachable.

Real subprocesses of ``sessionkeeper atproto`` against a FakePds that answers 429,
with the fleet-wide wait records in a real directory store.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx
import pytest

from sessionkeeper.atproto import PersistentSessionManager, XrpcError
from sessionkeeper.atproto.backoff import decode_wait, login_wait_name
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.testing.fake_pds import FakePds
from tests.support import run_atproto_cli

pytestmark = pytest.mark.timeout(90)

REFRESH = "com.atproto.server.refreshSession"
LOGIN_BUDGET = 30  # createSession: 30 per 5 minutes


def error_of(stderr: str) -> str:
    """The error line (warnings logged before it are not the message)."""
    return [line for line in stderr.splitlines() if line.startswith("error: ")][-1]


def test_a_login_held_back_by_a_recorded_429_says_rate_limited_until_when_and_which_record(
    tmp_path: Path,
) -> None:
    sessions = tmp_path / "s"
    with FakePds(rate_limits=True) as pds:
        url = pds.url
        pds.create_account("alice.test", "alice-pass")
        with PersistentSessionManager(sessions, pds.url) as manager:
            for _ in range(LOGIN_BUDGET):
                manager.login("alice.test", "alice-pass", force=True)
            with pytest.raises(XrpcError) as refused:  # the server's own 429, recorded
                manager.login("alice.test", "alice-pass", force=True)
            assert refused.value.status == 429
        record = login_wait_name(pds.url, "alice.test")
        wait = decode_wait(DirectoryStore(sessions).get(record))
        assert wait is not None

        held = run_atproto_cli(
            sessions, "login", "alice.test", "--force", "--service", pds.url, password="alice-pass"
        )
        assert pds.counts["com.atproto.server.createSession"] == LOGIN_BUDGET + 1  # not sent
    assert held.returncode == 1
    message = error_of(held.stderr)
    assert "cannot reach" not in held.stderr
    assert message.startswith(f"error: rate-limited by {url}: ")
    until = dt.datetime.fromtimestamp(wait.until, tz=dt.UTC).isoformat(timespec="seconds")
    assert f"wait until {until}" in message
    assert re.search(r"; \d+ s more", message)
    assert f"recorded in the store as {record}" in message
    assert "alice-pass" not in held.stdout + held.stderr


def test_a_refresh_answered_429_is_rate_limited_and_a_dead_server_is_unreachable(
    tmp_path: Path,
) -> None:
    sessions = tmp_path / "s"
    with FakePds() as pds:
        pds.create_account("alice.test", "alice-pass")
        login = run_atproto_cli(
            sessions, "login", "alice.test", "--service", pds.url, password="alice-pass"
        )
        assert login.returncode == 0, login.stderr
        # As a user's script would: through the fake's control endpoint.
        httpx.post(f"{pds.url}/__fake__/fault", params={"mode": "429", "nsids": REFRESH})
        limited = run_atproto_cli(sessions, "refresh")
        assert pds.counts[REFRESH] == 1
        held = run_atproto_cli(sessions, "refresh")  # within the recorded Retry-After
        url = pds.url
    assert limited.returncode == 1
    assert error_of(limited.stderr).startswith(f"error: rate-limited by {url}: ")
    assert "HTTP 429" in limited.stderr and "cannot reach" not in limited.stderr
    assert re.search(
        r"it asked to wait 2 s \(until \d{4}-\d\d-\d\dT[\d:]+\+00:00\)", limited.stderr
    )
    # Sent or held back by the record, it is the server's limit either way.
    assert held.returncode == 1 and "cannot reach" not in held.stderr
    assert error_of(held.stderr).startswith(f"error: rate-limited by {url}: ")

    for record in sessions.glob("wait_*.json"):
        record.unlink()  # the wait is over: nothing holds the next refresh back
    gone = run_atproto_cli(sessions, "refresh")  # the server has stopped: a real failure
    assert gone.returncode == 1
    assert error_of(gone.stderr).startswith(f"error: cannot reach {url}")
