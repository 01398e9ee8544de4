"""Shared printing and timing for the benchmarks: ratios measured in one run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table


def best_of(fn: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """Median seconds per call of ``fn`` over ``repeat`` rounds of ``number`` calls."""
    rounds = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - started) / number)
    return statistics.median(rounds)


def print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    """Print one benchmark table."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def verdict(ok: bool) -> str:
    """A short mark for whether a target was met."""
    return "[green]met[/]" if ok else "[red]missed[/]"
