"""``sessionkeeper keepalive``: refresh what would lapse, list what needs a person (for cron).

Exit codes: 0 every session is alive, 3 any needs a sign-in (it wins: a person
must act), 1 a due session could not be refreshed now (try again), 2 usage.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sessionkeeper.maintenance.keepalive import Action, KeptAlive

#: The command as its own app, imported by the root only when a command line names it.
app = typer.Typer(name="keepalive", pretty_exceptions_enable=False, rich_markup_mode=None)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_FAILED = 1
EXIT_USAGE = 2

_STYLE = {
    Action.REFRESHED: "green",
    Action.FINE: "dim",
    Action.NEEDS_SIGN_IN: "yellow",
    Action.FAILED: "red",
}


@app.command("keepalive")
def keepalive_command(
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store", help="Store URL (default: $SESSIONKEEPER_STORE, else the default)."
        ),
    ] = None,
    service: Annotated[
        str | None,
        typer.Option("--service", help="PDS of app-password sessions whose service is unknown."),
    ] = None,
    within: Annotated[
        str, typer.Option("--within", help="Refresh what lapses within this window (e.g. 7d).")
    ] = "7d",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Refresh every stored session that would lapse within the window; list who must sign in."""
    from sessionkeeper.atproto.errors import SessionError
    from sessionkeeper.atproto.home import choose_store
    from sessionkeeper.cli.atproto.oauth import oauth_client
    from sessionkeeper.cli.atproto.state import load_state
    from sessionkeeper.cli.hints import json_error
    from sessionkeeper.cli.store import parse_duration
    from sessionkeeper.maintenance.keepalive import exit_code, keepalive
    from sessionkeeper.stores.errors import StoreError
    from sessionkeeper.stores.url import StoreUrlError

    def fail(kind: str, exc: Exception, code: int) -> typer.Exit:
        # One JSON object on stdout for --json callers; the message on stderr always.
        if as_json:
            json_error(kind, str(exc))
        err.print(f"[red]error:[/] {escape(str(exc))}")
        return typer.Exit(code)

    seconds = parse_duration(within)
    try:
        # The library's and the atproto commands' one choice of store.
        store = choose_store(store_url).open()
    except StoreUrlError as exc:
        raise fail("usage", exc, EXIT_USAGE) from None
    except StoreError as exc:  # a missing or wrong key, an unsafe or unreachable store
        raise fail("store", exc, EXIT_FAILED) from None
    try:
        with oauth_client(store) as client:
            report = keepalive(
                store,
                within=seconds,
                service=service,
                services=load_state(store).services,
                oauth_client=client,
            )
    except (SessionError, StoreError, OSError) as exc:
        raise fail("store" if isinstance(exc, StoreError) else "failed", exc, EXIT_FAILED) from None
    if as_json:
        typer.echo(json.dumps([row.as_json() for row in report], indent=2))
    else:
        _table(report)
    raise typer.Exit(exit_code(report))


def _table(report: list[KeptAlive]) -> None:
    if not report:
        out.print("no stored sessions")
        return
    table = Table(title="keepalive")
    columns = ("kind", "account", "handle", "action", "refresh expires", "session ends", "detail")
    for column in columns:
        table.add_column(column, no_wrap=column == "account")
    for row in report:
        style = _STYLE[row.action]
        table.add_row(
            row.kind,
            row.account,
            escape(row.handle or ""),
            f"[{style}]{row.action.value}[/]",
            _day(row.lifetime.refresh_expires_at),
            _day(row.lifetime.session_ends_at),
            escape(row.detail),
        )
    out.print(table)


def _day(moment: float | None) -> str:
    if moment is None:
        return "unknown"
    return f"{dt.datetime.fromtimestamp(moment, tz=dt.UTC):%Y-%m-%d %H:%M} UTC"
