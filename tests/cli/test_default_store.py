"""One default store for the CLI and the library, ``SESSIONKEEPER_STORE`` everywhere, and
a login that reuses: real subprocesses with HOME in a temp dir, against a fake PDS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.atproto import OAuthClient, PersistentSessionManager
from sessionkeeper.stores import DirectoryStore, SqliteStore
from sessionkeeper.testing.fake_pds import FakePds

pytestmark = pytest.mark.timeout(120)

CREATE = "com.atproto.server.createSession"


@pytest.fixture
def pds() -> Iterator[FakePds]:
    # A slow createSession widens the window in which a cold fleet's logins overlap.
    with FakePds(create_session_floor=0.3) as fake:
        fake.create_account("alice.test", "alice-pass")
        yield fake


def user_env(home: Path, **extra: str) -> dict[str, str]:
    """A user's environment: HOME in tmp, no XDG overrides, no inherited store or ATP_ vars."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ATP_", "SESSIONKEEPER_", "XDG_"))
    }
    return env | {"HOME": str(home), "COLUMNS": "200", **extra}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessionkeeper", *args],
        capture_output=True,
        text=True,
        env=env,
        input="",
        timeout=60,
        check=False,
    )


def script(env: dict[str, str], source: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


LIBRARY_BOT = """
    import sys
    from sessionkeeper.atproto import PersistentSessionManager

    with PersistentSessionManager(None, sys.argv[1] if len(sys.argv) > 1 else "{url}") as m:
        m.login("alice.test", "alice-pass")
        print(m.query("com.atproto.server.getSession")["handle"])
"""


def test_cli_login_then_a_library_script_then_the_cli_make_one_create_session(
    tmp_path: Path, pds: FakePds
) -> None:
    env = user_env(tmp_path, ATP_PASSWORD="alice-pass")
    first = cli(env, "atproto", "login", "alice.test", "--service", pds.url)
    assert first.returncode == 0, first.stderr
    assert "logged in as alice.test" in first.stdout

    bot = script(env, LIBRARY_BOT.format(url=pds.url))
    assert bot.returncode == 0, bot.stderr
    assert bot.stdout.strip() == "alice.test"

    no_password = {k: v for k, v in env.items() if k != "ATP_PASSWORD"}
    again = cli(no_password, "atproto", "login", "alice.test")  # reuse needs no password
    assert again.returncode == 0, again.stderr
    assert "already logged in as alice.test" in again.stdout
    who = cli(env, "atproto", "whoami", "--json")
    assert who.returncode == 0, who.stderr
    assert json.loads(who.stdout)["handle"] == "alice.test"

    assert pds.counts[CREATE] == 1
    default = tmp_path / ".local" / "share" / "sessionkeeper" / "atproto"
    assert [p.name for p in default.glob("did_*.json")] != []


def test_forced_cli_login_creates_anew_and_revokes_the_replaced_session(
    tmp_path: Path, pds: FakePds
) -> None:
    env = user_env(tmp_path, ATP_PASSWORD="alice-pass")
    assert cli(env, "atproto", "login", "alice.test", "--service", pds.url).returncode == 0
    forced = cli(env, "atproto", "login", "alice.test", "--service", pds.url, "--force")
    assert forced.returncode == 0, forced.stderr
    assert pds.counts[CREATE] == 2
    listed = json.loads(cli(env, "atproto", "sessions", "list", "--json").stdout)
    did = listed[0]["did"]
    assert pds.live_refresh_tokens(did) == 1


def test_a_login_for_another_service_than_the_issuer_is_refused(
    tmp_path: Path, pds: FakePds
) -> None:
    env = user_env(tmp_path, ATP_PASSWORD="alice-pass")
    assert cli(env, "atproto", "login", "alice.test", "--service", pds.url).returncode == 0
    other = cli(env, "atproto", "login", "alice.test", "--service", "http://127.0.0.1:9")
    assert other.returncode == 2
    assert "was issued by" in other.stderr and "logout" in other.stderr
    assert pds.counts[CREATE] == 1


FLEET_WORKER = """
    import pathlib, sys, time
    from sessionkeeper.atproto import PersistentSessionManager

    url, ready, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
    with PersistentSessionManager(None, url) as m:
        ready.touch()
        while not go.exists():
            time.sleep(0.01)
        print(m.login("alice.test", "alice-pass").did)
"""


def test_a_cold_fleet_makes_one_create_session(tmp_path: Path, pds: FakePds) -> None:
    env = user_env(tmp_path)
    go = tmp_path / "go"
    workers = []
    for n in range(4):
        ready = tmp_path / f"ready-{n}"
        code = textwrap.dedent(FLEET_WORKER)
        command = [sys.executable, "-c", code, pds.url, str(ready), str(go)]
        workers.append(
            (ready, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
        )
    deadline = time.monotonic() + 60
    while not all(ready.exists() for ready, _ in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    go.touch()
    dids = {process.communicate(timeout=60)[0].strip() for _, process in workers}
    assert all(process.returncode == 0 for _, process in workers)
    assert len(dids) == 1 and dids != {""}
    assert pds.counts[CREATE] == 1


def test_the_store_variable_is_honoured_by_managers_and_the_oauth_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SESSIONKEEPER_STORE", f"sqlite:{tmp_path / 'sessions.db'}")
    with PersistentSessionManager(None, "http://127.0.0.1:9") as manager:
        assert isinstance(manager.store, SqliteStore)
    with OAuthClient() as client:
        assert isinstance(client.store, SqliteStore)
    with PersistentSessionManager(tmp_path / "dir", "http://127.0.0.1:9") as manager:
        assert isinstance(manager.store, DirectoryStore)  # an explicit directory wins


def test_sessions_in_the_old_cli_location_are_moved_with_a_note(
    tmp_path: Path, pds: FakePds
) -> None:
    old = tmp_path / ".config" / "sessionkeeper" / "atproto"
    with PersistentSessionManager(old, pds.url) as manager:
        did = manager.login("alice.test", "alice-pass").did
    env = user_env(tmp_path)
    listed = cli(env, "atproto", "sessions", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["did"] for row in json.loads(listed.stdout)] == [did]
    # The session and the record of the service that issued it.
    assert "moved 2 session entries" in listed.stderr and str(old) in listed.stderr
    assert not list(old.glob("did_*.json"))
    new = tmp_path / ".local" / "share" / "sessionkeeper" / "atproto"
    assert (new / f"{did.replace(':', '_')}.json").exists()
    assert "moved" not in cli(env, "atproto", "sessions", "list").stderr  # once only


def test_where_names_the_store_and_why(tmp_path: Path) -> None:
    env = user_env(tmp_path)
    default = json.loads(cli(env, "where", "--json").stdout)
    assert default["atproto"]["source"] == "default"
    assert default["atproto"]["store"] == f"dir:{tmp_path}/.local/share/sessionkeeper/atproto"
    assert default["hac"]["store"] == "dir:~/.cache/hac-client"

    env["SESSIONKEEPER_STORE"] = f"sqlite:{tmp_path}/s.db"
    from_variable = cli(env, "where")
    assert from_variable.returncode == 0
    assert f"sqlite:{tmp_path}/s.db" in from_variable.stdout
    assert "SESSIONKEEPER_STORE" in from_variable.stdout

    flag = json.loads(cli(env, "where", "--json", "--store", "memory:x").stdout)
    assert flag["atproto"] == flag["hac"] | {"store": "memory:x"}
    assert flag["atproto"]["source"] == "flag"
