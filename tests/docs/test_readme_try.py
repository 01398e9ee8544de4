"""README's "Try it in a minute" runs as pasted: its bash block, in a shell with only the
installed package on PATH and a fresh HOME, against the fake it starts itself."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = pytest.mark.timeout(120)


def try_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^## Try it in a minute\n.*?^```bash\n(.*?)^```", text, re.S | re.M)
    assert found, "README.md has no bash block under '## Try it in a minute'"
    return found.group(1)


def test_the_readme_try_it_block_runs_as_pasted_with_one_create_session(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", try_block()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("logged in as alice.test")
    assert lines[1] == "alice.test"  # the library script found the CLI's session
    assert lines[2].startswith("already logged in as alice.test")
    assert f"dir:{tmp_path}/.local/share/sessionkeeper/atproto" in done.stdout
    counts = json.loads(lines[-1])["counts"]
    assert counts["com.atproto.server.createSession"] == 1
