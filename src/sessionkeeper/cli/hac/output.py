"""How the ``hac`` command prints: plain lines as hac-client-cli 0.3.2 does, rich only for tables.

Results go to stdout, script output and notes to stderr. ``rich`` is imported
only by the commands that draw a table (``env list``, ``session list``, ...),
so a Groovy or FlexibleSearch run never pays for it.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any


def line(text: str = "") -> None:
    """One line on stdout."""
    sys.stdout.write(f"{text}\n")


def err(text: str) -> None:
    """One line on stderr."""
    sys.stderr.write(f"{text}\n")


def emit_json(payload: Any) -> None:
    """``payload`` as indented JSON on stdout, like the original's ``json.dumps(indent=2)``."""
    line(json.dumps(payload, indent=2))


def tab_rows(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Tab-separated header and rows (the original's default for queries)."""
    if headers:
        line("\t".join(headers))
    for row in rows:
        line("\t".join(str(cell) for cell in row))


def csv_rows(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """CSV, quoted only where a cell needs it (the original joins with bare commas)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if headers:
        writer.writerow(headers)
    writer.writerows([[str(cell) for cell in row] for row in rows])
    sys.stdout.write(buffer.getvalue())


def table(
    columns: Sequence[tuple[str, dict[str, Any]]],
    rows: Sequence[Sequence[str]],
    *,
    show_header: bool = True,
    title: str | None = None,
) -> None:
    """A rich table on stdout, drawn the way the original draws it."""
    from rich.console import Console
    from rich.table import Table

    drawn = Table(show_header=show_header, title=title)
    for name, style in columns:
        drawn.add_column(name, **style)
    for row in rows:
        drawn.add_row(*row)
    Console().print(drawn)


def markup(text: str) -> None:
    """A line with rich markup (colours on a terminal, plain text in a pipe)."""
    from rich.console import Console

    Console().print(text)


def format_duration(seconds: float) -> str:
    """``42s``, ``3m 5s`` or ``2h 7m``, as the original shows ages."""
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds / 60)}m {int(seconds % 60)}s"
    return f"{int(seconds / 3600)}h {int((seconds % 3600) / 60)}m"


def hint(secret: str) -> str:
    """The first characters of a session id or token: enough to tell two apart."""
    return secret[:6] + "..."


__all__ = [
    "csv_rows",
    "emit_json",
    "err",
    "format_duration",
    "hint",
    "line",
    "markup",
    "tab_rows",
    "table",
]
