"""The benchmarks page types prose only: every table and chart on it comes from a run."""

from __future__ import annotations

import re

from tests.support import REPO

PAGE = REPO / "docs" / "benchmarks.md"


def test_the_benchmarks_page_has_no_table_typed_by_hand() -> None:
    typed = [line for line in PAGE.read_text().splitlines() if line.lstrip().startswith("|")]
    assert not typed, typed


def test_every_table_the_page_includes_is_written_by_a_benchmark() -> None:
    included = re.findall(r'--8<-- "docs/benchmarks/([\w-]+)\.md"', PAGE.read_text())
    assert len(included) >= 20
    # Each stem is a string a benchmark script writes (save=, write_outputs or a variable).
    named = {
        literal
        for script in (REPO / "benchmarks").glob("*.py")
        for literal in re.findall(r'"([\w-]+)"', script.read_text())
    }
    assert set(included) - named == set()
