"""``hac``: hac-client-cli 0.3.2's command line on sessionkeeper (also ``sessionkeeper hac``).

Same commands, options, short flags, defaults, config file, session key and
output as the original; exit 0 on success, 1 when the operation fails, 2 on a
usage error. Ours on top: logins on demand, a dead session healed once,
``--store``/``--url`` and friends before the command (or after it, where that
is unambiguous), stdin scripts, ``--json`` on every outcome, ``hac status``,
``--version`` and shell completion.

Start-up matters for shell loops, so this module imports only typer: the HAC
client loads when a command talks to HAC, rich only when a table is drawn, and
help is plain click help (``rich_markup_mode=None``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sessionkeeper.cli.hac import config_cmd, env, sessions, status, update
from sessionkeeper.cli.hac import output as out
from sessionkeeper.cli.hac.context import (
    META_KEY,
    Options,
    enable_verbose_logging,
    open_client,
)
from sessionkeeper.cli.hac.errors import CliError, reported
from sessionkeeper.cli.hac.params import (
    EndpointName,
    Environment,
    JsonOutput,
    LazyGroup,
    PlainCommand,
    Quiet,
)

#: The subcommands, built one at a time by `HacGroup` as a command line names them.
commands = typer.Typer()


class HacGroup(LazyGroup):
    """The ``hac`` group: its subcommands come from `commands`."""

    registry = commands


app = typer.Typer(
    cls=HacGroup,
    name="hac",
    help="SAP Commerce HAC client",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
commands.add_typer(env.env_app, name="env")
commands.add_typer(env.endpoint_app, name="endpoint")
commands.add_typer(sessions.app, name="session")
commands.add_typer(update.app, name="update")
commands.command("config", cls=PlainCommand)(config_cmd.config_command)


def _print_version(value: bool) -> None:
    if value:
        from sessionkeeper import __version__

        out.line(f"hac (sessionkeeper) {__version__}")
        raise typer.Exit()


@app.callback()
def _group(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Config file (default $HAC_CLIENT_CONFIG_PATH or "
            "~/.config/hac-client/config.toml).",
        ),
    ] = None,
    environment: Annotated[
        str | None, typer.Option("--env", help="Default environment for the command.")
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="HAC URL, bypassing the config.")] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="HAC user.")] = None,
    password: Annotated[
        str | None,
        typer.Option("--password", "-p", help="HAC password (prefer HAC_PASSWORD or the keyring)."),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Session store URL (dir:, sqlite:, redis://, ...)."),
    ] = None,
    timeout: Annotated[
        int | None, typer.Option("--timeout", help="HTTP timeout in seconds.")
    ] = None,
    ignore_ssl: Annotated[
        bool | None, typer.Option("--ignore-ssl/--verify-ssl", help="Skip TLS certificate checks.")
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what happens (no secrets).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """SAP Commerce HAC client"""
    if verbose:
        enable_verbose_logging()
    # The parameters are named as the Options fields: an option given after the
    # subcommand is stored under the same name (sessionkeeper.cli.hac.late_options).
    ctx.meta[META_KEY] = Options(
        config=config,
        environment=environment,
        url=url,
        username=username,
        password=password,
        store=store,
        timeout=timeout,
        ignore_ssl=ignore_ssl,
        verbose=verbose,
    )


def _script_text(script: str | None, as_file: bool) -> str:
    """The script: a ``.groovy`` path or ``-f`` reads the file, ``-``/nothing reads stdin."""
    if script is None or script == "-":
        text = "" if sys.stdin.isatty() else sys.stdin.read()
        if not text.strip():
            raise CliError("no script: give it as an argument, a .groovy file, or on stdin", 2)
        return text
    if as_file or script.endswith(".groovy"):
        path = Path(script)
        if not path.exists():
            raise CliError(f"Script file not found: {script}")
        return path.read_text(encoding="utf-8")
    return script


@commands.command("groovy", cls=PlainCommand)
def groovy_command(
    ctx: typer.Context,
    script: Annotated[
        str | None, typer.Argument(help="Groovy script or path to .groovy file (- or none: stdin)")
    ] = None,
    file: Annotated[bool, typer.Option("--file", "-f", help="Treat script as file path")] = False,
    commit: Annotated[bool, typer.Option("--commit", "-c", help="Enable commit mode")] = False,
    environment: Environment = None,
    endpoint: EndpointName = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    script_type: Annotated[
        str, typer.Option("--type", help="groovy, beanshell or javascript")
    ] = "groovy",
) -> None:
    """Execute Groovy script in HAC."""
    with reported(json_output=json_output):
        text = _script_text(script, file)
        with open_client(ctx, environment, endpoint, quiet=quiet) as client:
            result = client.execute_groovy(text, commit=commit, script_type=script_type)
        if json_output:
            out.emit_json(
                {
                    "success": result.success,
                    "output_text": result.output_text,
                    "execution_result": result.execution_result,
                    "commit_mode": result.commit_mode,
                    "execution_time_ms": result.execution_time_ms,
                    **({} if result.success else {"stacktrace_text": result.stacktrace_text}),
                }
            )
        if not result.success:
            raise CliError(f"Script execution failed\n{result.stacktrace_text}", shown=json_output)
        if not json_output:
            # Script output to stderr, the result to stdout, as the original does.
            if result.output_text:
                out.err(result.output_text)
            out.line(result.execution_result)


@commands.command("flexsearch", cls=PlainCommand)
def flexsearch_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="FlexibleSearch query")],
    max_count: Annotated[
        int, typer.Option("--max-count", "-m", "--max", help="Maximum number of results")
    ] = 200,
    locale: Annotated[str, typer.Option("--locale", "-l", help="Locale for the query")] = "en",
    environment: Environment = None,
    endpoint: EndpointName = None,
    csv: Annotated[bool, typer.Option("--csv", help="Output as CSV")] = False,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    sql: Annotated[bool, typer.Option("--sql", help="The query is raw SQL")] = False,
    as_user: Annotated[str | None, typer.Option("--as-user", help="Run as this HAC user")] = None,
    data_source: Annotated[str, typer.Option("--data-source", help="Data source")] = "master",
) -> None:
    """Execute FlexibleSearch query in HAC."""
    with reported(json_output=json_output):
        with open_client(ctx, environment, endpoint, quiet=quiet) as client:
            result = client.execute_flexiblesearch(
                query, max_count, locale, user=as_user, data_source=data_source, raw_sql=sql
            )
        if json_output:
            out.emit_json(
                {
                    "success": result.success,
                    "headers": result.headers,
                    "rows": result.rows,
                    "result_count": result.result_count,
                    "execution_time_ms": result.execution_time_ms,
                    **({} if result.success else {"exception": result.exception}),
                }
            )
        if not result.success:
            raise CliError(f"Query failed\n{result.exception}", shown=json_output)
        if json_output:
            return
        if csv:
            out.csv_rows(result.headers, result.rows)
            return
        out.tab_rows(result.headers, result.rows)
        if not quiet:
            out.err(f"\n{result.result_count} results")


def _impex_text(file: Path | None, path: Path | None) -> str:
    chosen = file or path
    if chosen is None or str(chosen) == "-":
        if sys.stdin.isatty():
            raise CliError("no Impex: give it with -f FILE or on stdin", 2)
        return sys.stdin.read()
    if not chosen.exists():
        raise CliError(f"Impex file not found: {chosen}")
    return chosen.read_text(encoding="utf-8")


@commands.command("impex", cls=PlainCommand)
def impex_command(
    ctx: typer.Context,
    path: Annotated[
        Path | None, typer.Argument(help="Impex file (same as -f; - for stdin)")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Impex file to import")] = None,
    validation: Annotated[
        str,
        typer.Option(
            "--validation",
            "-v",
            help="Validation mode (import_strict, import_relaxed, strict, relaxed)",
        ),
    ] = "import_strict",
    environment: Environment = None,
    endpoint: EndpointName = None,
    json_output: JsonOutput = False,
    quiet: Quiet = False,
    validate_only: Annotated[
        bool, typer.Option("--validate-only", help="Validate, do not import")
    ] = False,
    enable_code_execution: Annotated[
        bool, typer.Option("--enable-code-execution", help="Allow beanshell/groovy in the Impex")
    ] = False,
    legacy: Annotated[bool, typer.Option("--legacy", help="Legacy (Jalo) mode")] = False,
    max_threads: Annotated[int, typer.Option("--max-threads", help="Import threads")] = 1,
) -> None:
    """Import Impex data in HAC."""
    with reported(json_output=json_output):
        content = _impex_text(file, path)
        with open_client(ctx, environment, endpoint, quiet=quiet) as client:
            run = client.validate_impex if validate_only else client.import_impex
            result = run(
                content,
                validation,
                enable_code_execution=enable_code_execution,
                legacy_mode=legacy,
                max_threads=max_threads,
            )
        if json_output:
            out.emit_json(
                {
                    "success": result.success,
                    "output": result.output,
                    "validation_errors": result.validation_errors,
                    **({} if result.success else {"error": result.error}),
                }
            )
        if not result.success:
            details = "".join(f"\n  {line}" for line in result.validation_errors or [])
            raise CliError(f"Impex import failed: {result.error}{details}", shown=json_output)
        if not json_output:
            out.line(result.output)


@commands.command("logout", cls=PlainCommand)
def logout_command(
    ctx: typer.Context,
    environment: Environment = None,
    endpoint: EndpointName = None,
    json_output: JsonOutput = False,
) -> None:
    """End the session on the server too, and forget it (ours)."""
    with reported(json_output=json_output), open_client(ctx, environment, endpoint) as client:
        client.logout()
        if json_output:
            out.emit_json({"logged_out": client.environment})
        else:
            out.line(f"Logged out of '{client.environment}'")


# Ours, after the original's commands so help keeps their order.
commands.command("status", cls=PlainCommand)(status.status_command)


def main() -> None:
    """Entry point of the ``hac`` console script."""
    from sessionkeeper.cli.entry import run

    run(app, "hac")


__all__ = ["app", "main"]
