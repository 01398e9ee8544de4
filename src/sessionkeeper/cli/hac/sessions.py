"""``hac session start|import|list|show|clear|clear-all``: sessions under ``ENV/ENDPOINT``.

hac-client-cli 0.3.2's commands and output, on our session store (0600 atomic
files, or any ``--store``). Session ids and CSRF tokens are shown as a short
prefix only, never whole.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from sessionkeeper.cli.hac import output as out
from sessionkeeper.cli.hac.context import (
    Target,
    chosen_session,
    find_session,
    group_options,
    resolve_target,
    session_manager,
    start_command,
)
from sessionkeeper.cli.hac.credentials import (
    find_password,
    from_env,
    password_from_env,
    save_keyring_password,
)
from sessionkeeper.cli.hac.errors import EXIT_USAGE, CliError, reported
from sessionkeeper.cli.hac.params import EnvironmentArgument as EnvName
from sessionkeeper.cli.hac.params import PlainCommand, PlainGroup

app = typer.Typer(
    cls=PlainGroup, help="Manage HAC sessions", no_args_is_help=True, rich_markup_mode=None
)

EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint", "-n", help="Endpoint name (uses default if not specified)"),
]
UsernameOption = Annotated[
    str | None, typer.Option("--username", "-u", help="Username (or use env var)")
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Output as JSON")]


def _username_missing(target: Target) -> CliError:
    upper = f"{target.environment.upper()}_{target.endpoint.upper()}"
    return CliError(
        "Username not provided\n\nProvide username via:\n  --username <user>\n"
        f"  HAC_USERNAME environment variable\n  HAC_USERNAME_{upper} environment variable",
        kind="credentials",
    )


@app.command("start", cls=PlainCommand)
def start_session(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: EndpointOption = None,
    username: UsernameOption = None,
    password: Annotated[
        str | None, typer.Option("--password", "-p", help="Password (or use stdin/env var)")
    ] = None,
    save_password: Annotated[
        bool, typer.Option("--save-password", help="Also keep the password in the OS keyring")
    ] = False,
    json_output: JsonOutput = False,
) -> None:
    """Start a new HAC session (authenticate and create session)."""
    from sessionkeeper.cli.hac.lazy_auth import LazyPasswordAuth
    from sessionkeeper.cli.hac.waiting import watched
    from sessionkeeper.hac.client import HacClient

    with reported(json_output=json_output):
        options = group_options(ctx)
        target = resolve_target(options, environment, endpoint, username)
        if not target.username:
            raise _username_missing(target)
        user = target.username
        secret = (
            password or options.password or password_from_env(target.environment, target.endpoint)
        )
        if not secret and not sys.stdin.isatty():
            secret = sys.stdin.read().strip()
        if not secret:
            secret = find_password(None, target.environment, user, target.endpoint)
        if not secret:
            raise CliError(
                "Password not provided\n\nProvide password via:\n  HAC_PASSWORD environment "
                f"variable\n  HAC_PASSWORD_{target.environment.upper()}_"
                f"{target.endpoint.upper()} environment variable\n  stdin: echo 'password' | "
                f"{start_command(options, target, user)}",
                kind="credentials",
            )
        manager = session_manager(options)
        cached = manager.load_session(target.session_url, user, target.key)
        client = HacClient(
            target.url,  # its user part is a gate's Basic login; the key never holds it
            LazyPasswordAuth(user, lambda: secret, start_command(options, target, user)),
            environment=target.key,
            timeout=target.timeout,
            ignore_ssl=target.ignore_ssl,
            quiet=not options.verbose,
            session_manager=manager,
        )
        with client, watched(client, user):
            if cached is None or save_password:
                client.login(force=True)  # a password kept in the keyring has been checked
            else:
                # Like the original: a cached session that still works is kept. One
                # read-only request that needs a session proves it (a dead one is
                # replaced by a fresh login); the update log would not: HAC serves
                # it without a session while it initialises.
                client.use_session(cached)
                client.get_update_data()
        if save_password:
            save_keyring_password(target.environment, user, secret)
        if json_output:
            out.emit_json({"started": target.key, "username": user, "url": target.session_url})
            return
        out.line(f"Session started for '{target.key}'")
        out.line(f"  User: {user}")
        out.line(f"  URL: {target.session_url}")


@app.command("import", cls=PlainCommand)
def import_session(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: EndpointOption = None,
    username: UsernameOption = None,
    session_id: Annotated[
        str | None, typer.Option("--session-id", help="Session ID (JSESSIONID)")
    ] = None,
    csrf_token: Annotated[str | None, typer.Option("--csrf-token", help="CSRF token")] = None,
    route_cookie: Annotated[
        str | None, typer.Option("--route-cookie", help="ROUTE cookie (optional)")
    ] = None,
    json_output: JsonOutput = False,
) -> None:
    """Import an existing HAC session from tokens (options, HAC_SESSION_ID..., or stdin JSON)."""
    with reported(json_output=json_output):
        options = group_options(ctx)
        target = resolve_target(options, environment, endpoint, username)
        user = target.username
        piped = ""
        if (not session_id or not csrf_token or not user) and not sys.stdin.isatty():
            piped = sys.stdin.read()
        # Empty stdin is what every CI job has (a pipe or /dev/null, never a
        # terminal): it means "use the options and variables", not bad JSON.
        if piped.strip():
            try:
                data: Any = json.loads(piped)
            except ValueError as exc:
                raise CliError(f"stdin is not the JSON of a session: {exc}") from None
            if not isinstance(data, dict):
                raise CliError("stdin JSON must be an object with session_id and csrf_token")
            user = user or data.get("username")
            session_id = session_id or data.get("session_id")
            csrf_token = csrf_token or data.get("csrf_token")
            route_cookie = route_cookie or data.get("route_cookie")
        session_id = session_id or from_env(target.environment, "SESSION_ID", target.endpoint)
        csrf_token = csrf_token or from_env(target.environment, "CSRF_TOKEN", target.endpoint)
        route_cookie = route_cookie or from_env(target.environment, "ROUTE_COOKIE", target.endpoint)
        for value, what, flag in (
            (user, "Username", "--username, HAC_USERNAME"),
            (session_id, "Session ID", "--session-id, HAC_SESSION_ID"),
            (csrf_token, "CSRF token", "--csrf-token, HAC_CSRF_TOKEN"),
        ):
            if not value:
                raise CliError(
                    f"{what} not provided\nProvide via {flag} env var, or stdin (JSON)",
                    kind="credentials",
                )
        assert user and session_id and csrf_token
        session_manager(options).save_session(
            base_url=target.session_url,
            username=user,
            environment=target.key,
            session_id=session_id,
            csrf_token=csrf_token,
            route_cookie=route_cookie,
        )
        if json_output:
            out.emit_json(
                {
                    "imported": target.key,
                    "username": user,
                    "url": target.session_url,
                    "session_id": out.hint(session_id),
                }
            )
            return
        out.line(f"Session imported for '{target.key}'")
        out.line(f"  User: {user}")
        out.line(f"  URL: {target.session_url}")
        out.line(f"  Session ID: {out.hint(session_id)}")


@app.command("list", cls=PlainCommand)
def list_sessions(
    ctx: typer.Context,
    format: Annotated[
        str, typer.Option("--format", "-f", help="Output format: table, json")
    ] = "table",
    no_headers: Annotated[
        bool, typer.Option("--no-headers", help="Suppress column headers")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Minimal output (environment IDs only)")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Output as JSON (the same as --format json)")
    ] = False,
) -> None:
    """List all active sessions."""
    format = "json" if json_output else format  # --json, as every other command spells it
    with reported(json_output=format == "json"):
        options = group_options(ctx)
        sessions = session_manager(options).list_sessions()
        if not sessions:
            if format == "json":
                out.line("[]")
            else:
                start = options.command("session start <environment> --username <user>")
                out.markup("[yellow]No active sessions[/yellow]")
                out.line(f"\nCreate a session: {start}")  # plain: a wrapped line would not paste
            return
        if format == "json":
            out.emit_json(
                [
                    {
                        "environment": s.environment,
                        "url": s.base_url,
                        "username": s.username,
                        "session_id": out.hint(s.session_id),
                        "created_at": s.created_at_formatted,
                        "last_used_at": s.last_used_at_formatted,
                        "age_seconds": s.age_seconds,
                        "idle_seconds": s.idle_seconds,
                        "is_authenticated": s.is_authenticated,
                    }
                    for s in sessions
                ]
            )
        elif quiet:
            for s in sessions:
                out.line(s.environment)
        else:
            out.table(
                [
                    ("ENVIRONMENT", {"style": "cyan"}),
                    ("USERNAME", {}),
                    ("URL", {}),
                    ("AUTH", {"justify": "center"}),
                    ("AGE", {"justify": "right"}),
                    ("IDLE", {"justify": "right"}),
                ],
                [
                    [
                        s.environment,
                        s.username,
                        s.base_url,
                        "[green]✓[/green]" if s.is_authenticated else "[red]✗[/red]",
                        out.format_duration(s.age_seconds),
                        out.format_duration(s.idle_seconds),
                    ]
                    for s in sessions
                ],
                show_header=not no_headers,
            )


@app.command("show", cls=PlainCommand)
def show_session(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: EndpointOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Output as JSON")] = False,
) -> None:
    """Show details of a specific session."""
    with reported(json_output=json_output):
        options = group_options(ctx)
        target = resolve_target(options, environment, endpoint)
        session = find_session(session_manager(options), target)
        if session is None:
            message = f"No active session for environment '{target.key}'"
            # Exit 0 as the original does; with --json the answer is still JSON.
            if json_output:
                out.emit_json({"error": "no_session", "message": message})
            else:
                out.line(message)
            return
        if json_output:
            out.emit_json(
                {
                    "environment": session.environment,
                    "url": session.base_url,
                    "username": session.username,
                    "session_id": out.hint(session.session_id),
                    "csrf_token": out.hint(session.csrf_token),
                    "route_cookie": session.route_cookie,
                    "created_at": session.created_at_formatted,
                    "last_used_at": session.last_used_at_formatted,
                    "age_seconds": session.age_seconds,
                    "idle_seconds": session.idle_seconds,
                    "is_authenticated": session.is_authenticated,
                }
            )
            return
        status = "authenticated" if session.is_authenticated else "not authenticated"
        out.line(f"Session: {session.environment}")
        out.line(f"  URL: {session.base_url}")
        out.line(f"  Username: {session.username}")
        out.line(f"  Status: {status}")
        out.line(f"  Session ID: {out.hint(session.session_id)}")
        out.line(f"  CSRF Token: {out.hint(session.csrf_token)}")
        if session.route_cookie:
            out.line(f"  Route Cookie: {session.route_cookie}")
        out.line(f"\n  Created: {session.created_at_formatted}")
        out.line(f"  Last used: {session.last_used_at_formatted}")
        out.line(f"  Age: {out.format_duration(session.age_seconds)}")
        out.line(f"  Idle: {out.format_duration(session.idle_seconds)}")


@app.command("clear", cls=PlainCommand)
def clear_session(
    ctx: typer.Context,
    environment: EnvName,
    endpoint: EndpointOption = None,
    json_output: JsonOutput = False,
) -> None:
    """Clear session for a specific environment."""
    with reported(json_output=json_output):
        _, target, manager, session = chosen_session(ctx, environment, endpoint)
        if session is not None:
            manager.remove_session(session.base_url, session.username, target.key)
        if json_output:
            out.emit_json({"environment": target.key, "cleared": session is not None})
        elif session is None:
            out.line(f"No active session for environment '{target.key}'")
        else:
            out.line(f"Session cleared for environment '{target.key}'")


@app.command("clear-all", cls=PlainCommand)
def clear_all_sessions(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Force without confirmation")
    ] = False,
    json_output: JsonOutput = False,
) -> None:
    """Clear all sessions."""
    with reported(json_output=json_output):
        if json_output and not force:
            # A prompt would land in the JSON on stdout.
            raise CliError("--json clears without asking only with --force", EXIT_USAGE)
        if not force and not typer.confirm("Clear all sessions?"):
            out.line("Cancelled")
            return
        count = session_manager(group_options(ctx)).clear_all_sessions()
        if json_output:
            out.emit_json({"cleared": count})
        else:
            out.line(f"Cleared {count} session(s)")


__all__ = ["app"]
