"""The examples that cannot run here (a browser, a public host) still paste: every name
they use is imported or defined in the block, as ruff's undefined-name rule sees it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
RUFF = Path(sys.executable).parent / "ruff"
SKIPPED_PYTHON = re.compile(r"<!-- skip: next [^>]*-->\s*```python\n(.*?)```", re.DOTALL)


def skipped_python_blocks() -> list[tuple[str, str]]:
    """``(where, source)`` of each Python block preceded by a skip marker."""
    blocks = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in SKIPPED_PYTHON.finditer(text):
            line = text.count("\n", 0, match.start(1)) + 1
            blocks.append((f"{document.relative_to(REPO)}:{line}", match.group(1)))
    return blocks


@pytest.mark.parametrize(("where", "source"), skipped_python_blocks())
def test_a_skipped_python_example_defines_every_name_it_uses(where: str, source: str) -> None:
    done = subprocess.run(
        [str(RUFF), "check", "--isolated", "--select", "F821", "--stdin-filename", "x.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"{where}:\n{done.stdout}{done.stderr}"
