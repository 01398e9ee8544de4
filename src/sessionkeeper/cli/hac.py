"""``sessionkeeper hac ...`` and the ``hac`` console script.

Exit codes: 0 ok, 1 the operation failed (a Groovy stacktrace, an Impex or
query error, HAC unreachable), 2 usage or configuration, 3 authentication.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from sessionkeeper.cli import hac_output as out
from sessionkeeper.cli.config import DEFAULT_ENDPOINT, ConfigError, config_path, load_config
from sessionkeeper.cli.hac_credentials import (
    CredentialError,
    LazyPasswordAuth,
    find_password,
    resolve_username,
    save_keyring_password,
)
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.stores.errors import StoreError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
_META_KEY = "sessionkeeper.hac.options"

app = typer.Typer(
    name="hac",
    help="Script SAP Commerce HAC (Groovy, FlexibleSearch, Impex, system update) "
    "with a persisted session.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
update_app = typer.Typer(help="System update: data, patches, run, log.", no_args_is_help=True)
sessions_app = typer.Typer(help="Cached HAC sessions.", no_args_is_help=True)
app.add_typer(update_app, name="update")
app.add_typer(sessions_app, name="sessions")


@dataclass(frozen=True)
class Options:
    """The group's options, shared by every command."""

    config: Path | None
    env: str | None
    endpoint: str | None
    url: str | None
    username: str | None
    password: str | None
    store: str | None
    timeout: int | None
    ignore_ssl: bool | None
    verbose: bool


@dataclass(frozen=True)
class Target:
    """Which HAC, as whom, under which cache key."""

    url: str
    env_name: str
    cache_environment: str
    username: str
    timeout: int
    ignore_ssl: bool


class UsageError(Exception):
    """A command line that cannot work (exit code 2)."""


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
    ctx.meta[_META_KEY] = Options(
        config, env, endpoint, url, username, password, store, timeout, ignore_ssl, verbose
    )


def _options(ctx: typer.Context) -> Options:
    options = ctx.meta.get(_META_KEY)
    if not isinstance(options, Options):
        raise UsageError("internal: hac options missing")
    return options


@contextmanager
def _failures() -> Iterator[None]:
    """Turn library errors into a message and the documented exit code."""
    try:
        yield
    except HacAuthenticationError as exc:
        out.error(str(exc))
        raise typer.Exit(EXIT_AUTH) from None
    except (UsageError, ConfigError, CredentialError, ValueError) as exc:
        out.error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except (HacClientError, StoreError, OSError) as exc:
        out.error(str(exc))
        raise typer.Exit(EXIT_FAILED) from None


def _target(options: Options) -> Target:
    config = load_config(config_path(options.config))
    env_name = options.env or config.default_environment
    configured_user: str | None = None
    if options.url:
        url = options.url
        cache_environment = env_name
        timeout = options.timeout or 30
        ignore_ssl = bool(options.ignore_ssl)
    else:
        if not config.environments:
            raise UsageError(
                f"no HAC URL: pass --url, or describe environments in {config.path} "
                "([environments.NAME.endpoints.hac] with url = ...)"
            )
        endpoint_name, endpoint = config.endpoint(env_name, options.endpoint)
        url = endpoint.url
        cache_environment = (
            env_name if endpoint_name == DEFAULT_ENDPOINT else f"{env_name}/{endpoint_name}"
        )
        timeout = options.timeout or endpoint.timeout
        ignore_ssl = endpoint.ignore_ssl if options.ignore_ssl is None else options.ignore_ssl
        configured_user = endpoint.username
    username = resolve_username(options.username, env_name, configured_user)
    return Target(url, env_name, cache_environment, username, timeout, ignore_ssl)


def _manager(options: Options) -> SessionManager:
    """Sessions in ``--store`` or ``$SESSIONKEEPER_STORE``, else ``~/.cache/hac-client/``."""
    from sessionkeeper.stores.url import STORE_ENV, open_store

    chosen = options.store or os.environ.get(STORE_ENV)
    return SessionManager(store=open_store(chosen)) if chosen else SessionManager()


@contextmanager
def _client(ctx: typer.Context) -> Iterator[tuple[HacClient, Target]]:
    options = _options(ctx)
    target = _target(options)
    auth = LazyPasswordAuth(
        target.username, lambda: find_password(options.password, target.env_name, target.username)
    )
    client = HacClient(
        target.url,
        auth,
        environment=target.cache_environment,
        timeout=target.timeout,
        ignore_ssl=target.ignore_ssl,
        quiet=not options.verbose,
        session_manager=_manager(options),
    )
    with client:
        yield client, target


def _read_source(inline: str | None, file: Path | None, what: str) -> str:
    if inline is not None and file is not None:
        raise UsageError(f"give the {what} inline or with --file, not both")
    if file is not None:
        if str(file) == "-":
            return sys.stdin.read()
        return file.read_text(encoding="utf-8")
    text = inline
    if inline == "-" or (inline is None and not sys.stdin.isatty()):
        text = sys.stdin.read()
    if not text or not text.strip():
        raise UsageError(f"no {what}: give it as an argument, with --file, or on stdin")
    return text


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
    with _failures(), _client(ctx) as (client, target):
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
    with _failures(), _client(ctx) as (client, target):
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
    with _failures():
        source = _read_source(script, file, "script")
        with _client(ctx) as (client, _):
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
        raise typer.Exit(EXIT_FAILED)


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
        raise typer.Exit(EXIT_USAGE)
    with _failures(), _client(ctx) as (client, _):
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
        raise typer.Exit(EXIT_FAILED)


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
    with _failures():
        content = _read_source(None, file, "Impex")
        with _client(ctx) as (client, _):
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
        raise typer.Exit(EXIT_FAILED)


# -- system update -----------------------------------------------------------------------


@update_app.command("data")
def update_data(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show the extensions and parameters the update offers."""
    with _failures(), _client(ctx) as (client, _):
        data = client.get_update_data()
    if as_json:
        from dataclasses import asdict

        out.emit_json(asdict(data))
    else:
        out.stdout.print(out.update_data_table(data))


@update_app.command("patches")
def update_patches(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show pending system patches."""
    with _failures(), _client(ctx) as (client, _):
        patches = client.get_pending_patches()
    if as_json:
        out.emit_json(patches)
    else:
        out.stdout.print(out.patches_table(patches))


def _parse_patches(values: list[str]) -> dict[str, str]:
    patches = {}
    for value in values:
        name, sep, choice = value.partition("=")
        if not sep or not name:
            raise UsageError(f"--patch expects NAME=VALUE, got {value!r}")
        patches[name] = choice
    return patches


def _follow_log(client: HacClient, interval: float, max_wait: float) -> bool:
    """Print the update log as it grows until it reports completion; True if it did."""
    shown = ""
    deadline = time.monotonic() + max_wait
    with out.stderr.status("System update running...", spinner="dots") as status:
        while True:
            log = client.get_update_log()
            text = log.log_text
            if text.startswith(shown) and len(text) > len(shown):
                out.stdout.out(text[len(shown) :].strip("\n"), highlight=False)
            elif not text.startswith(shown):
                out.stdout.out(text, highlight=False)
            shown = text
            if log.is_complete:
                return True
            if time.monotonic() >= deadline:
                return False
            status.update(f"System update running... ({len(text.splitlines())} log lines)")
            time.sleep(interval)


@update_app.command("run")
def update_run(
    ctx: typer.Context,
    patch: Annotated[
        list[str] | None, typer.Option("--patch", help="NAME=VALUE (repeatable).")
    ] = None,
    essential_data: Annotated[bool, typer.Option("--essential-data")] = False,
    project_data: Annotated[bool, typer.Option("--project-data")] = False,
    localize_types: Annotated[bool, typer.Option("--localize-types")] = False,
    clear_hmc: Annotated[bool, typer.Option("--clear-hmc")] = False,
    pending_patches: Annotated[
        bool,
        typer.Option("--pending-patches/--no-pending-patches", help="Include required patches."),
    ] = True,
    follow: Annotated[
        bool, typer.Option("--follow", help="Show the log until it finishes.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between log polls.")] = 1.0,
    max_wait: Annotated[
        float, typer.Option("--max-wait", help="Give up following after seconds.")
    ] = 3600.0,
) -> None:
    """Run a system update (initMethod UPDATE)."""
    with _failures(), _client(ctx) as (client, _):
        result = client.execute_update(
            patches=_parse_patches(patch or []),
            create_essential_data=essential_data,
            create_project_data=project_data,
            localize_types=localize_types,
            clear_hmc=clear_hmc,
            include_pending_patches=pending_patches,
        )
        if not result.success:
            out.error("HAC did not start the update (is one already running?)")
            raise typer.Exit(EXIT_FAILED)
        if not follow:
            out.emit_text(result.log_text)
            return
        if not _follow_log(client, interval, max_wait):
            out.error(f"the update did not finish within {max_wait:g} s")
            raise typer.Exit(EXIT_FAILED)


@update_app.command("log")
def update_log(
    ctx: typer.Context,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep showing until it finishes.")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.")] = 1.0,
    max_wait: Annotated[float, typer.Option("--max-wait", help="Give up after seconds.")] = 3600.0,
) -> None:
    """Show the update/initialization log."""
    with _failures(), _client(ctx) as (client, _):
        if not follow:
            out.emit_text(client.get_update_log().log_text)
            return
        if not _follow_log(client, interval, max_wait):
            out.error(f"the update did not finish within {max_wait:g} s")
            raise typer.Exit(EXIT_FAILED)


# -- cached sessions ---------------------------------------------------------------------


@sessions_app.command("list")
def sessions_list(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """List cached sessions, most recently used first."""
    with _failures():
        sessions = _manager(_options(ctx)).list_sessions()
    if as_json:
        out.emit_json([out.session_json(s) for s in sessions])
    else:
        out.stdout.print(out.sessions_table(sessions))


def _current_key(ctx: typer.Context) -> tuple[SessionManager, str, str, str]:
    options = _options(ctx)
    target = _target(options)
    return (
        _manager(options),
        target.url.rstrip("/"),
        target.username,
        target.cache_environment,
    )


@sessions_app.command("show")
def sessions_show(
    ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False
) -> None:
    """Show the cached session of the selected environment and user."""
    with _failures():
        manager, base_url, username, environment = _current_key(ctx)
        session = manager.load_session(base_url, username, environment)
    if session is None:
        out.error(f"no cached session for {username} at {base_url} ({environment})")
        raise typer.Exit(EXIT_FAILED)
    payload: dict[str, Any] = out.session_json(session)
    if as_json:
        out.emit_json(payload)
        return
    for key, value in payload.items():
        out.stdout.print(f"{key:>22}: {out.escape(str(value))}")


@sessions_app.command("clear")
def sessions_clear(ctx: typer.Context) -> None:
    """Remove the cached session of the selected environment and user."""
    with _failures():
        manager, base_url, username, environment = _current_key(ctx)
        existed = manager.load_session(base_url, username, environment) is not None
        manager.remove_session(base_url, username, environment)
    out.stdout.print("Removed 1 session" if existed else "No cached session to remove")


@sessions_app.command("clear-all")
def sessions_clear_all(ctx: typer.Context) -> None:
    """Remove every cached HAC session."""
    with _failures():
        removed = _manager(_options(ctx)).clear_all_sessions()
    out.stdout.print(f"Removed {removed} session(s)")


def main() -> None:
    """Entry point of the ``hac`` console script."""
    app(prog_name="hac")


if __name__ == "__main__":
    main()


__all__ = ["app", "main"]
