"""Where measured figures go: markdown tables and JSON under ``docs/benchmarks/``.

The benchmarks page includes these files, so every number on it comes from a run.
"""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path
from typing import Any

import sessionkeeper

#: The folder the docs page includes its tables and charts from.
DOCS_DIR = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank)."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def percentile_ms(values: list[float], fraction: float) -> float:
    """`percentile` of seconds, in milliseconds; 0.0 when nothing was measured."""
    return percentile(values, fraction) * 1e3 if values else 0.0


def await_ready(workers: list[subprocess.Popen[str]], what: str = "fleet") -> None:
    """Wait until every worker process has printed ``ready`` (its interpreter and set-up done)."""
    for worker in workers:
        assert worker.stdout is not None
        line = worker.stdout.readline().strip()
        if line != "ready":
            errors = worker.stderr.read()[-500:] if worker.stderr is not None else ""
            raise SystemExit(f"a {what} worker did not start: {line} {errors}".rstrip())


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    """A GitHub-style markdown table; ``|`` inside a cell is escaped."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(columns), line(["---"] * len(columns)), *map(line, rows)]) + "\n"


def machine_note() -> str:
    """One line naming when, where and with what the figures were measured.

    The load average is there because a shared machine's other work shows in
    every latency; counts do not depend on it.
    """
    import datetime
    import os

    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Measured {when} with sessionkeeper {sessionkeeper.__version__} on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the end."
    )


def write_outputs(stem: str, table: str, data: dict[str, Any], out: Path = DOCS_DIR) -> None:
    """Write ``STEM.md`` (the table and the run's note) and ``STEM.json`` (the figures)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(table + "\n" + machine_note() + "\n", encoding="utf-8")
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
