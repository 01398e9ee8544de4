"""``sessionkeeper where``: which store the commands and the library use, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sessionkeeper.atproto.home import FROM_DEFAULT, choose_store
from sessionkeeper.cli.hints import store_reason
from sessionkeeper.redaction import redact_url

#: hac-client's own cache, the ``hac`` command's default (a drop-in keeps its place).
HAC_DEFAULT = "dir:~/.cache/hac-client"


def where(
    store: Annotated[str | None, typer.Option("--store", help="A store URL to explain.")] = None,
    session_dir: Annotated[
        Path | None, typer.Option("--session-dir", help="A session directory to explain.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the store sessions are kept in, and why that one (flag, variable or default)."""
    choice = choose_store(store, session_dir)
    # hac has no --session-dir: its store is --store, the variable, or hac-client's cache.
    hac = choose_store(store)
    hac_row = (
        {"store": HAC_DEFAULT, "source": FROM_DEFAULT, "why": "the default: hac-client's cache"}
        if hac.source == FROM_DEFAULT
        else {
            "store": redact_url(hac.url),
            "source": hac.source,
            "why": store_reason(hac.source, hac.detail),
        }
    )
    rows = {
        "atproto": {
            "store": redact_url(choice.url),
            "source": choice.source,
            "why": store_reason(choice.source, choice.detail),
        },
        "hac": hac_row,
    }
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for group, row in rows.items():
        typer.echo(f"{group + ':':9}{row['store']}")
        typer.echo(f"{'':9}({row['why']})")


#: The command as the root group imports it.
app = typer.Typer(name="where", pretty_exceptions_enable=False)
app.command()(where)
