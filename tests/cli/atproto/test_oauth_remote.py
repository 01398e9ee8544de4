"""``sessionkeeper atproto login --oauth HANDLE --remote``: the browser is on another machine.

The CLI runs as a real subprocess: it prints the URL, the "browser" signs in
(``httpx`` on the fake; headless Chromium through the reference PDS's own
sign-in and consent pages), and the address the browser was sent to is pasted
on the CLI's stdin.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionkeeper.testing.fake_oauth import DEFAULT_DID, FakeOAuth
from sessionkeeper.testing.reference_pds import ReferencePds
from tests.support import atproto_cli_command, missing_component, run_atproto_cli

pytestmark = pytest.mark.timeout(180)

URL_RE = re.compile(r"^\s+(https?://\S+/oauth/authorize\?\S+)$")


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        yield server


def start_remote_login(
    sessions: Path, handle: str, env: dict[str, str]
) -> tuple[subprocess.Popen[str], str]:
    """Start the CLI; return it with the URL it printed for the browser."""
    command, full_env = atproto_cli_command(
        sessions, "login", "--oauth", "--remote", handle, env_extra=env
    )
    login = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )
    assert login.stderr is not None
    for line in login.stderr:
        found = URL_RE.match(line.rstrip("\n"))
        if found:
            return login, found.group(1)
    login.kill()
    raise AssertionError(f"the CLI printed no URL: {login.communicate()}")


def test_remote_login_completes_from_the_pasted_redirect(tmp_path: Path, fake: FakeOAuth) -> None:
    env = {"ATP_HANDLE_RESOLVER": fake.url, "ATP_PLC_DIRECTORY": fake.url}
    sessions = tmp_path / "s"
    login, url = start_remote_login(sessions, "alice.test", env)
    redirect = httpx.get(url).headers["location"]  # the fake consents at once
    assert redirect.startswith("http://127.0.0.1/callback?")  # what a browser cannot load
    out, err = login.communicate(f"  {redirect}  \n", timeout=60)
    assert login.returncode == 0, err
    assert "logged in as alice.test with OAuth" in out
    assert "code=" not in out + err  # the pasted code is not echoed back
    listed = run_atproto_cli(sessions, "sessions", "list", "--json", env_extra=env)
    assert [row["did"] for row in json.loads(listed.stdout)] == [DEFAULT_DID]


@pytest.mark.parametrize(
    ("paste", "named"),
    [
        ("", "no redirect address was pasted"),
        ("https://evil.example/callback?code=x&state=y", "not a redirect to"),
        ("http://127.0.0.1/callback?code=x&state=" + "a" * 32, "its state differs"),
    ],
)
def test_a_paste_that_is_not_this_sign_ins_redirect_is_refused_by_name(
    tmp_path: Path, fake: FakeOAuth, paste: str, named: str
) -> None:
    env = {"ATP_HANDLE_RESOLVER": fake.url, "ATP_PLC_DIRECTORY": fake.url}
    login, _ = start_remote_login(tmp_path / "s", "alice.test", env)
    _, err = login.communicate(paste + "\n", timeout=60)
    assert login.returncode == 1, err
    assert named in err
    assert fake.counts["exchange"] == 0  # nothing was sent to the token endpoint


def test_remote_login_without_oauth_is_a_usage_error(tmp_path: Path) -> None:
    done = run_atproto_cli(tmp_path / "s", "login", "--remote", "alice.test")
    assert done.returncode == 2 and "use it with --oauth" in done.stderr


@pytest.mark.reference_pds
def test_remote_login_against_the_reference_pds_with_chromium(
    tmp_path: Path, reference_pds: ReferencePds
) -> None:
    from tests.chromium_cdp import authorize_in_chromium, chromium_binary

    if chromium_binary() is None:
        missing_component("chromium-headless-shell is not installed (scripts/install-chromium.sh)")
    password = "remote-pass-1"
    did, handle = reference_pds.create_account(f"rm{secrets.token_hex(4)}.test", password)
    env = {"ATP_HANDLE_RESOLVER": reference_pds.url, "ATP_PLC_DIRECTORY": reference_pds.plc_url}
    sessions = tmp_path / "s"
    login, url = start_remote_login(sessions, handle, env)
    try:
        redirect = authorize_in_chromium(url, handle, password, "http://127.0.0.1/callback")
    except BaseException:
        login.kill()
        raise
    out, err = login.communicate(redirect + "\n", timeout=60)
    assert login.returncode == 0, err
    assert f"logged in as {handle} with OAuth" in out
    whoami = run_atproto_cli(sessions, "whoami", env_extra=env)
    assert whoami.returncode == 0, whoami.stderr
    assert did in whoami.stdout and "(OAuth)" in whoami.stdout
