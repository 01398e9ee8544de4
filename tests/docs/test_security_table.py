"""Every test the security page's faults-and-attacks table names exists."""

from __future__ import annotations

import ast
import re

from tests.support import REPO


def test_every_test_named_in_the_security_table_exists() -> None:
    text = (REPO / "docs" / "security.md").read_text()
    named: list[tuple[str, str]] = []
    for row in (line for line in text.splitlines() if line.startswith("| ")):
        current = None
        for path, name in re.findall(r"`(tests/[\w/]+\.py)?::(\w+)", row):
            current = path or current
            assert current, f"{name} names no file: {row[:80]}"
            named.append((current, name))
    assert len(named) > 30
    missing = []
    for path, name in named:
        tree = ast.parse((REPO / path).read_text())
        defined = {
            n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        if name not in defined:
            missing.append(f"{path}::{name}")
    assert missing == []
