"""``sessionkeeper hac ...`` and the ``hac`` console script.

Exit codes: 0 ok, 1 the operation failed (a Groovy stacktrace, an Impex or
query error, HAC unreachable), 2 usage or configuration, 3 authentication.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from sessionkeeper.cli import hac_context as hc
from sessionkeeper.cli import hac_output as out
from sessionkeeper.cli import hac_sessions, hac_update
from sessionkeeper.cli.hac_credentials import LazyPasswordAuth, save_keyring_password

app = typer.Typer(
    name="hac",
    help="Script SAP Commerce HAC (Groovy, FlexibleSearch, Impex, system update) "
    "with a persisted session.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(hac_update.app, name="update")
app.add_typer(hac_sessions.app, name="sessions")


@app.callback()
def _group(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Config file (default $HAC_CONFIG or ~/.config/hac-client/config.toml).",
        ),
    ] = None,
    env: Annotated[
        str | None, typer.Option("--env", "-e", help="Environment from the config.")
    ] = None,
    endpoint: Annotated[
        str | None, typer.Option("--endpoint", help="Endpoint of the environment (default hac).")
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
) -> None:
    """Script SAP Commerce HAC with a persisted session."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if verbose:
        logging.getLogger("sessionkeeper").setLevel(logging.INFO)
    ctx.meta[hc.META_KEY] = hc.Options(
        config, env, endpoint, url, username, password, store, timeout, ignore_ssl, verbose
    )


# -- session commands ------------------------------------------------------------------


@app.command()
def login(
    ctx: typer.Context,
    force: Annotated[
        bool, typer.Option("--force", help="Log in even if a session is cached.")
    ] = False,
    save_password: Annotated[
        bool, typer.Option("--save-password", help="Keep the password in the OS keyring.")
    ] = False,
) -> None:
    """Open (or reuse) a HAC session and cache it."""
    with hc.failures(), hc.open_client(ctx) as (client, target):
        cached = (
            not force
            and client.session_manager is not None
            and (
                client.session_manager.load_session(
                    client.base_url, target.username, target.cache_environment
                )
                is not None
            )
        )
        client.login(force=force or save_password)
        if save_password:
            auth = client.auth_handler
            password = auth.password if isinstance(auth, LazyPasswordAuth) else None
            if password:
                save_keyring_password(target.env_name, target.username, password)
                out.note(f"Password of {target.username} saved in the OS keyring")
        how = "Using the cached session" if cached and not save_password else "Logged in"
        out.stdout.print(f"{how}: {out.escape(target.username)} at {out.escape(client.urls.root)}")


@app.command()
def logout(ctx: typer.Context) -> None:
    """End the session on the server and remove it from the cache."""
    with hc.failures(), hc.open_client(ctx) as (client, target):
        client.logout()
        out.stdout.print(
            f"Logged out {out.escape(target.username)} at {out.escape(client.urls.root)}"
        )


# -- console commands ------------------------------------------------------------------


@app.command()
def groovy(
    ctx: typer.Context,
    script: Annotated[str | None, typer.Argument(help="Script text, or - for stdin.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Read the script from a file.")
    ] = None,
    commit: Annotated[bool, typer.Option("--commit", help="Commit (default: roll back).")] = False,
    script_type: Annotated[
        str, typer.Option("--type", help="groovy, beanshell or javascript.")
    ] = "groovy",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run a Groovy script; exit 1 if it threw."""
    with hc.failures():
        source = hc.read_source(script, file, "script")
        with hc.open_client(ctx) as (client, _):
            result = client.execute_groovy(source, commit=commit, script_type=script_type)
    if as_json:
        out.emit_json(out.groovy_json(result))
    else:
        out.emit_text(result.output_text)
        if result.execution_result:
            out.emit_text(result.execution_result)
        if not result.success:
            out.stderr.out((result.stacktrace_text or "").rstrip("\n"), highlight=False)
    if not result.success:
        raise typer.Exit(hc.EXIT_FAILED)


@app.command()
def flexsearch(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="FlexibleSearch (or SQL with --sql).")],
    max_count: Annotated[int, typer.Option("--max", help="Most rows to return.")] = 200,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    sql: Annotated[bool, typer.Option("--sql", help="The query is raw SQL.")] = False,
    locale: Annotated[str, typer.Option("--locale")] = "en",
    user: Annotated[str | None, typer.Option("--as-user", help="Run as this HAC user.")] = None,
    data_source: Annotated[str, typer.Option("--data-source")] = "master",
) -> None:
    """Run a FlexibleSearch query; exit 1 on a query error."""
    if as_csv and as_json:
        out.error("choose one of --csv and --json")
        raise typer.Exit(hc.EXIT_USAGE)
    with hc.failures(), hc.open_client(ctx) as (client, _):
        result = client.execute_flexiblesearch(
            query, max_count, locale, user=user, data_source=data_source, raw_sql=sql
        )
    if as_json:
        out.emit_json(out.flexsearch_json(result))
    elif not result.success:
        pass
    elif as_csv:
        out.stdout.out(out.flexsearch_csv(result).rstrip("\n"), highlight=False)
    else:
        out.stdout.print(out.flexsearch_table(result))
    if not result.success:
        out.error(result.exception or "query failed")
        raise typer.Exit(hc.EXIT_FAILED)


@app.command()
def impex(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Impex file, or - for stdin.")],
    validation: Annotated[
        str, typer.Option("--validation", help="import_strict or import_relaxed.")
    ] = "import_strict",
    validate_only: Annotated[
        bool, typer.Option("--validate-only", help="Validate, do not import.")
    ] = False,
    enable_code_execution: Annotated[
        bool, typer.Option("--enable-code-execution", help="Allow beanshell/groovy in the Impex.")
    ] = False,
    legacy: Annotated[bool, typer.Option("--legacy", help="Legacy (Jalo) mode.")] = False,
    max_threads: Annotated[int, typer.Option("--max-threads")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import (or validate) an Impex file; exit 1 if HAC reports problems."""
    with hc.failures():
        content = hc.read_source(None, file, "Impex")
        with hc.open_client(ctx) as (client, _):
            run = client.validate_impex if validate_only else client.import_impex
            result = run(
                content,
                validation,
                enable_code_execution=enable_code_execution,
                legacy_mode=legacy,
                max_threads=max_threads,
            )
    if as_json:
        out.emit_json(
            {
                "success": result.success,
                "output": result.output,
                "error": result.error,
                "validation_errors": result.validation_errors,
            }
        )
    elif result.success:
        out.emit_text(result.output)
    else:
        out.error(result.error or "Impex failed")
        for line in result.validation_errors or []:
            out.stderr.out(line, highlight=False)
    if not result.success:
        raise typer.Exit(hc.EXIT_FAILED)


def main() -> None:
    """Entry point of the ``hac`` console script."""
    app(prog_name="hac")


__all__ = ["app", "main"]
