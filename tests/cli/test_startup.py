"""Each command line imports only what it runs: the root's help loads no group."""

from __future__ import annotations

import json
import subprocess
import sys

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
