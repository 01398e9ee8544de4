"""``sessionkeeper atproto ...``: log in once, then call any XRPC method with a kept session.

Exit codes: 0 ok, 1 the operation failed (network, server error), 2 usage,
3 authentication (wrong password, expired or missing session).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sessionkeeper.atproto import (
    AtpSessionData,
    CorruptSessionError,
    NoSessionError,
    PersistentSessionManager,
    RateLimitedError,
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
    XrpcError,
)
from sessionkeeper.atproto.codec import name_for_did, validate_did
from sessionkeeper.atproto.did_resolution import DidResolutionError, resolve_pds
from sessionkeeper.atproto.home import choose_store
from sessionkeeper.atproto.interop import import_session_string
from sessionkeeper.atproto.listing import sessions_named, stored_oauth_sessions, stored_sessions
from sessionkeeper.atproto.manager_base import DEFAULT_TIMEOUT
from sessionkeeper.atproto.password.flows import reusable
from sessionkeeper.atproto.variables import SERVICE_ENV
from sessionkeeper.cli.atproto.oauth import (
    oauth_login,
    oauth_rows,
    open_oauth_manager,
    reusable_oauth,
    revoke_oauth,
)
from sessionkeeper.cli.atproto.state import forget, load_state, remember, remember_service
from sessionkeeper.cli.hints import answered, command, json_error, store_option, unreachable
from sessionkeeper.cli.hoisting import HoistingGroup
from sessionkeeper.cli.status import waiting
from sessionkeeper.core.lifetime import Lifetime
from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.redaction import install_log_redaction, origin, redact_url
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.errors import StoreError

if TYPE_CHECKING:
    # The OAuth stack (JOSE, cryptography) loads only when an OAuth session is used.
    from sessionkeeper.atproto import OAuthSession, OAuthSessionManager

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_AUTH = 3

PASSWORD_ENV = "ATP_PASSWORD"
DEFAULT_SERVICE = "https://bsky.social"
#: Login errors that mean "these credentials do not get you in".
AUTH_ERRORS = frozenset(
    {"AuthenticationRequired", "AuthFactorTokenRequired", "AccountTakedown", "InvalidToken"}
)

app = typer.Typer(
    cls=HoistingGroup,
    name="atproto",
    help="Bluesky / ATProto sessions: log in once, refresh exactly once, call XRPC.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sessions_app = typer.Typer(help="Stored sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_META_KEY = "sessionkeeper.atproto"

logger = logging.getLogger(__name__)


class UsageError(SessionkeeperError):
    """A command line that cannot work (exit code 2)."""


@dataclass(frozen=True)
class Options:
    """The group's options."""

    session_dir: Path | None
    store_url: str | None
    did: str | None
    service: str | None


@app.callback()
def _group(
    ctx: typer.Context,
    session_dir: Annotated[
        Path | None,
        typer.Option(
            "--session-dir",
            help="Session directory (default: $SESSIONKEEPER_STORE, else the user data dir).",
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Session store URL (dir:, sqlite:, redis://, ...; default $SESSIONKEEPER_STORE).",
        ),
    ] = None,
    did: Annotated[
        str | None, typer.Option("--did", help="Account to use (default: the current one).")
    ] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service",
            help=(
                "PDS or entryway URL (default: the one the account logged in to, else its "
                f"DID document's PDS, else ${SERVICE_ENV}; bsky.social for login)."
            ),
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what happens (no secrets).")
    ] = False,
) -> None:
    """Bluesky / ATProto sessions kept across runs and processes."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    if verbose:
        logging.getLogger("sessionkeeper").setLevel(logging.INFO)
    ctx.meta[_META_KEY] = Options(session_dir, store, did, service)


def _options(ctx: typer.Context) -> Options:
    options = ctx.meta.get(_META_KEY)
    if not isinstance(options, Options):
        raise UsageError("internal: atproto options missing")
    return options


#: ``--json``: one JSON object on stdout, failures as ``{"error": ..., "message": ...}``.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object (errors too).")]


def _done(as_json: bool, text: str, row: dict[str, Any]) -> None:
    """Say what a command did: ``text`` (rich markup) for people, ``row`` with ``--json``."""
    if as_json:
        typer.echo(json.dumps(row, indent=2))
    else:
        out.print(text)


@dataclass
class Attempt:
    """What a command was doing when it failed: the URL it tried, and whether as a default."""

    as_json: bool = False
    url: str | None = None
    default_of: str | None = None  #: how to choose another URL, when ``url`` was the default


def _fail(attempt: Attempt, error: str, message: str, code: int) -> typer.Exit:
    if attempt.as_json:
        json_error(error, message)
    err.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _oauth_login(
    store: Store, identifier: str, as_json: bool, force: bool, no_browser: bool, remote: bool
) -> None:
    """``login --oauth``: the stored session while it works (no browser), else a sign-in.

    ``--force`` revokes the stored session first, then signs in anew.
    """
    kept = None if force else reusable_oauth(store, identifier)
    if force:
        revoke_oauth(store, identifier)
    signed = kept or oauth_login(
        store, identifier, open_browser=not no_browser, timeout=300, remote=remote
    )
    remember(store, signed.did)
    who = escape(signed.handle or signed.did)
    text = (
        f"already logged in as [bold]{who}[/] with OAuth; using the stored session "
        "(--force signs in anew)"
        if kept
        else f"logged in as [bold]{who}[/] with OAuth"
    )
    row = {"did": signed.did, "handle": signed.handle, "kind": "oauth", "reused": bool(kept)}
    _done(as_json, text, row)


@contextmanager
def _failures(as_json: bool = False) -> Iterator[Attempt]:
    """Turn library errors into a message (and JSON with --json) and the documented exit code."""
    attempt = Attempt(as_json)
    try:
        yield attempt
    except (SessionExpiredError, NoSessionError) as exc:
        raise _fail(attempt, "authentication", str(exc), EXIT_AUTH) from None
    except XrpcError as exc:
        auth = exc.error in AUTH_ERRORS and exc.nsid.endswith("createSession")
        code = EXIT_AUTH if auth else EXIT_FAILED
        raise _fail(attempt, "authentication" if auth else "server", str(exc), code) from None
    except (UsageError, ValueError) as exc:
        raise _fail(attempt, "usage", str(exc), EXIT_USAGE) from None
    except SessionNetworkError as exc:
        message = str(exc)
        if exc.status is not None or exc.retry_after is not None:
            # The server answered (a 429, a recorded wait, a 5xx): it was reached.
            # A recorded wait's message names its end already.
            wait = None if isinstance(exc, RateLimitedError) else exc.retry_after
            message = answered(message, attempt.url, status=exc.status, wait=wait)
            kind = "rate_limited" if exc.status == 429 else "server"
            raise _fail(attempt, kind, message, EXIT_FAILED) from None
        if attempt.url:
            message = unreachable(message, attempt.url, default_of=attempt.default_of)
        raise _fail(attempt, "network", message, EXIT_FAILED) from None
    except (SessionError, StoreError, OSError) as exc:
        raise _fail(attempt, "failed", str(exc), EXIT_FAILED) from None


def _store(options: Options) -> Store:
    """``--store``, else ``--session-dir``, else ``$SESSIONKEEPER_STORE``, else the default dir.

    The same choice as the library's (`sessionkeeper.atproto.home.choose_store`),
    so a login made here is the session a script finds.
    """
    from sessionkeeper.stores.url import verify_key

    store = choose_store(options.store_url, options.session_dir).open()
    verify_key(store)  # a wrong key: one error, not a warning per entry first
    return store


def _login_service(options: Options, attempt: Attempt | None = None) -> str:
    """Where a login goes: --service, else $ATP_SERVICE, else bsky.social (noted in ``attempt``)."""
    chosen = options.service or os.environ.get(SERVICE_ENV)
    if attempt is not None:
        attempt.url = chosen or DEFAULT_SERVICE
        if not chosen:
            attempt.default_of = f"name another with --service URL or {SERVICE_ENV}"
    return chosen or DEFAULT_SERVICE


def again(options: Options, *words: str) -> str:
    """``sessionkeeper atproto`` with this run's store options and ``words``: a hint to paste."""
    where: list[str] = []
    if options.store_url:
        where = store_option(options.store_url)
    elif options.session_dir is not None:
        where = ["--session-dir", str(options.session_dir)]
    return command("sessionkeeper", "atproto", *where, *words)


def _same_issuer(options: Options, store: Store, did: str, url: str, *, explicit: bool) -> str:
    """The service for a login of ``did``, who has a stored session: the one that issued it.

    A stored session is reused (or, forced, revoked) at the host that issued
    it, never at another one: without a service given that is the host
    recorded at its login; a different one given is refused with the way out.
    """
    known = load_state(store).services.get(did)
    if known is None or origin(known) == origin(url):
        return url
    if not explicit:
        return known
    raise UsageError(
        f"the stored session of {did} was issued by {redact_url(known)}, not "
        f"{redact_url(url)}; log out first ({again(options, '--did', did, 'logout')}) "
        "to log in there"
    )


def _session_service(options: Options, store: Store, did: str) -> str:
    """The host that issued ``did``'s tokens: the only one they may be sent to.

    --service, else the service the account logged in to, else the PDS its DID
    document names (remembered from then on), else $ATP_SERVICE; never a default
    host, which did not issue them and whose "InvalidToken" would delete them.
    """
    known = load_state(store).services.get(did)
    if options.service:
        if known and origin(known) != origin(options.service):
            raise UsageError(
                f"the session of {did} was issued by {redact_url(known)}; --service "
                f"{redact_url(options.service)} would send its tokens to another host "
                "(log in there instead)"
            )
        return options.service
    if known:
        return known
    try:
        resolved = resolve_pds(did)
    except DidResolutionError as exc:
        fallback = os.environ.get(SERVICE_ENV)
        if fallback:
            return fallback
        raise UsageError(
            f"no service is known for {did} and its PDS could not be found ({exc}); "
            "name it with --service URL"
        ) from None
    remember_service(store, did, resolved)
    return resolved


def _pick_did(options: Options, store: Store) -> str:
    """The account to act for: --did, else the current one, else the only one."""
    if options.did:
        return options.did
    stored = [session.did for session in stored_sessions(store)]
    stored += [s.did for s in stored_oauth_sessions(store) if s.did not in stored]
    current = load_state(store).current
    if current in stored:
        return current
    if len(stored) == 1:
        return stored[0]
    if not stored:
        raise NoSessionError(
            f"no stored ATProto session: run {again(options, 'login', 'HANDLE')} first"
        )
    raise UsageError(
        f"{len(stored)} sessions are stored; choose one with --did ({', '.join(stored)})"
    )


def _open_password_manager(
    options: Options, store: Store, did: str
) -> tuple[PersistentSessionManager, str] | None:
    """A manager holding ``did``'s password session and its service; ``None`` if it has none.

    Only ``did``'s own entry is read, and no service is looked up for a DID
    without one (an OAuth account).
    """
    if name_for_did(did) not in store.names():
        return None
    service = _session_service(options, store, did)
    manager = PersistentSessionManager(None, service, store=store)
    try:
        loaded = manager.load_session(did)
    except CorruptSessionError as exc:
        logger.warning("skipping %s", exc)
        loaded = None
    except BaseException:
        manager.close()
        raise
    if loaded is None:
        manager.close()
        return None
    return manager, service


@contextmanager
def _manager(
    ctx: typer.Context, attempt: Attempt | None = None
) -> Iterator[PersistentSessionManager | OAuthSessionManager]:
    """A manager with the chosen account's session loaded (a password one, else OAuth)."""
    options = _options(ctx)
    store = _store(options)
    did = _pick_did(options, store)
    validate_did(did)  # a bad --did is a usage error before any look-up
    password = _open_password_manager(options, store, did)
    if password is None:
        with open_oauth_manager(store, did) as oauth:
            if oauth is None:
                raise NoSessionError(
                    f"no stored session for {did}: run {again(options, 'login', did)} first"
                )
            yield oauth
        return
    manager, service = password
    if attempt is not None:
        attempt.url = manager.pds_endpoint
    try:
        yield manager
    finally:
        manager.close()
    if manager.session is not None:  # the call went through (and was no logout)
        remember_service(store, did, service)


def _endpoint(manager: PersistentSessionManager | OAuthSessionManager) -> str:
    """Where the manager's calls go, for a status line."""
    if isinstance(manager, PersistentSessionManager):
        return redact_url(manager.pds_endpoint)
    session = manager.session
    return redact_url(session.pds_url) if session is not None else "the PDS"


def _when(exp: float | None) -> str:
    if exp is None:
        return "unknown"
    moment = dt.datetime.fromtimestamp(exp, tz=dt.UTC)
    left = exp - dt.datetime.now(tz=dt.UTC).timestamp()
    if left <= 0:
        return f"{moment:%Y-%m-%d %H:%M} UTC (expired)"
    if left < 3600:
        return f"{moment:%Y-%m-%d %H:%M} UTC (in {left / 60:.0f} min)"
    if left < 86400 * 2:
        return f"{moment:%Y-%m-%d %H:%M} UTC (in {left / 3600:.1f} h)"
    return f"{moment:%Y-%m-%d %H:%M} UTC (in {left / 86400:.0f} d)"


def _summary(session: AtpSessionData) -> dict[str, Any]:
    return {
        "handle": session.handle,
        "did": session.did,
        "active": session.active,
        "status": session.status,
        "access_expires_at": session.access_expires_at,
        "refresh_expires_at": session.refresh_expires_at,
        "session_ends_at": session.lifetime.session_ends_at,
    }


def _password() -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise UsageError(f"no password: set {PASSWORD_ENV} or run in a terminal to be asked")
    # On stderr: stdout is the command's answer (one JSON object with --json).
    return str(typer.prompt("App password", hide_input=True, err=True))


# -- commands ----------------------------------------------------------------------------


@app.command()
def login(
    ctx: typer.Context,
    identifier: Annotated[str, typer.Argument(help="Handle, DID or e-mail.")],
    service: Annotated[str | None, typer.Option("--service", help="PDS or entryway URL.")] = None,
    auth_factor_token: Annotated[
        str | None, typer.Option("--auth-factor-token", help="E-mailed sign-in code.")
    ] = None,
    oauth: Annotated[bool, typer.Option("--oauth", help="Sign in with OAuth (browser).")] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="With --oauth: only print the URL.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Log in anew even if a stored session works (revokes the old one)."
        ),
    ] = False,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="With --oauth: sign in with a browser on another machine, then paste "
            "the address it could not open on stdin.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Log in (password from $ATP_PASSWORD or a prompt, or --oauth); reuse a stored session."""
    with _failures(as_json) as attempt:
        options = _options(ctx)
        store = _store(options)
        if remote and not oauth:
            raise UsageError("--remote signs in with OAuth: use it with --oauth")
        if oauth:
            _oauth_login(store, identifier, as_json, force, no_browser, remote)
            return
        if service:
            attempt.url = service
        url = service or _login_service(options, attempt)
        stored = reusable(sessions_named(store, identifier), identifier, time.time())
        if stored is not None:
            explicit = bool(service or options.service)
            url = _same_issuer(options, store, stored.did, url, explicit=explicit)
            attempt.url, attempt.default_of = url, None
        with PersistentSessionManager(None, url, store=store) as manager:
            # A stored session that still works needs no password (and no createSession).
            with waiting(redact_url(url), DEFAULT_TIMEOUT):
                reused = None if force else manager.resume(identifier)
            session = reused
            if session is None:
                password = _password()  # asked before the status line can appear
                with waiting(f"{redact_url(url)} to log in", DEFAULT_TIMEOUT):
                    session = manager.login(
                        identifier, password, auth_factor_token=auth_factor_token, force=force
                    )
        remember(store, session.did, url)
        row = {
            "did": session.did,
            "handle": session.handle,
            "kind": "password",
            "service": redact_url(url),
            "reused": reused is not None,
        }
        if reused is not None:
            text = (
                f"already logged in as [bold]{escape(session.handle)}[/] ({session.did}); "
                "using the stored session (--force logs in anew)"
            )
        else:
            text = f"logged in as [bold]{escape(session.handle)}[/] ({session.did})"
        _done(as_json, text, row)


@app.command()
def whoami(
    ctx: typer.Context,
    as_json: JsonFlag = False,
) -> None:
    """Ask the server who the current session is (refreshing it if due)."""
    with _failures(as_json) as attempt, _manager(ctx, attempt) as manager:
        with waiting(_endpoint(manager), DEFAULT_TIMEOUT):
            answer = manager.query("com.atproto.server.getSession")
        session = manager.session
        if session is None:
            raise NoSessionError("the session was removed while asking the server")
        if not isinstance(answer, dict):
            raise SessionError(
                f"com.atproto.server.getSession answered {type(answer).__name__}, "
                "not a JSON object; is the service a PDS?"
            )
        if as_json:
            typer.echo(json.dumps(_whoami_row(answer, manager, session), indent=2))
            return
        who = f"[bold]{escape(str(answer.get('handle')))}[/] {escape(str(answer.get('did')))}"
        if not isinstance(session, AtpSessionData):
            out.print(f"{who} (OAuth)")
            pds, issuer = escape(redact_url(session.pds_url)), escape(redact_url(session.issuer))
            out.print(f"PDS: {pds}  issuer: {issuer}")
            out.print(f"scope: {escape(session.scope)}")
            _print_lifetime(session.lifetime)
            return
        assert isinstance(manager, PersistentSessionManager)  # a password session's manager
        out.print(who)
        out.print(f"PDS: {escape(redact_url(str(manager.pds_endpoint)))}")
        _print_lifetime(session.lifetime)
        out.print(f"sessions: {escape(repr(manager.store))}")


def _print_lifetime(lifetime: Lifetime) -> None:
    """The three ends of a session, each line only where the server told it."""
    out.print(f"access token expires {_when(lifetime.access_expires_at)}")
    out.print(f"refresh token expires {_when(lifetime.refresh_expires_at)}")
    if lifetime.session_ends_at is not None:
        out.print(f"session ends {_when(lifetime.session_ends_at)} (sign in again then)")


def _whoami_row(
    answer: dict[str, Any],
    manager: PersistentSessionManager | OAuthSessionManager,
    session: AtpSessionData | OAuthSession,
) -> dict[str, Any]:
    """``whoami --json``: who the server says, the kind, where calls go, when tokens end."""
    row: dict[str, Any] = {"handle": answer.get("handle"), "did": answer.get("did")}
    if not isinstance(session, AtpSessionData):
        return row | {
            "kind": "oauth",
            "pds": redact_url(session.pds_url),
            "issuer": redact_url(session.issuer),
            "scope": session.scope,
            "access_expires_at": session.expires_at,
            "refresh_expires_at": session.refresh_expires_at,
            "session_ends_at": session.session_ends_at,
        }
    assert isinstance(manager, PersistentSessionManager)
    return row | {
        "kind": "password",
        "pds": redact_url(str(manager.pds_endpoint)),
        "access_expires_at": session.access_expires_at,
        "refresh_expires_at": session.refresh_expires_at,
        "session_ends_at": None,  # an app-password session has no absolute end
        "store": repr(manager.store),
    }


def _print_oauth_sessions(store: Store, current: str | None) -> bool:
    """Print the OAuth sessions as a table; return whether there were any."""
    rows = stored_oauth_sessions(store)
    if not rows:
        return False
    table = Table(title="ATProto OAuth sessions")
    columns = ("", "kind", "handle", "DID", "scope", "access expires", "refresh expires")
    for column in (*columns, "session ends"):
        table.add_column(column, no_wrap=column == "DID")
    for s in rows:
        table.add_row(
            "*" if s.did == current else "",
            "oauth",
            escape(s.handle or ""),
            s.did,
            escape(s.scope),
            _when(s.expires_at),
            _when(s.refresh_expires_at),
            _when(s.session_ends_at),
        )
    out.print(table)
    return True


@sessions_app.command("list")
def sessions_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List stored sessions with their expiry dates (no network)."""
    with _failures(as_json):
        options = _options(ctx)
        store = _store(options)
        found = stored_sessions(store)
        current = load_state(store).current
        if as_json:
            rows = [{**_summary(s), "current": s.did == current} for s in found]
            typer.echo(json.dumps(rows + oauth_rows(store, current), indent=2))
            return
        if not _print_oauth_sessions(store, current) and not found:
            out.print("no stored sessions")
            return
        if not found:
            return
        table = Table(title="ATProto sessions")
        table.add_column("")
        table.add_column("handle")
        table.add_column("DID", no_wrap=True)
        table.add_column("access expires")
        table.add_column("refresh expires")
        for s in found:
            table.add_row(
                "*" if s.did == current else "",
                escape(s.handle),
                s.did,
                _when(s.access_expires_at),
                _when(s.refresh_expires_at),
            )
        out.print(table)


@app.command()
def refresh(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Refresh the session now (or adopt a pair another process refreshed)."""
    with _failures(as_json) as attempt, _manager(ctx, attempt) as manager:
        with waiting(_endpoint(manager), DEFAULT_TIMEOUT):
            session = manager.refresh_token()
        expires = (
            session.access_expires_at if isinstance(session, AtpSessionData) else session.expires_at
        )
        _done(
            as_json,
            f"refreshed {session.did}; access token expires {_when(expires)}",
            {"did": session.did, "access_expires_at": expires},
        )


def _params(values: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise UsageError(f"--param takes key=value, not {value!r}")
        if key in params:
            existing = params[key]
            params[key] = [*existing, item] if isinstance(existing, list) else [existing, item]
        else:
            params[key] = item
    return params


@app.command()
def call(
    ctx: typer.Context,
    nsid: Annotated[str, typer.Argument(help="Method, e.g. com.atproto.repo.listRecords.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Query parameter key=value.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="JSON body (makes it a procedure); - reads stdin."),
    ] = None,
    post: Annotated[bool, typer.Option("--post", help="Call as a procedure (POST).")] = False,
) -> None:
    """Call an XRPC method with the session and print the JSON answer."""
    with _failures() as attempt:
        params = _params(param or [])
        body: Any = None
        if data is not None:
            text = sys.stdin.read() if data == "-" else data
            try:
                body = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--data is not valid JSON: {exc}") from None
        with _manager(ctx, attempt) as manager, waiting(_endpoint(manager), DEFAULT_TIMEOUT):
            if data is None and not post:
                result = manager.query(nsid, params or None)
            else:
                if params:
                    raise UsageError("--param applies to queries; put procedure input in --data")
                result = manager.procedure(nsid, body)
        if isinstance(result, bytes):
            sys.stdout.buffer.write(result)
        elif result is not None:
            typer.echo(json.dumps(result, indent=2, ensure_ascii=False))


@app.command()
def logout(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Revoke the session on the server and remove it locally."""
    with _failures(as_json) as attempt, _manager(ctx, attempt) as manager:
        session = manager.session
        assert session is not None
        manager.logout()
        forget(manager.store, session.did)
        _done(as_json, f"logged out {session.did}", {"did": session.did, "logged_out": True})


@app.command("import-session-string")
def import_string(
    ctx: typer.Context,
    text: Annotated[
        str, typer.Argument(help="handle:::did:::access:::refresh[:::pds], or - for stdin.")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Store a session exported by MarshalX's atproto (``export_session_string``)."""
    with _failures(as_json):
        options = _options(ctx)
        store = _store(options)
        raw = sys.stdin.read() if text == "-" else text
        session, endpoint = import_session_string(raw.strip(), store)
        remember(store, session.did, options.service or endpoint)
        _done(
            as_json,
            f"imported the session of [bold]{escape(session.handle)}[/] ({session.did})",
            {"did": session.did, "handle": session.handle, "imported": True},
        )


def main() -> None:
    """Run the ``atproto`` command group on its own."""
    app()


if __name__ == "__main__":
    main()
