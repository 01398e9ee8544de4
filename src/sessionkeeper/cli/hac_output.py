"""How the HAC CLI shows results: rich tables for people, JSON and CSV for scripts."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from sessionkeeper.hac.models import FlexibleSearchResult, GroovyScriptResult, UpdateData
from sessionkeeper.hac.session import SessionMetadata

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def emit_json(payload: Any) -> None:
    """Write ``payload`` as indented JSON to stdout (no markup processing)."""
    stdout.out(json.dumps(payload, indent=2, ensure_ascii=False), highlight=False)


def emit_text(text: str) -> None:
    """Write ``text`` verbatim (script output may contain brackets rich would eat)."""
    if text:
        stdout.out(text.rstrip("\n"), highlight=False)


def error(message: str) -> None:
    """Tell the user what failed, on stderr."""
    stderr.print(f"[bold red]error:[/] {escape(message)}")


def note(message: str) -> None:
    """A short status line on stderr (stdout stays clean for pipes)."""
    stderr.print(f"[dim]{escape(message)}[/]")


def escape(text: str) -> str:
    """Escape rich markup in ``text``."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def groovy_json(result: GroovyScriptResult) -> dict[str, Any]:
    """The Groovy result as a JSON object, with ``success``."""
    return {**asdict(result), "success": result.success}


def flexsearch_table(result: FlexibleSearchResult) -> Table:
    """Rows as a rich table titled with the count."""
    table = Table(title=f"{result.result_count} row(s)", title_justify="left")
    for header in result.headers:
        table.add_column(escape(header))
    for row in result.rows:
        table.add_row(*(escape(cell) for cell in row))
    return table


def flexsearch_csv(result: FlexibleSearchResult) -> str:
    """Headers and rows as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.headers)
    writer.writerows(result.rows)
    return buffer.getvalue()


def flexsearch_json(result: FlexibleSearchResult) -> dict[str, Any]:
    """The query result as a JSON object, with ``success``."""
    return {**asdict(result), "success": result.success}


def update_data_table(data: UpdateData) -> Table:
    """Extensions and their parameters."""
    table = Table(title="Project data" + (" (initializing)" if data.is_initializing else ""))
    table.add_column("extension")
    table.add_column("parameter")
    table.add_column("values")
    table.add_column("selected")
    for pd in data.project_datas:
        if not pd.parameters:
            table.add_row(escape(pd.name), "", "", "")
        for parameter in pd.parameters:
            table.add_row(
                escape(pd.name),
                escape(parameter.name),
                escape(", ".join(parameter.available_values)),
                escape(parameter.selected_value or ""),
            )
    return table


def patches_table(patches: dict[str, list[dict[str, Any]]]) -> Table:
    """Pending patches per category."""
    table = Table(title="Pending patches")
    for column in ("category", "name", "required", "description"):
        table.add_column(column)
    for category, patch_list in patches.items():
        for patch in patch_list:
            table.add_row(
                escape(category),
                escape(str(patch.get("name", ""))),
                "yes" if patch.get("required") else "no",
                escape(str(patch.get("description", ""))),
            )
    return table


def session_json(session: SessionMetadata) -> dict[str, Any]:
    """A cached session without its secrets (6-character prefixes only)."""
    return {
        "base_url": session.base_url,
        "username": session.username,
        "environment": session.environment,
        "session_id": session.session_id[:6] + "...",
        "csrf_token": session.csrf_token[:6] + "...",
        "route_cookie": session.route_cookie,
        "created_at": session.created_at,
        "last_used_at": session.last_used_at,
        "created_at_formatted": session.created_at_formatted,
        "last_used_at_formatted": session.last_used_at_formatted,
        "idle_seconds": round(session.idle_seconds, 1),
        "is_authenticated": session.is_authenticated,
    }


def sessions_table(sessions: list[SessionMetadata]) -> Table:
    """Cached sessions, most recently used first."""
    table = Table(title=f"{len(sessions)} cached HAC session(s)", title_justify="left")
    for column in ("base URL", "user", "environment", "created", "last used", "idle"):
        table.add_column(column)
    for session in sessions:
        table.add_row(
            escape(session.base_url),
            escape(session.username),
            escape(session.environment),
            session.created_at_formatted,
            session.last_used_at_formatted,
            f"{session.idle_seconds / 60:.0f} min",
        )
    return table


__all__ = [
    "emit_json",
    "emit_text",
    "error",
    "flexsearch_csv",
    "flexsearch_json",
    "flexsearch_table",
    "groovy_json",
    "note",
    "patches_table",
    "session_json",
    "sessions_table",
    "stderr",
    "stdout",
    "update_data_table",
]
