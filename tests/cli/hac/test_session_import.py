"""``hac session import`` in CI: stdin is no terminal but empty, and the variables hold it all."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.hac.session import SessionManager
from sessionkeeper.testing.fake_hac import FakeHac
from tests.cli.hac.helpers import hac_env, run_hac

pytestmark = pytest.mark.timeout(120)

GROOVY = "POST /console/scripting/execute"


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac() as server:
        yield server


def _a_live_session(fake: FakeHac, home: Path) -> dict[str, str]:
    """A session the fake accepts, as a CI job would get it: in variables, not in the cache."""
    started = run_hac(
        home, "--url", fake.url, "session", "start", "local", "-u", "admin", stdin="nimda\n"
    )
    assert started.returncode == 0, started.stderr
    cache = SessionManager(home / ".cache" / "hac-client")
    session = cache.load_session(fake.url, "admin", "local/hac")
    assert session is not None
    assert cache.clear_all_sessions() == 1
    return {
        "HAC_USERNAME": "admin",
        "HAC_SESSION_ID": session.session_id,
        "HAC_CSRF_TOKEN": session.csrf_token,
    }


@pytest.mark.parametrize("stdin", ["devnull", "empty pipe"])
def test_empty_stdin_means_use_the_variables(fake: FakeHac, tmp_path: Path, stdin: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    variables = _a_live_session(fake, home)
    argv = [sys.executable, "-m", "sessionkeeper", "hac", "--url", fake.url]
    env = hac_env(home, variables)
    if stdin == "devnull":
        done = subprocess.run(
            [*argv, "session", "import", "local"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    else:
        with subprocess.Popen(
            [*argv, "session", "import", "local"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            stdout, stderr = process.communicate("", timeout=90)  # closes the pipe at once
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert done.returncode == 0, done.stderr
    assert "Session imported for 'local/hac'" in done.stdout
    assert variables["HAC_SESSION_ID"] not in done.stdout + done.stderr
    # The imported session serves the next command: no password, no login.
    fake.reset_counts()
    used = run_hac(home, "--url", fake.url, "groovy", "return 'imported'")
    assert (used.returncode, used.stdout) == (0, "imported\n"), used.stderr
    assert dict(fake.counts) == {GROOVY: 1}


def test_json_on_stdin_still_wins_and_bad_json_is_still_named(
    fake: FakeHac, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    variables = _a_live_session(fake, home)
    piped = (
        f'{{"username": "admin", "session_id": "{variables["HAC_SESSION_ID"]}", '
        f'"csrf_token": "{variables["HAC_CSRF_TOKEN"]}"}}'
    )
    done = run_hac(home, "--url", fake.url, "session", "import", "local", stdin=piped)
    assert done.returncode == 0, done.stderr
    bad = run_hac(home, "--url", fake.url, "session", "import", "local", stdin="{not json")
    assert bad.returncode == 1
    assert "stdin is not the JSON of a session" in bad.stderr
