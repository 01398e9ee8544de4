"""``sessionkeeper store``: migrate, prune, check, rekey a store; ``--json`` for scripts."""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sessionkeeper.atproto.home import (
    FROM_DEFAULT,
    FROM_FLAG,
    STORE_ENV,
    StoreChoice,
    choose_store,
    old_cli_session_dir,
)
from sessionkeeper.cli.hints import json_error, store_reason
from sessionkeeper.maintenance.doctor import (
    Finding,
    Severity,
    diagnose,
    display_url,
    has_problems,
    repair,
    store_command,
)
from sessionkeeper.maintenance.migrate import CopyOutcome, CopyResult, migrate
from sessionkeeper.maintenance.prune import HAC_IDLE_TIMEOUT, PruneReason, prune
from sessionkeeper.maintenance.rekey import RekeyError, RekeyOutcome, RekeyResult, rekey
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.encrypted import KEY_ENV, generate_key
from sessionkeeper.stores.errors import MissingKeyError, StoreError
from sessionkeeper.stores.url import (
    KEYRING_KEY_SERVICE,
    KEYRING_KEY_USER,
    StoreUrlError,
    encryption_key,
    open_store,
    parse_store_url,
    with_encryption,
)

EXIT_FAILED = 1
EXIT_USAGE = 2

app = typer.Typer(
    name="store",
    help="Maintain session stores: migrate, prune, doctor, keygen.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

#: Where ``--store`` falls back to, as the maintenance commands' help says it.
_STORE_DEFAULT = f"default: ${STORE_ENV}, else the per-user default; sessionkeeper where prints it"

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """Parse ``90``, ``30s``, ``45m``, ``2h``, ``1.5d`` into seconds."""
    match = _DURATION.match(text.lower())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 30m, 2h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


JsonOutput = typer.Option(False, "--json", help="Print one JSON object (errors too).")

#: The error names ``--json`` prints, by exit code.
_ERROR_NAMES = {EXIT_FAILED: "failed", EXIT_USAGE: "usage"}


def _fail(message: str, code: int, as_json: bool = False) -> typer.Exit:
    if as_json:
        json_error(_ERROR_NAMES.get(code, "failed"), message)
    errors.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _chosen(url: str | None) -> StoreChoice:
    """The store the command works on: the one every command and the library choose.

    ``--store``, else ``$SESSIONKEEPER_STORE``, else the per-user default
    (`sessionkeeper.atproto.home.choose_store`). When it is the default, stderr
    says so, as ``sessionkeeper where`` does: the user named no store, so they
    learn which one was touched (stdout stays one JSON object for ``--json``).
    """
    choice = choose_store(url)
    if choice.source == FROM_DEFAULT:
        errors.print(
            f"store: {escape(display_url(choice.url))} "
            f"({escape(store_reason(choice.source, choice.detail))})"
        )
    return choice


def _open_chosen(choice: StoreChoice, url: str, as_json: bool) -> Store:
    """Open ``url`` (the choice, or its unencrypted inner store) to read and write.

    A named store must exist: a mistyped path should fail, not look empty. The
    default opens as every other command opens it (created owner-only if new,
    sessions of the old CLI location moved in), so before the first login it
    is an empty store.
    """
    if choice.source != FROM_DEFAULT:
        return _open(url, must_exist=True, as_json=as_json)
    try:
        return choice.open()
    except (StoreError, OSError) as exc:
        raise _fail(f"cannot open {display_url(url)}: {exc}", EXIT_FAILED, as_json) from exc


def _not_created_yet(choice: StoreChoice) -> bool:
    """Whether the choice is the default directory and no command has created it yet."""
    path = parse_store_url(choice.url).path
    return choice.source == FROM_DEFAULT and path is not None and not path.exists()


def _old_location_findings(choice: StoreChoice) -> list[Finding]:
    """A note on entries an older CLI left in its location, which the default adopts.

    The doctor does not move them (it only reads); any command that opens the
    default store does, so a default that looks empty is not taken for one.
    """
    old = old_cli_session_dir()
    default = parse_store_url(choice.url).path
    if default is not None and old.resolve() == default.resolve():
        return []  # one place on this platform (macOS: config and data dirs coincide)
    try:
        count = sum(1 for entry in old.iterdir() if not entry.name.startswith("."))
    except OSError:  # absent (the usual case), or unreadable: nothing to say
        return []
    if not count:
        return []
    return [
        Finding(
            Severity.NOTE,
            str(old),
            f"holds {count} entr{'y' if count == 1 else 'ies'} of an older sessionkeeper CLI; "
            "the next command that opens the default store moves them into it",
            "sessionkeeper atproto sessions list (moves them now, and lists them)",
        )
    ]


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def _location(url: str) -> str:
    """Where a store URL keeps its data, so two spellings of one store compare equal.

    ``?encrypt=1`` wraps the same data; file stores are compared by resolved path.
    """
    parts = parse_store_url(url)
    if parts.path is not None:
        kind = "sqlite" if parts.scheme == "sqlite" else "dir"
        return f"{kind}:{parts.path.resolve()}"
    return f"{parts.scheme}:{parts.body}?{urlencode(sorted(parts.params.items()))}"


def _open(url: str, *, must_exist: bool = False, as_json: bool = False) -> Store:
    path = parse_store_url(url).path
    if must_exist and path is not None and not path.exists():
        raise _fail(f"{path} does not exist; nothing to read from", EXIT_FAILED, as_json)
    try:
        return open_store(url)
    except StoreUrlError as exc:
        raise _fail(str(exc), EXIT_USAGE, as_json) from exc
    except (StoreError, OSError) as exc:  # OSError: e.g. a dir: path that is a file
        raise _fail(f"cannot open {display_url(url)}: {exc}", EXIT_FAILED, as_json) from exc


_OUTCOME_STYLE = {
    CopyOutcome.COPIED: "green",
    CopyOutcome.IDENTICAL: "dim",
    CopyOutcome.CONFLICT: "yellow",
    CopyOutcome.FAILED: "red",
    CopyOutcome.IGNORED: "dim",
}


def _show_copy(result: CopyResult, dry_run: bool) -> None:
    copied = result.outcome is CopyOutcome.COPIED
    label = "would copy" if dry_run and copied else result.outcome.value
    reason = f" ({escape(result.reason)})" if result.reason and not copied else ""
    style = _OUTCOME_STYLE[result.outcome]
    console.print(f"[{style}]{label:>10}[/] {escape(result.name)}{reason}")


@app.command("migrate")
def migrate_command(
    from_url: str = typer.Option(
        ...,
        "--from",
        help=(
            "Source store URL, e.g. dir:~/.cache/hac-client or dir:./sessions; "
            "sessionkeeper where prints the default store's URL."
        ),
    ),
    to_url: str = typer.Option(
        ..., "--to", help="Destination store URL (the default's: see sessionkeeper where)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be copied."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace destination sessions that differ from the source."
    ),
    as_json: bool = JsonOutput,
) -> None:
    """Copy every HAC, ATProto (password and OAuth) session and the atproto CLI state, verified.

    Both stores are named, as a copy should be: sessionkeeper where prints the
    default store's URL, to give as --from or --to.
    """
    # One store under two spellings would wait on its own locks for every session.
    if _location(from_url) == _location(to_url):
        raise _fail("--from and --to name the same store", EXIT_USAGE, as_json)
    source = _open(from_url, must_exist=True, as_json=as_json)
    destination = _open(to_url, as_json=as_json)
    verb = "Checking" if dry_run else "Migrating"
    if not as_json:
        console.print(
            f"{verb} sessions from {escape(display_url(from_url))} to {escape(display_url(to_url))}"
        )
    try:
        report = migrate(
            source,
            destination,
            dry_run=dry_run,
            overwrite=overwrite,
            progress=None if as_json else lambda result: _show_copy(result, dry_run),
        )
    except StoreError as exc:
        raise _fail(str(exc), EXIT_FAILED, as_json) from exc
    if as_json:
        _echo_json(
            {
                "from": display_url(from_url),
                "to": display_url(to_url),
                "dry_run": dry_run,
                "counts": {outcome.value: report.count(outcome) for outcome in CopyOutcome},
                "results": [
                    {"name": r.name, "outcome": r.outcome.value, "reason": r.reason}
                    for r in report.results
                ],
            }
        )
        if not report.ok:
            raise typer.Exit(EXIT_FAILED)
        return
    table = Table(title="dry run: nothing written" if dry_run else "migration")
    for column in (
        "copied" if not dry_run else "would copy",
        "identical",
        "conflicts",
        "failed",
        "not sessions",
    ):
        table.add_column(column, justify="right")
    table.add_row(
        *(
            str(report.count(outcome))
            for outcome in (
                CopyOutcome.COPIED,
                CopyOutcome.IDENTICAL,
                CopyOutcome.CONFLICT,
                CopyOutcome.FAILED,
                CopyOutcome.IGNORED,
            )
        )
    )
    console.print(table)
    console.print(
        f"{'would copy' if dry_run else 'copied'} {report.count(CopyOutcome.COPIED)}, "
        f"skipped identical {report.count(CopyOutcome.IDENTICAL)}, "
        f"conflicts {report.count(CopyOutcome.CONFLICT)}, "
        f"failed {report.count(CopyOutcome.FAILED)}, "
        f"ignored {report.count(CopyOutcome.IGNORED)} non-session files"
    )
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


_REASON_TEXT = {
    PruneReason.HAC_IDLE: "HAC session idle",
    PruneReason.REFRESH_EXPIRED: "ATProto refresh token expired (password or OAuth)",
    PruneReason.STALE_TEMP_FILE: "stale temp file",
}


@app.command("prune")
def prune_command(
    store_url: str | None = typer.Option(None, "--store", help=f"Store URL ({_STORE_DEFAULT})."),
    idle: str = typer.Option(
        "2h", "--idle", help="Remove HAC sessions unused for longer than this (HAC's timeout)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed."),
    as_json: bool = JsonOutput,
) -> None:
    """Remove idle HAC sessions, ATProto and OAuth sessions past refresh, stale temp files."""
    idle_seconds = parse_duration(idle) if idle else HAC_IDLE_TIMEOUT
    choice = _chosen(store_url)
    url = choice.url
    store = _open_chosen(choice, url, as_json)
    try:
        report = prune(store, idle=idle_seconds, dry_run=dry_run)
    except StoreError as exc:
        raise _fail(str(exc), EXIT_FAILED, as_json) from exc
    if as_json:
        _echo_json(
            {
                "store": display_url(url),
                "dry_run": dry_run,
                "removed": [
                    {"name": r.name, "reason": r.reason.value, "detail": r.detail}
                    for r in report.removed
                ],
                "unreadable": [{"name": n, "reason": why} for n, why in report.unreadable],
                "kept": report.kept,
            }
        )
        if report.unreadable:
            raise typer.Exit(EXIT_FAILED)
        return
    verb = "would remove" if dry_run else "removed"
    for removal in report.removed:
        console.print(
            f"[yellow]{verb}[/] {escape(removal.name)}: {_REASON_TEXT[removal.reason]} "
            f"({escape(removal.detail)})"
        )
    for name, reason in report.unreadable:
        console.print(f"[red]unreadable[/] {escape(name)}: {escape(reason)}")
    counts = {reason: 0 for reason in PruneReason}
    for removal in report.removed:
        counts[removal.reason] += 1
    console.print(
        f"{verb} {len(report.removed)} "
        f"({counts[PruneReason.HAC_IDLE]} idle HAC, "
        f"{counts[PruneReason.REFRESH_EXPIRED]} expired ATProto, "
        f"{counts[PruneReason.STALE_TEMP_FILE]} temp files); kept {report.kept} sessions"
        + (" [dim](dry run: nothing removed)[/]" if dry_run else "")
    )
    if report.unreadable:
        raise typer.Exit(EXIT_FAILED)


@app.command("doctor")
def doctor_command(
    store_url: str | None = typer.Option(None, "--store", help=f"Store URL ({_STORE_DEFAULT})."),
    fix: bool = typer.Option(
        False, "--fix", help="Apply the fixes that cannot lose a session (modes, dead temp files)."
    ),
    as_json: bool = JsonOutput,
) -> None:
    """Check permissions, corrupt or encrypted entries, stale temp and lock files."""
    choice = _chosen(store_url)
    url = choice.url
    # The doctor only reads: a default directory no command has created yet is an
    # empty store, not a problem (the first login creates it).
    empty = _not_created_yet(choice)
    # A fix names --store only when this run was given one; otherwise the same
    # choice (the variable or the default) finds the store again.
    findings = [] if empty else diagnose(url, name_store=choice.source == FROM_FLAG)
    if choice.source == FROM_DEFAULT:
        findings += _old_location_findings(choice)
    fixed = repair(findings) if fix else []
    left = [f for f in findings if f not in fixed]
    problems = sum(1 for f in left if f.severity is Severity.PROBLEM)
    notes = sum(1 for f in left if f.severity is Severity.NOTE)
    if as_json:
        _echo_json(
            {
                "store": display_url(url),
                "exists": not empty,
                "findings": [
                    {
                        "severity": f.severity.value,
                        "subject": f.subject,
                        "message": f.message,
                        "fix": f.fix,
                        "fixed": f in fixed,
                    }
                    for f in findings
                ],
                "problems": problems,
                "notes": notes,
            }
        )
    else:
        for finding in findings:
            style = "red" if finding.severity is Severity.PROBLEM else "cyan"
            label = "fixed" if finding in fixed else finding.severity.value
            console.print(
                f"[{style}]{label:>7}[/] {escape(finding.subject)}: {escape(finding.message)}"
            )
            if finding not in fixed:
                console.print(f"         fix: {escape(finding.fix)}")
        summary = f"{problems} problems, {notes} notes in {escape(display_url(url))}"
        if empty and not findings:
            summary += " (no session stored yet; the first login creates it)"
        if fixed:
            summary = f"fixed {len(fixed)}; {summary}"
        console.print(summary)
        safe = [f for f in left if f.repair is not None]
        if safe and not fix:
            console.print(
                f"{len(safe)} of them can be fixed safely: "
                f"{escape(store_command('doctor', store_url))} --fix"
            )
    if has_problems(left):
        raise typer.Exit(EXIT_FAILED)


_REKEY_STYLE = {
    RekeyOutcome.REKEYED: "green",
    RekeyOutcome.CURRENT: "dim",
    RekeyOutcome.PLAIN: "dim",
    RekeyOutcome.FAILED: "red",
}

NEW_KEY_ENV = "SESSIONKEEPER_NEW_KEY"


@app.command("rekey")
def rekey_command(
    store_url: str | None = typer.Option(
        None, "--store", help=f"Store URL, with or without ?encrypt=1 ({_STORE_DEFAULT})."
    ),
    new_key_env: str = typer.Option(
        NEW_KEY_ENV, "--new-key-env", help="The variable holding the new key."
    ),
    as_json: bool = JsonOutput,
) -> None:
    """Re-encrypt every entry with a new key, in place, one entry at a time under its lock.

    The old key is the store's (SESSIONKEEPER_KEY, else the keyring's); the new
    one is read from $SESSIONKEEPER_NEW_KEY, never from the command line.
    """
    choice = _chosen(store_url)
    url = choice.url
    new_key = os.environ.get(new_key_env)
    if not new_key:
        raise _fail(
            f"no new key: set {new_key_env} (create one with: sessionkeeper store keygen)",
            EXIT_USAGE,
            as_json,
        )
    try:
        old_key = encryption_key()
    except StoreError as exc:
        raise _fail(f"no old key: {exc}", EXIT_USAGE, as_json) from exc
    inner = _open_chosen(choice, with_encryption(url, False), as_json)

    def show(result: RekeyResult) -> None:
        reason = f" ({escape(result.reason)})" if result.reason else ""
        style = _REKEY_STYLE[result.outcome]
        console.print(f"[{style}]{result.outcome.value:>8}[/] {escape(result.name)}{reason}")

    try:
        report = rekey(inner, old_key, new_key, progress=None if as_json else show)
    except (RekeyError, MissingKeyError) as exc:  # the same key twice, or a malformed one
        raise _fail(str(exc), EXIT_USAGE, as_json) from exc
    except StoreError as exc:
        raise _fail(str(exc), EXIT_FAILED, as_json) from exc
    counts = {outcome.value: report.count(outcome) for outcome in RekeyOutcome}
    if as_json:
        _echo_json(
            {
                "store": display_url(url),
                "counts": counts,
                "results": [
                    {"name": r.name, "outcome": r.outcome.value, "reason": r.reason}
                    for r in report.results
                ],
            }
        )
    else:
        console.print(", ".join(f"{n} {word}" for word, n in counts.items()))
        console.print(
            f"now give every process the new key ({KEY_ENV}); run this again after they "
            "restart to re-seal entries written with the old key meanwhile"
        )
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


@app.command("keygen")
def keygen_command(
    save: bool = typer.Option(
        False, "--save", help="Save the key in the OS keyring, where ?encrypt=1 finds it."
    ),
) -> None:
    """Print a new AES-256 key for encrypted stores (set it as SESSIONKEEPER_KEY)."""
    key = generate_key()
    if not save:
        console.print(key)
        return
    try:
        import keyring

        keyring.set_password(KEYRING_KEY_SERVICE, KEYRING_KEY_USER, key)
    except Exception as exc:  # any backend failure: say so, never print a half-saved key
        errors.print(f"[red]cannot save the key in the keyring:[/] {escape(str(exc))}")
        raise typer.Exit(EXIT_FAILED) from exc
    console.print(
        f"saved a new key in the keyring (service {KEYRING_KEY_SERVICE!r}, "
        f"user {KEYRING_KEY_USER!r}); store URLs with ?encrypt=1 use it"
    )


def main() -> None:
    """Run the ``store`` group on its own (``python -m sessionkeeper.cli.store``)."""
    app()


if __name__ == "__main__":
    main()
