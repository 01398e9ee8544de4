"""Messages that can be acted on: global options after the subcommand, pasteable fixes,
connection errors with their URL, one error for a wrong key, JSON errors, and a status
line while ``login --oauth`` waits (on a terminal only). Real subprocesses, real fakes."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.cli.hints import unreachable
from sessionkeeper.stores import MemoryStore
from sessionkeeper.stores.encrypted import generate_key
from sessionkeeper.testing.fake_oauth import FakeOAuth
from sessionkeeper.testing.fake_pds import FakePds
from tests.support import atproto_cli_command, run_atproto_cli

pytestmark = pytest.mark.timeout(120)

NO_KEYRING = {"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def test_group_options_after_the_subcommand_are_accepted_and_hints_carry_them(
    tmp_path: Path,
) -> None:
    store = f"dir:{tmp_path / 'empty'}"
    result = run_atproto_cli(tmp_path / "ignored", "whoami", "--did", "did:plc:x", "--store", store)
    assert result.returncode == 3, result.stderr
    assert "No such option" not in result.stderr
    assert f"run sessionkeeper atproto --store {store} login did:plc:x first" in result.stderr


def test_a_connection_error_names_the_url_and_the_plain_http_hint(tmp_path: Path) -> None:
    with FakePds() as pds:
        pds.create_account("alice.test", "pw")
        plain = pds.url
        tls = plain.replace("http://", "https://")
        wrong = run_atproto_cli(tmp_path, "login", "alice.test", "--service", tls, password="pw")
    assert wrong.returncode == 1
    assert tls in wrong.stderr
    assert f"the server speaks plain HTTP, not TLS: use {plain}" in wrong.stderr

    down = run_atproto_cli(
        tmp_path, "login", "alice.test", "--service", plain, password="pw"
    )  # stopped above
    assert down.returncode == 1 and f"createSession at {plain}" in down.stderr


def test_the_default_service_is_named_when_it_was_the_one_tried() -> None:
    message = unreachable(
        "ConnectError: [Errno -2] Name or service not known",
        "https://bsky.social",
        default_of="name another with --service URL or ATP_SERVICE",
    )
    assert message.startswith("cannot reach https://bsky.social: ConnectError")
    assert "https://bsky.social is the default service; name another with --service" in message


def test_json_errors_on_stdout_also_when_the_server_is_down(tmp_path: Path) -> None:
    with FakePds() as pds:
        pds.create_account("alice.test", "pw")
        assert (
            run_atproto_cli(
                tmp_path, "login", "alice.test", "--service", pds.url, password="pw"
            ).returncode
            == 0
        )
        pds.set_fault("drop")
        who = run_atproto_cli(tmp_path, "whoami", "--json")
        url = pds.url
    assert who.returncode == 1
    error = json.loads(who.stdout)
    assert error["error"] == "network" and url in error["message"]


def test_a_wrong_key_is_one_clear_error(tmp_path: Path) -> None:
    key = generate_key()
    url = f"dir:{tmp_path / 's'}?encrypt=1"
    with FakePds() as pds:
        pds.create_account("alice.test", "pw")
        env = {**NO_KEYRING, "SESSIONKEEPER_KEY": key}
        logged = run_atproto_cli(
            tmp_path,
            "--store",
            url,
            "login",
            "alice.test",
            "--service",
            pds.url,
            password="pw",
            env_extra=env,
        )
        assert logged.returncode == 0, logged.stderr
        wrong = run_atproto_cli(
            tmp_path,
            "--store",
            url,
            "sessions",
            "list",
            env_extra={**NO_KEYRING, "SESSIONKEEPER_KEY": generate_key()},
        )
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines() == [
        "error: the encryption key (SESSIONKEEPER_KEY) does not open this store: "
        "'atproto-cli.state' was encrypted with another key; set SESSIONKEEPER_KEY to the "
        "key it was written with"
    ]


def _oauth_login(fake: FakeOAuth, sessions: Path, *, tty: bool) -> str:
    """Run ``login --oauth --no-browser`` with stderr on a pty or a pipe; return its stderr."""
    command, env = atproto_cli_command(
        sessions,
        "login",
        "--oauth",
        "--no-browser",
        "alice.test",
        env_extra={"ATP_HANDLE_RESOLVER": fake.url, "ATP_PLC_DIRECTORY": fake.url},
    )
    if tty:
        leader, follower = pty.openpty()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=env)
        os.close(follower)
        reader = os.fdopen(leader, "r", errors="replace")
    else:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        assert process.stderr is not None
        reader = open(process.stderr.fileno(), errors="replace", closefd=False)  # noqa: SIM115
    seen: list[str] = []
    url = None
    for line in reader:
        seen.append(line)
        found = re.search(r"(http://127\.0\.0\.1:\d+/oauth/authorize\?\S+)", line)
        if found:
            url = found.group(1)
        if url and (not tty or "waiting" in line):
            break
    assert url is not None, "".join(seen)
    httpx.get(url, follow_redirects=True)  # the fake consents; the loopback gets the code
    process.communicate(timeout=60)
    reader.close()
    assert process.returncode == 0, "".join(seen)
    return "".join(seen)


def test_oauth_login_says_what_it_waits_for_on_a_terminal_only(tmp_path: Path) -> None:
    with FakeOAuth() as fake:
        on_tty = _oauth_login(fake, tmp_path / "a", tty=True)
        piped = _oauth_login(fake, tmp_path / "b", tty=False)
    assert re.search(
        r"waiting for the browser's redirect on 127\.0\.0\.1:\d+ until \d\d:\d\d:\d\d", on_tty
    )
    assert "waiting" not in piped


def test_a_slow_server_gets_a_status_line_on_a_terminal_only(tmp_path: Path) -> None:
    with FakePds(latency=1.5) as pds:
        pds.create_account("alice.test", "pw")
        assert (
            run_atproto_cli(
                tmp_path, "login", "alice.test", "--service", pds.url, password="pw"
            ).returncode
            == 0
        )
        command, env = atproto_cli_command(tmp_path, "whoami")
        leader, follower = pty.openpty()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=env)
        os.close(follower)
        with os.fdopen(leader, "r", errors="replace") as terminal:
            on_tty = terminal.readline()
        process.communicate(timeout=60)
        piped = run_atproto_cli(tmp_path, "whoami")
        url = pds.url
    assert process.returncode == 0 and piped.returncode == 0
    assert re.fullmatch(rf"waiting for {re.escape(url)} until \d\d:\d\d:\d\d\.\.\.\s*", on_tty)
    assert "waiting" not in piped.stderr


def test_every_command_that_reports_prints_one_json_object(tmp_path: Path) -> None:
    """login (new and reused), refresh, logout, import-session-string, and a failed login."""
    with FakePds() as pds:
        pds.create_account("alice.test", "pw")

        def run(*args: str, password: str | None = None) -> dict[str, object]:
            done = run_atproto_cli(tmp_path, *args, "--json", password=password)
            assert done.stdout.count("\n{") == 0 and done.stdout.startswith("{"), done.stdout
            parsed: dict[str, object] = json.loads(done.stdout)
            return parsed

        first = run("login", "alice.test", "--service", pds.url, password="pw")
        assert first["kind"] == "password" and first["reused"] is False
        assert first["service"] == pds.url and first["handle"] == "alice.test"
        assert run("login", "alice.test")["reused"] is True
        assert run("refresh")["did"] == first["did"]
        exported = run("logout")
        assert exported == {"did": first["did"], "logged_out": True}
        refused = run("login", "alice.test", "--service", pds.url, password="wrong")
        assert refused["error"] == "authentication"
        assert pds.counts["com.atproto.server.createSession"] == 2

        with PersistentSessionManager(None, pds.url, store=MemoryStore()) as elsewhere:
            line = elsewhere.login("alice.test", "pw").to_session_string(pds.url)
        imported = run("import-session-string", line)
        assert imported == {"did": first["did"], "handle": "alice.test", "imported": True}
