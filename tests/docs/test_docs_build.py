"""``make docs`` (run by ``make test``) is a strict build that a broken link fails."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from tests.support import REPO


def docs_command() -> list[str]:
    """The command ``make docs`` runs, as make prints it (its comment dropped)."""
    printed = subprocess.run(
        ["make", "-n", "-W", ".venv/.installed-stamp", "docs"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (line,) = [line for line in printed.splitlines() if "mkdocs build" in line]
    words = shlex.split(line, comments=True)
    return [w for w in words if "=" not in w or w.startswith("-")]


def test_make_docs_fails_on_a_warning_and_passes_on_the_real_docs(tmp_path: Path) -> None:
    command = docs_command()
    assert "--strict" in command and "--quiet" not in command and "-q" not in command
    copy = tmp_path / "checkout"
    copy.mkdir()
    for part in ("docs", "src", "README.md"):
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / part)
    shutil.copy2(REPO / "mkdocs.yml", copy / "mkdocs.yml")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    program = [str(REPO / command[0]), *command[1:]]
    good = subprocess.run(program, cwd=copy, env=env, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr[-2000:]
    page = copy / "docs" / "security.md"
    page.write_text(page.read_text() + "\nSee [nowhere](no-such-page.md).\n")
    bad = subprocess.run(program, cwd=copy, env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "no-such-page.md" in bad.stderr
