"""``sessionkeeper atproto ...`` run as a real subprocess against a fake PDS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.stores import MemoryStore
from sessionkeeper.testing.fake_pds import FakePds
from tests.support import run_atproto_cli

pytestmark = pytest.mark.timeout(120)

REFRESH = "com.atproto.server.refreshSession"


@pytest.fixture(scope="module")
def pds() -> Iterator[FakePds]:
    with FakePds() as fake:
        fake.create_account("alice.test", "alice-pass", email="alice@example.com")
        fake.create_account("bob.test", "bob-pass")
        yield fake


def run(
    session_dir: Path, *args: str, password: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_atproto_cli(session_dir, *args, password=password, stdin=stdin)


def test_login_call_whoami_list_refresh_logout(tmp_path: Path, pds: FakePds) -> None:
    sessions = tmp_path / "s"
    logged = run(sessions, "login", "alice.test", "--service", pds.url, password="alice-pass")
    assert logged.returncode == 0, logged.stderr
    assert "alice.test" in logged.stdout
    assert "alice-pass" not in logged.stdout + logged.stderr

    listed = run(sessions, "sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["handle"], r["current"]) for r in rows] == [("alice.test", True)]
    did = rows[0]["did"]
    assert rows[0]["access_expires_at"] < rows[0]["refresh_expires_at"]
    assert rows[0]["session_ends_at"] is None  # an app-password session has no absolute end

    table = run(sessions, "sessions", "list")
    assert table.returncode == 0 and "alice.test" in table.stdout and did in table.stdout

    before = pds.counts["com.atproto.server.createSession"]
    who = run(sessions, "whoami")
    assert who.returncode == 0, who.stderr
    assert "alice.test" in who.stdout and pds.url in who.stdout
    assert f"sessions: DirectoryStore('{sessions}" in who.stdout.replace("\n", "")

    record = json.dumps({"repo": did, "collection": "app.bsky.feed.post", "record": {"text": "hi"}})
    posted = run(sessions, "call", "com.atproto.repo.createRecord", "--data", record)
    assert posted.returncode == 0, posted.stderr
    assert json.loads(posted.stdout)["uri"].startswith(f"at://{did}/")
    listing = run(
        sessions, "call", "com.atproto.repo.listRecords",
        "--param", f"repo={did}", "--param", "collection=app.bsky.feed.post",
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    assert [r["value"]["text"] for r in json.loads(listing.stdout)["records"]] == ["hi"]
    assert pds.counts["com.atproto.server.createSession"] == before  # the session was reused

    refreshes = pds.counts[REFRESH]
    refreshed = run(sessions, "refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    assert pds.counts[REFRESH] == refreshes + 1

    out = run(sessions, "logout")
    assert out.returncode == 0, out.stderr
    gone = run(sessions, "whoami")
    assert gone.returncode == 3
    assert json.loads(run(sessions, "sessions", "list", "--json").stdout) == []


def test_wrong_password_exits_3(tmp_path: Path, pds: FakePds) -> None:
    result = run(tmp_path, "login", "alice.test", "--service", pds.url, password="wrong")
    assert result.returncode == 3
    assert "Invalid identifier or password" in result.stderr
    assert "wrong" not in result.stderr.replace("wrong password", "")


def test_no_password_without_a_terminal_is_a_usage_error(tmp_path: Path, pds: FakePds) -> None:
    result = run(tmp_path, "login", "alice.test", "--service", pds.url)
    assert result.returncode == 2
    assert "ATP_PASSWORD" in result.stderr


def test_revoked_session_exits_3(tmp_path: Path, pds: FakePds) -> None:
    assert (
        run(tmp_path, "login", "bob.test", "--service", pds.url, password="bob-pass").returncode
        == 0
    )
    did = json.loads(run(tmp_path, "sessions", "list", "--json").stdout)[0]["did"]
    pds.revoke_all(did)
    result = run(tmp_path, "refresh")
    assert result.returncode == 3
    assert "log in again" in result.stderr


def test_server_error_exits_1_and_bad_usage_exits_2(tmp_path: Path, pds: FakePds) -> None:
    assert (
        run(tmp_path, "login", "alice.test", "--service", pds.url, password="alice-pass").returncode
        == 0
    )
    bad_repo = run(
        tmp_path,
        "call",
        "com.atproto.repo.listRecords",
        "--param",
        "repo=nobody.test",
        "--param",
        "collection=a.b.c",
    )
    assert bad_repo.returncode == 1 and "InvalidRequest" in bad_repo.stderr
    assert run(tmp_path, "call", "not-an-nsid").returncode == 2
    assert run(tmp_path, "call", "com.atproto.repo.createRecord", "--data", "{oops").returncode == 2
    assert run(tmp_path, "--did", "did:plc:../x", "whoami").returncode == 2


def test_several_sessions_need_did_unless_one_is_current(tmp_path: Path, pds: FakePds) -> None:
    assert (
        run(tmp_path, "login", "alice.test", "--service", pds.url, password="alice-pass").returncode
        == 0
    )
    assert (
        run(tmp_path, "login", "bob.test", "--service", pds.url, password="bob-pass").returncode
        == 0
    )
    rows = json.loads(run(tmp_path, "sessions", "list", "--json").stdout)
    by_handle = {r["handle"]: r for r in rows}
    assert by_handle["bob.test"]["current"] is True
    assert "bob.test" in run(tmp_path, "whoami").stdout
    chosen = run(tmp_path, "--did", by_handle["alice.test"]["did"], "whoami")
    assert chosen.returncode == 0 and "alice.test" in chosen.stdout


def test_import_session_string_from_stdin(tmp_path: Path, pds: FakePds) -> None:
    with PersistentSessionManager(None, pds.url, store=MemoryStore()) as m:
        session = m.login("alice.test", "alice-pass")
    text = session.to_session_string(pds.url)
    result = run(tmp_path, "import-session-string", "-", stdin=text)
    assert result.returncode == 0, result.stderr
    who = run(tmp_path, "whoami")
    assert who.returncode == 0 and "alice.test" in who.stdout
    assert session.access_jwt not in result.stdout + who.stdout


def test_import_session_string_refuses_a_pds_that_is_not_http(tmp_path: Path) -> None:
    text = "alice.test:::did:plc:alice:::access-secret-123:::refresh-secret-456:::ftp://x"
    result = run(tmp_path / "s", "import-session-string", "-", stdin=text)
    assert result.returncode == 2  # bad input, not a failure of the store or the network
    assert "PDS endpoint (its fifth field) uses ftp:" in result.stderr
    assert "http:// or https://" in result.stderr
    assert "secret" not in result.stdout + result.stderr
    assert not list((tmp_path / "s").glob("did_*.json"))


def test_store_url_option(tmp_path: Path, pds: FakePds) -> None:
    db = tmp_path / "sessions.db"
    env_args = ("--store", f"sqlite:{db}")
    login = run(
        tmp_path / "unused",
        *env_args,
        "login",
        "alice.test",
        "--service",
        pds.url,
        password="alice-pass",
    )
    assert login.returncode == 0, login.stderr
    assert db.exists()
    assert run(tmp_path / "unused", *env_args, "whoami").returncode == 0


def test_store_url_from_the_environment(tmp_path: Path, pds: FakePds) -> None:
    db = tmp_path / "env.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATP_", "SESSIONKEEPER_"))}
    env |= {
        "SESSIONKEEPER_STORE": f"sqlite:{db}",
        "ATP_PASSWORD": "alice-pass",
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    command = [sys.executable, "-m", "sessionkeeper", "atproto"]
    login = subprocess.run(
        [*command, "login", "alice.test", "--service", pds.url],
        capture_output=True, text=True, env=env, input="", timeout=60,
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert db.exists()
    assert not (tmp_path / "config").exists()  # nothing went to the default directory
    who = subprocess.run(
        [*command, "whoami"], capture_output=True, text=True, env=env, input="", timeout=60
    )
    assert who.returncode == 0, who.stderr
    assert "alice.test" in who.stdout


def test_a_command_for_one_account_reads_no_other_session(tmp_path: Path, pds: FakePds) -> None:
    logged = run(tmp_path, "login", "alice.test", "--service", pds.url, password="alice-pass")
    assert logged.returncode == 0, logged.stderr
    did = json.loads(run(tmp_path, "sessions", "list", "--json").stdout)[0]["did"]
    (tmp_path / "did_plc_huge.json").write_bytes(b" " * (2 * 1024 * 1024))  # unreadable
    (tmp_path / "oauth_did_plc_huge.json").write_bytes(b" " * (2 * 1024 * 1024))
    who = run(tmp_path, "--did", did, "whoami")
    assert who.returncode == 0, who.stderr
    assert "alice.test" in who.stdout
    assert "huge" not in who.stderr  # neither entry was read, so neither was warned about
