"""Each command line imports only what it runs: the root's help loads no group."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.testing import FakePds

#: Runs the ``sessionkeeper`` entry point with the given argv, then prints the names of
#: every loaded module as JSON on stderr's last line (stdout holds the command's own output).
PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["sessionkeeper", *sys.argv[1:]]
from sessionkeeper.cli import main
main()
"""


def loaded_by(*argv: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60
    )
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_the_root_help_lists_every_group_without_importing_any() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "sessionkeeper", "--help"], capture_output=True, text=True
    ).stdout
    for group in ("hac", "atproto", "store"):
        assert f"  {group} " in help_text
    modules = loaded_by("--help")
    assert (
        not {
            "sessionkeeper.cli.hac.app",
            "sessionkeeper.cli.atproto.app",
            "sessionkeeper.cli.store",
            "httpx",
            "rich.console",
        }
        & modules
    )


def test_a_group_runs_with_only_its_own_module_imported() -> None:
    modules = loaded_by("store", "--help")
    assert "sessionkeeper.cli.store" in modules
    assert not {"sessionkeeper.cli.hac.app", "sessionkeeper.cli.atproto.app"} & modules


def test_whoami_of_a_password_session_loads_no_oauth_stack(tmp_path: Path) -> None:
    with FakePds() as pds:
        pds.create_account("alice.test", "alice-pass")
        with PersistentSessionManager(tmp_path, pds.url) as manager:
            manager.login("alice.test", "alice-pass")
        env = {**os.environ, "SESSIONKEEPER_STORE": f"dir:{tmp_path}", "ATP_SERVICE": pds.url}
        result = subprocess.run(
            [sys.executable, "-c", PROBE, "atproto", "whoami"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
    assert "alice.test" in result.stdout, result.stderr
    modules = set(json.loads(result.stderr.strip().splitlines()[-1]))
    assert "sessionkeeper.atproto.password.manager" in modules
    assert (
        not {
            "sessionkeeper.atproto.oauth.client",
            "sessionkeeper.atproto.oauth.dpop",
            "sessionkeeper.atproto.oauth.kind",
            "jwt",
            "dns.resolver",
        }
        & modules
    )
