"""Shared printing and timing for the benchmarks: ratios measured in one run."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

# Benchmarks run from a checkout: the reference PDS is this checkout's (`make reference-pds`).
os.environ.setdefault(
    "PDS_TOOLS_DIR", str(Path(__file__).resolve().parent.parent / ".tools" / "pds")
)


def paired(
    first: Callable[[], object],
    second: Callable[[], object],
    *,
    repeat: int = 15,
    number: int = 1,
) -> tuple[float, float]:
    """Median seconds per call of two functions, measured in alternating rounds.

    Alternating (and swapping who goes first) exposes both to the same disk and
    machine load, which matters for anything that waits on fsync.
    """
    a: list[float] = []
    b: list[float] = []
    for round_number in range(repeat):
        order = [(first, a), (second, b)]
        if round_number % 2:
            order.reverse()
        for fn, into in order:
            started = time.perf_counter()
            for _ in range(number):
                fn()
            into.append((time.perf_counter() - started) / number)
    return statistics.median(a), statistics.median(b)


def print_table(
    title: str, columns: list[str], rows: list[list[str]], *, save: str | None = None
) -> None:
    """Print one benchmark table; with ``save``, also write it as ``docs/benchmarks/SAVE.md``."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    # Wide enough that the measure names are not cut in a log or a narrow terminal.
    Console(width=140).print(table)
    if save is not None:
        from _report import markdown_table, write_outputs

        def plain(cell: str) -> str:
            return Text.from_markup(cell).plain  # verdicts are colour markup in the terminal

        table_md = markdown_table(list(map(plain, columns)), [list(map(plain, r)) for r in rows])
        write_outputs(save, table_md, {"title": title, "columns": columns, "rows": rows})


def print_line(text: str) -> None:
    """Print one line that may hold a :func:`verdict` (rich markup, shown as colour)."""
    Console(width=140).print(text)


def verdict(ok: bool) -> str:
    """A short mark for whether a target was met."""
    return "[green]met[/]" if ok else "[red]missed[/]"
