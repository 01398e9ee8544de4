"""What every ``hac`` command shares: the chosen endpoint, its session, and the client.

A command names an environment and endpoint (``-e``/``-n``, else the config's
defaults); the session is the one cached under ``ENV/ENDPOINT`` for that URL,
whoever started it (this CLI or hac-client-cli 0.3.2), so no username is
needed. When there is none, a login happens on demand if a username and
password are at hand; else the command fails as the original does.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import typer

from sessionkeeper.cli.hac.config import UnknownEnvironmentError, config_path, load_config
from sessionkeeper.cli.hac.credentials import find_password, username_from_env
from sessionkeeper.cli.hac.errors import CliError
from sessionkeeper.redaction import redact_url, without_userinfo

if TYPE_CHECKING:
    from sessionkeeper.hac.client import HacClient
    from sessionkeeper.hac.session import SessionManager, SessionMetadata

META_KEY = "sessionkeeper.hac.options"
#: ``sessionkeeper.stores.url.STORE_ENV``, spelled here so a plain run does not load that module.
STORE_ENV = "SESSIONKEEPER_STORE"


@dataclass(frozen=True)
class Options:
    """Options given before the command (ours; the original has none there)."""

    config: Path | None = None
    environment: str | None = None
    url: str | None = None
    username: str | None = None
    password: str | None = None
    store: str | None = None
    timeout: int | None = None
    ignore_ssl: bool | None = None
    verbose: bool = False

    def command(self, rest: str) -> str:
        """``hac [options] REST``: a command line to paste, with this invocation's options.

        The options that choose the HAC and the store (``--config``, ``--url``,
        ``--store``, ``--timeout``, ``--ignore-ssl``) are repeated so the hint
        reaches the same endpoint and session; a password never is: one in a
        URL's user part or query shows as ``***`` (hints land in CI logs).
        """
        words = ["hac"]
        for flag, value in (
            ("--config", self.config),
            ("--url", redact_url(self.url) if self.url else None),
            ("--store", redact_url(self.store) if self.store else None),
            ("--timeout", self.timeout),
        ):
            if value is not None:
                words += [flag, shlex.quote(str(value))]
        if self.ignore_ssl is not None:
            words.append("--ignore-ssl" if self.ignore_ssl else "--verify-ssl")
        return " ".join([*words, rest])


def quoted(word: str) -> str:
    """``word`` as a shell word (``local`` stays ``local``, ``qa 1`` becomes ``'qa 1'``)."""
    return shlex.quote(word)


@dataclass(frozen=True)
class Target:
    """Which HAC, under which session key (``ENV/ENDPOINT``), with which settings."""

    url: str
    environment: str
    endpoint: str
    timeout: int
    ignore_ssl: bool
    username: str | None = None  #: ``-u``, a variable or the config; else the session's

    @property
    def session_url(self) -> str:
        """The base URL as session files hold it: no user part, no trailing slash."""
        return without_userinfo(self.url).rstrip("/")

    @property
    def key(self) -> str:
        """The session key hac-client-cli uses: ``ENV/ENDPOINT``."""
        return f"{self.environment}/{self.endpoint}"


def enable_verbose_logging() -> None:
    """``-v``: what happens, at INFO, on stderr (secrets are redacted by the loggers' filters)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("sessionkeeper").setLevel(logging.INFO)


def group_options(ctx: typer.Context) -> Options:
    """The options stored by the ``hac`` callback (defaults when run without it)."""
    root = ctx.find_root()
    options = root.meta.get(META_KEY)
    return options if isinstance(options, Options) else Options()


def resolve_target(
    options: Options,
    environment: str | None = None,
    endpoint: str | None = None,
    username: str | None = None,
) -> Target:
    """The endpoint chosen by the command's ``-e``/``-n`` (else the group's, else defaults)."""
    env = environment or options.environment
    if options.url:
        env_name, ep_name = env or "local", endpoint or "hac"
        target = Target(options.url, env_name, ep_name, 30, False)
    else:
        config = load_config(config_path(options.config))
        try:
            env_name, ep_name, found = config.endpoint(env, endpoint)
        except UnknownEnvironmentError as exc:
            raise CliError(str(exc) + _environment_hint(options, exc), kind="config") from None
        target = Target(
            found.url, env_name, ep_name, found.timeout, found.ignore_ssl, found.username
        )
    user = username or options.username or username_from_env(target.environment, target.endpoint)
    return replace(
        target,
        timeout=options.timeout or target.timeout,
        ignore_ssl=target.ignore_ssl if options.ignore_ssl is None else options.ignore_ssl,
        username=user or target.username,
    )


def _environment_hint(options: Options, exc: UnknownEnvironmentError) -> str:
    """The command that fixes a missing environment, to paste (with this invocation's options)."""
    if not exc.available:
        return f"\nhint: add it: {options.command(f'env add {quoted(exc.name)}')}"
    if not exc.from_default:
        return ""  # a misspelt name: the configured ones are listed
    name = quoted(exc.available[0]) if len(exc.available) == 1 else "<name>"
    return (
        "\nhint: name an environment on the command line, or make one the default: "
        + options.command(f"env set-default {name}")
    )


def session_manager(options: Options) -> SessionManager:
    """Sessions in ``--store`` or ``$SESSIONKEEPER_STORE``, else ``~/.cache/hac-client/``."""
    from sessionkeeper.hac.session import SessionManager

    chosen = options.store or os.environ.get(STORE_ENV)
    if not chosen:
        return SessionManager()
    # Only now: the store URL module loads every store kind (cryptography, sqlite3).
    from sessionkeeper.stores.url import open_store

    return SessionManager(store=open_store(chosen))


def find_session(manager: SessionManager, target: Target) -> SessionMetadata | None:
    """The session cached under ``target.key`` for its URL (any user, like the original)."""
    if target.username:
        session = manager.load_session(target.session_url, target.username, target.key)
        if session is not None:
            return session
    url = target.session_url
    for session in manager.list_sessions():
        if session.environment == target.key and session.base_url.rstrip("/") == url:
            return session
    return None


class Chosen(NamedTuple):
    """What a command line points at: its options, the target, the cache and its session."""

    options: Options
    target: Target
    manager: SessionManager
    session: SessionMetadata | None


def chosen_session(ctx: typer.Context, environment: str | None, endpoint: str | None) -> Chosen:
    """Resolve the environment and endpoint, open the cache and find the target's session."""
    options = group_options(ctx)
    target = resolve_target(options, environment, endpoint)
    manager = session_manager(options)
    return Chosen(options, target, manager, find_session(manager, target))


def start_command(options: Options, target: Target, username: str | None = None) -> str:
    """The ``hac session start`` line that logs in to ``target`` (pastes as it is)."""
    env, ep = quoted(target.environment), quoted(target.endpoint)
    user = quoted(username) if username else "<user>"
    return options.command(f"session start {env} --endpoint {ep} --username {user}")


def no_session_error(options: Options, target: Target) -> CliError:
    """The original's message when a command finds no session to use."""
    env, ep = quoted(target.environment), quoted(target.endpoint)
    user = quoted(target.username) if target.username else "<user>"
    imported = options.command(
        f"session import {env} --endpoint {ep} --username {user} "
        "--session-id <id> --csrf-token <token>"
    )
    return CliError(
        f"No active session for '{target.key}'\n\nStart a session:\n"
        f"  {start_command(options, target, target.username)}\n\n"
        f"Or import existing session:\n  {imported}",
        kind="no_session",
    )


@contextmanager
def open_client(
    ctx: typer.Context,
    environment: str | None = None,
    endpoint: str | None = None,
    *,
    quiet: bool = True,
) -> Iterator[HacClient]:
    """A client on the chosen endpoint's session; logs in on demand when it can."""
    from sessionkeeper.cli.hac.lazy_auth import LazyPasswordAuth
    from sessionkeeper.cli.hac.waiting import watched
    from sessionkeeper.hac.client import HacClient

    options, target, manager, session = chosen_session(ctx, environment, endpoint)
    username = session.username if session is not None else target.username
    preset: str | None = None
    if session is None:
        preset = (
            find_password(options.password, target.environment, username, target.endpoint)
            if username
            else None
        )
        if not username or not preset:
            raise no_session_error(options, target)
    assert username is not None

    def password() -> str | None:
        return preset or find_password(
            options.password, target.environment, username, target.endpoint
        )

    client = HacClient(
        target.url,
        LazyPasswordAuth(username, password, start_command(options, target, username)),
        environment=target.key,
        timeout=target.timeout,
        ignore_ssl=target.ignore_ssl,
        quiet=quiet and not options.verbose,
        session_manager=manager,
    )
    if session is not None:
        client.use_session(session)
    with client, watched(client, username):
        yield client


__all__ = [
    "META_KEY",
    "Options",
    "Target",
    "enable_verbose_logging",
    "find_session",
    "group_options",
    "no_session_error",
    "open_client",
    "quoted",
    "resolve_target",
    "session_manager",
    "start_command",
]
