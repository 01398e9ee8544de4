"""Both console scripts answer a usage error in JSON when the command line asks for --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sessionkeeper.cli.entry import wants_json
from tests.support import scratch_home


def script(name: str) -> str:
    """The installed console script ``name`` beside the running interpreter."""
    return str(Path(sys.executable).parent / name)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["sessionkeeper", "atproto", "whoami", "--json", "--nope"], "No such option: --nope"),
        (["sessionkeeper", "store", "prune", "--json", "--idle", "soon"], "is not a duration"),
        (["hac", "groovy", "return 1", "--json", "--bad"], "No such option: --bad"),
    ],
)
def test_a_usage_error_is_one_json_object_on_stdout_with_json(
    command: list[str], message: str
) -> None:
    env = {**os.environ, **scratch_home()}
    done = subprocess.run(
        [script(command[0]), *command[1:]], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 2, done.stderr
    error = json.loads(done.stdout)
    assert error["error"] == "usage" and message in error["message"]
    assert message in done.stderr  # people still read it where they did
    plain = subprocess.run(
        [script(command[0]), *(w for w in command[1:] if w != "--json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert plain.returncode == 2 and plain.stdout == ""


def test_only_an_option_asks_for_json() -> None:
    assert wants_json(["whoami", "--json"])
    assert not wants_json(["call", "app.example.do", "--", "--json"])
    assert not wants_json(["whoami"])
