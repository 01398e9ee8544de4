"""``make docs`` (run by ``make test``) is a strict build that a broken link fails."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

from tests.support import REPO

#: A Sphinx role left in a docstring shows as literal text in the reference.
SPHINX_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):`")


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
    assert_reference_links(copy / "site" / "reference")

    page = copy / "docs" / "security.md"
    page.write_text(page.read_text() + "\nSee [nowhere](no-such-page.md).\n")
    module = copy / "src" / "sessionkeeper" / "stores" / "base.py"
    module.write_text(module.read_text().replace("[`InvalidNameError`][]", "[`NoSuchError`][]"))
    bad = subprocess.run(program, cwd=copy, env=env, capture_output=True, text=True)
    assert bad.returncode != 0
    assert "no-such-page.md" in bad.stderr
    assert "NoSuchError" in bad.stderr  # a docstring's cross-reference to nothing fails too


def assert_reference_links(reference: Path) -> None:
    """Docstrings' cross-references are links to the objects they name; no raw roles remain."""
    pages = {p.parent.name: p.read_text() for p in reference.glob("*/index.html")}
    assert {"sessionkeeper", "atproto", "hac", "stores", "testing"} <= set(pages)
    for name, html in pages.items():
        assert not SPHINX_ROLE.search(html), name
        assert "][" not in re.sub(r"<pre.*?</pre>", "", html, flags=re.S), name  # unresolved
    # One docstring's [`OAuthClient`][] on the ATProto page, one across pages from HAC.
    assert 'href="#sessionkeeper.atproto.OAuthClient"><code>OAuthClient</code>' in pages["atproto"]
    assert 'href="../sessionkeeper/#sessionkeeper.Store"><code>Store</code>' in pages["hac"]


def test_no_docstring_uses_a_sphinx_role() -> None:
    """mkdocstrings links ``[`Name`][]``; a Sphinx role would show as literal text."""
    found = [
        f"{path.relative_to(REPO)}:{number}"
        for path in sorted((REPO / "src").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SPHINX_ROLE.search(line)
    ]
    assert not found, found
