"""``hac sessions list|show|clear|clear-all``: the cached sessions, never their secrets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sessionkeeper.cli import hac_context as hc
from sessionkeeper.cli import hac_output as out
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.redaction import without_userinfo

app = typer.Typer(help="Cached HAC sessions.", no_args_is_help=True)


@app.command("list")
def sessions_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """List cached sessions, most recently used first."""
    with hc.failures():
        sessions = hc.session_manager(hc.group_options(ctx)).list_sessions()
    if as_json:
        out.emit_json([out.session_json(s) for s in sessions])
    else:
        out.stdout.print(out.sessions_table(sessions))


def _current_key(ctx: typer.Context) -> tuple[SessionManager, str, str, str]:
    options = hc.group_options(ctx)
    target = hc.resolve_target(options)
    return (
        hc.session_manager(options),
        without_userinfo(target.url).rstrip("/"),
        target.username,
        target.cache_environment,
    )


@app.command("show")
def sessions_show(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show the cached session of the selected environment and user."""
    with hc.failures():
        manager, base_url, username, environment = _current_key(ctx)
        session = manager.load_session(base_url, username, environment)
    if session is None:
        out.error(f"no cached session for {username} at {base_url} ({environment})")
        raise typer.Exit(hc.EXIT_FAILED)
    payload: dict[str, Any] = out.session_json(session)
    if as_json:
        out.emit_json(payload)
        return
    for key, value in payload.items():
        out.stdout.print(f"{key:>22}: {out.escape(str(value))}")


@app.command("clear")
def sessions_clear(ctx: typer.Context) -> None:
    """Remove the cached session of the selected environment and user."""
    with hc.failures():
        manager, base_url, username, environment = _current_key(ctx)
        existed = manager.load_session(base_url, username, environment) is not None
        manager.remove_session(base_url, username, environment)
    out.stdout.print("Removed 1 session" if existed else "No cached session to remove")


@app.command("clear-all")
def sessions_clear_all(ctx: typer.Context) -> None:
    """Remove every cached HAC session."""
    with hc.failures():
        removed = hc.session_manager(hc.group_options(ctx)).clear_all_sessions()
    out.stdout.print(f"Removed {removed} session(s)")


__all__ = ["app"]
