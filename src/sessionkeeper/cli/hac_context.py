"""What every ``hac`` command shares: options, target, client, and exit codes.

Exit codes: 0 ok, 1 the operation failed (a Groovy stacktrace, an Impex or
query error, HAC unreachable), 2 usage or configuration, 3 authentication.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import typer

from sessionkeeper.cli import hac_output as out
from sessionkeeper.cli.config import ConfigError, config_path, load_config
from sessionkeeper.cli.hac_credentials import (
    CredentialError,
    LazyPasswordAuth,
    find_password,
    resolve_username,
)
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.stores.errors import StoreError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
META_KEY = "sessionkeeper.hac.options"


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
    endpoint: str | None = None  #: the config's endpoint name; ``None`` with ``--url``


class UsageError(Exception):
    """A command line that cannot work (exit code 2)."""


def group_options(ctx: typer.Context) -> Options:
    """The group options stored by the ``hac`` callback."""
    options = ctx.meta.get(META_KEY)
    if not isinstance(options, Options):
        raise UsageError("internal: hac options missing")
    return options


@contextmanager
def failures() -> Iterator[None]:
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


def resolve_target(options: Options) -> Target:
    """Resolve URL, user and cache key from the options and the config file."""
    config = load_config(config_path(options.config))
    env_name = options.env or config.default_environment
    configured_user: str | None = None
    endpoint_name: str | None = None
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
        # The original hac-client CLI's key, so the sessions it cached serve us and back.
        cache_environment = f"{env_name}/{endpoint_name}"
        timeout = options.timeout or endpoint.timeout
        ignore_ssl = endpoint.ignore_ssl if options.ignore_ssl is None else options.ignore_ssl
        configured_user = endpoint.username
    username = resolve_username(options.username, env_name, configured_user, endpoint_name)
    return Target(url, env_name, cache_environment, username, timeout, ignore_ssl, endpoint_name)


def session_manager(options: Options) -> SessionManager:
    """Sessions in ``--store`` or ``$SESSIONKEEPER_STORE``, else ``~/.cache/hac-client/``."""
    from sessionkeeper.stores.url import STORE_ENV, open_store

    chosen = options.store or os.environ.get(STORE_ENV)
    return SessionManager(store=open_store(chosen)) if chosen else SessionManager()


@contextmanager
def open_client(ctx: typer.Context) -> Iterator[tuple[HacClient, Target]]:
    """A HacClient for the selected target; its password is fetched only if a login happens."""
    options = group_options(ctx)
    target = resolve_target(options)
    auth = LazyPasswordAuth(
        target.username,
        lambda: find_password(options.password, target.env_name, target.username, target.endpoint),
    )
    client = HacClient(
        target.url,
        auth,
        environment=target.cache_environment,
        timeout=target.timeout,
        ignore_ssl=target.ignore_ssl,
        quiet=not options.verbose,
        session_manager=session_manager(options),
    )
    with client:
        yield client, target


def read_source(inline: str | None, file: Path | None, what: str) -> str:
    """Text given inline, from ``--file`` (``-`` for stdin), or piped on stdin."""
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


__all__ = [
    "EXIT_AUTH",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "META_KEY",
    "Options",
    "Target",
    "UsageError",
    "failures",
    "group_options",
    "open_client",
    "read_source",
    "resolve_target",
    "session_manager",
]
