"""``sessionkeeper atproto login --oauth`` and OAuth sessions in the other commands, as a
real subprocess signing in against the fake authorization server."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import OAuthClient
from sessionkeeper.atproto.oauth.session import oauth_name_for_did
from sessionkeeper.stores import DirectoryStore
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth
from tests.support import atproto_cli_command, run_atproto_cli

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        yield server


def fake_env(fake: FakeOAuth) -> dict[str, str]:
    """Handles and DIDs resolve on the fake."""
    return {"ATP_HANDLE_RESOLVER": fake.url, "ATP_PLC_DIRECTORY": fake.url}


def cli(fake: FakeOAuth, sessions: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    return atproto_cli_command(sessions, *args, env_extra=fake_env(fake))


def run(fake: FakeOAuth, sessions: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_atproto_cli(sessions, *args, env_extra=fake_env(fake))


def signed_in(fake: FakeOAuth, sessions: Path) -> None:
    """Store an OAuth session of alice in ``sessions`` the way the library signs in."""
    with OAuthClient(
        store=DirectoryStore(sessions), handle_resolver=fake.url, plc_directory=fake.url
    ) as client:
        location = httpx.get(client.authorize(DEFAULT_HANDLE)).headers["location"]
        client.callback(location)


def test_login_with_oauth_then_list_whoami_call_logout(tmp_path: Path, fake: FakeOAuth) -> None:
    sessions = tmp_path / "s"
    command, env = cli(fake, sessions, "login", "--oauth", "--no-browser", "alice.test")
    login = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert login.stderr is not None
    url = None
    for line in login.stderr:
        found = re.search(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)", line)
        if found:
            url = found.group(1)
            break
    assert url is not None, "the CLI never printed the authorization URL"
    location = httpx.get(url).headers["location"]  # the fake consents at once
    page = httpx.get(location)  # the browser lands on the CLI's loopback receiver
    assert "You may close this window" in page.text
    out, err = login.communicate(timeout=60)
    assert login.returncode == 0, err
    assert "logged in as alice.test with OAuth" in out

    listed = run(fake, sessions, "sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["kind"] == "oauth" and row["did"] == DEFAULT_DID
    assert row["scope"] == "atproto transition:generic" and row["access_expires_at"] > 0
    # A loopback (public) client: the refresh token and the session end 2 weeks after sign-in.
    assert row["refresh_expires_at"] == row["session_ends_at"]
    assert row["session_ends_at"] - row["access_expires_at"] == pytest.approx(14 * 86400 - 3600)
    table = run(fake, sessions, "sessions", "list")
    assert "oauth" in table.stdout and DEFAULT_DID in table.stdout

    whoami = run(fake, sessions, "whoami")
    assert whoami.returncode == 0, whoami.stderr
    assert "alice.test" in whoami.stdout and "(OAuth)" in whoami.stdout
    assert "refresh token expires" in whoami.stdout and "session ends" in whoami.stdout
    called = run(fake, sessions, "call", "com.atproto.server.getSession")
    assert called.returncode == 0 and json.loads(called.stdout)["did"] == DEFAULT_DID

    logout = run(fake, sessions, "logout")
    assert logout.returncode == 0, logout.stderr
    assert fake.counts["revoked"] == 1
    after = run(fake, sessions, "whoami")
    assert after.returncode == 3


def test_login_oauth_reuses_a_stored_session_and_force_signs_in_anew(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    sessions = tmp_path / "s"
    signed_in(fake, sessions)  # signed in by a library script
    par = fake.counts["par"]
    again = run(fake, sessions, "login", "--oauth", "--no-browser", "@Alice.test", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "did": DEFAULT_DID,
        "handle": DEFAULT_HANDLE,
        "kind": "oauth",
        "reused": True,
    }
    assert fake.counts["par"] == par  # no new authorization was started

    command, env = cli(fake, sessions, "login", "--oauth", "--no-browser", DEFAULT_DID, "--force")
    forced = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert forced.stderr is not None
    for line in forced.stderr:
        found = re.search(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)", line)
        if found:
            httpx.get(httpx.get(found.group(1)).headers["location"])
            break
    out, err = forced.communicate(timeout=60)
    assert forced.returncode == 0, err
    assert "logged in as alice.test with OAuth" in out
    assert fake.counts["revoked"] == 1  # the replaced session was revoked first
    assert fake.counts["par"] > par  # and a new authorization was made


def test_a_forced_oauth_login_whose_revocation_fails_warns_and_signs_in(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    sessions = tmp_path / "s"
    signed_in(fake, sessions)
    fake.ignore_revocations = True  # 200, and the PDS keeps accepting the old token
    command, env = cli(fake, sessions, "login", "--oauth", "--no-browser", "alice.test", "--force")
    forced = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert forced.stderr is not None
    seen: list[str] = []
    for line in forced.stderr:
        seen.append(line)
        found = re.search(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)", line)
        if found:
            httpx.get(httpx.get(found.group(1)).headers["location"])
            break
    out, err = forced.communicate(timeout=60)
    assert forced.returncode == 0, err
    assert "warning: could not revoke the stored session of " + DEFAULT_DID in "".join(seen)
    assert "logged in as alice.test with OAuth" in out


def test_a_declined_oauth_login_fails_naming_the_decline(tmp_path: Path, fake: FakeOAuth) -> None:
    fake.consent = "deny"
    command, env = cli(fake, tmp_path / "s", "login", "--oauth", "--no-browser", "alice.test")
    login = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert login.stderr is not None
    for line in login.stderr:
        found = re.search(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)", line)
        if found:
            httpx.get(httpx.get(found.group(1)).headers["location"])
            break
    _, err = login.communicate(timeout=60)
    assert login.returncode != 0
    assert "declined" in err


def test_unreadable_and_misnamed_oauth_entries_hide_no_other_session(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    sessions = tmp_path / "s"
    signed_in(fake, sessions)
    (sessions / "oauth_did_plc_huge.json").write_bytes(b" " * (2 * 1024 * 1024))  # over the cap
    own = (sessions / oauth_name_for_did(DEFAULT_DID)).read_bytes()
    (sessions / "oauth_did_plc_someoneelse.json").write_bytes(own)  # not the DID it names
    listed = run(fake, sessions, "sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["did"] for row in json.loads(listed.stdout)] == [DEFAULT_DID]
    assert "oauth_did_plc_huge.json" in listed.stderr  # skipped with a warning naming it
    table = run(fake, sessions, "sessions", "list")
    assert table.returncode == 0 and DEFAULT_DID in table.stdout, table.stderr
    whoami = run(fake, sessions, "whoami")  # the only readable session is picked
    assert whoami.returncode == 0, whoami.stderr
    assert DEFAULT_HANDLE in whoami.stdout


def test_refresh_reverifies_the_issuer_and_keeps_the_session(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    sessions = tmp_path / "s"
    signed_in(fake, sessions)
    stored = (sessions / oauth_name_for_did(DEFAULT_DID)).read_bytes()
    fake.named_issuer = "https://other-issuer.example"  # the account's PDS moved to another issuer
    refused = run(fake, sessions, "refresh")
    assert refused.returncode == 1, refused.stderr
    assert "delegates to https://other-issuer" in refused.stderr
    assert fake.counts["refresh"] == 0  # the refresh token never left
    assert (sessions / oauth_name_for_did(DEFAULT_DID)).read_bytes() == stored
    fake.named_issuer = None
    again = run(fake, sessions, "refresh")
    assert again.returncode == 0, again.stderr
    assert fake.counts["refresh"] == 1


def answering(fake: FakeOAuth, monkeypatch: pytest.MonkeyPatch, body: object) -> None:
    """Make the fake's XRPC calls answer ``body`` (after its usual token checks)."""
    real = fake.resource

    def resource(*args: Any, **kwargs: Any) -> tuple[int, object, dict[str, str]]:
        status, _, headers = real(*args, **kwargs)
        return status, body, headers

    monkeypatch.setattr(fake, "resource", resource)


def test_whoami_names_a_get_session_answer_that_is_not_an_object(
    tmp_path: Path, fake: FakeOAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = tmp_path / "s"
    signed_in(fake, sessions)
    answering(fake, monkeypatch, ["not", "an", "object"])
    who = run(fake, sessions, "whoami")
    assert who.returncode == 1, who.stderr
    assert "not a JSON object" in who.stderr
    assert "Traceback" not in who.stderr


def test_whoami_prints_what_the_pds_answers_literally(
    tmp_path: Path, fake: FakeOAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = tmp_path / "s"
    signed_in(fake, sessions)
    answering(fake, monkeypatch, {"handle": "[bold]alice.test[/bold]", "did": "did:plc:[red]x[/]"})
    who = run(fake, sessions, "whoami")
    assert who.returncode == 0, who.stderr
    assert "[bold]alice.test[/bold] did:plc:[red]x[/] (OAuth)" in who.stdout
