"""``sessionkeeper store``: migrate sessions between stores, prune dead ones, check a store."""

from __future__ import annotations

import os
import re
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sessionkeeper.maintenance.doctor import Severity, diagnose, display_url, has_problems
from sessionkeeper.maintenance.migrate import CopyOutcome, CopyResult, migrate
from sessionkeeper.maintenance.prune import HAC_IDLE_TIMEOUT, PruneReason, prune
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.encrypted import generate_key
from sessionkeeper.stores.errors import StoreError
from sessionkeeper.stores.url import (
    KEYRING_KEY_SERVICE,
    KEYRING_KEY_USER,
    STORE_ENV,
    StoreUrlError,
    open_store,
    parse_store_url,
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

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str) -> float:
    """Parse ``90``, ``30s``, ``45m``, ``2h``, ``1.5d`` into seconds."""
    match = _DURATION.match(text.lower())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 30m, 2h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _fail(message: str, code: int) -> typer.Exit:
    errors.print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(code)


def _chosen_url(url: str | None) -> str:
    chosen = url or os.environ.get(STORE_ENV)
    if not chosen:
        raise _fail(f"no store given: pass --store URL or set {STORE_ENV}", EXIT_USAGE)
    return chosen


def _location(url: str) -> str:
    """Where a store URL keeps its data, so two spellings of one store compare equal.

    ``?encrypt=1`` wraps the same data; file stores are compared by resolved path.
    """
    parts = parse_store_url(url)
    if parts.path is not None:
        kind = "sqlite" if parts.scheme == "sqlite" else "dir"
        return f"{kind}:{parts.path.resolve()}"
    return f"{parts.scheme}:{parts.body}?{urlencode(sorted(parts.params.items()))}"


def _open(url: str, *, must_exist: bool = False) -> Store:
    path = parse_store_url(url).path
    if must_exist and path is not None and not path.exists():
        raise _fail(f"{path} does not exist; nothing to read from", EXIT_FAILED)
    try:
        return open_store(url)
    except StoreUrlError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    except (StoreError, OSError) as exc:  # OSError: e.g. a dir: path that is a file
        raise _fail(f"cannot open {display_url(url)}: {exc}", EXIT_FAILED) from exc


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
        ..., "--from", help="Source store URL, e.g. dir:~/.cache/hac-client or dir:./sessions."
    ),
    to_url: str = typer.Option(..., "--to", help="Destination store URL."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be copied."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace destination sessions that differ from the source."
    ),
) -> None:
    """Copy every HAC, ATProto (password and OAuth) session and the atproto CLI state, verified."""
    # One store under two spellings would wait on its own locks for every session.
    if _location(from_url) == _location(to_url):
        raise _fail("--from and --to name the same store", EXIT_USAGE)
    source = _open(from_url, must_exist=True)
    destination = _open(to_url)
    verb = "Checking" if dry_run else "Migrating"
    console.print(
        f"{verb} sessions from {escape(display_url(from_url))} to {escape(display_url(to_url))}"
    )
    try:
        report = migrate(
            source,
            destination,
            dry_run=dry_run,
            overwrite=overwrite,
            progress=lambda result: _show_copy(result, dry_run),
        )
    except StoreError as exc:
        raise _fail(str(exc), EXIT_FAILED) from exc
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
    store_url: str | None = typer.Option(
        None, "--store", help=f"Store URL (default: ${STORE_ENV})."
    ),
    idle: str = typer.Option(
        "2h", "--idle", help="Remove HAC sessions unused for longer than this (HAC's timeout)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be removed."),
) -> None:
    """Remove idle HAC sessions, ATProto and OAuth sessions past refresh, stale temp files."""
    idle_seconds = parse_duration(idle) if idle else HAC_IDLE_TIMEOUT
    url = _chosen_url(store_url)
    store = _open(url, must_exist=True)
    try:
        report = prune(store, idle=idle_seconds, dry_run=dry_run)
    except StoreError as exc:
        raise _fail(str(exc), EXIT_FAILED) from exc
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
    store_url: str | None = typer.Option(
        None, "--store", help=f"Store URL (default: ${STORE_ENV})."
    ),
) -> None:
    """Check permissions, corrupt files, stale temp and lock files; exit 1 on problems."""
    url = _chosen_url(store_url)
    findings = diagnose(url)
    for finding in findings:
        style = "red" if finding.severity is Severity.PROBLEM else "cyan"
        console.print(
            f"[{style}]{finding.severity.value:>7}[/] {escape(finding.subject)}: "
            f"{escape(finding.message)}"
        )
        console.print(f"         fix: {escape(finding.fix)}")
    problems = sum(1 for f in findings if f.severity is Severity.PROBLEM)
    notes = len(findings) - problems
    console.print(f"{problems} problems, {notes} notes in {escape(display_url(url))}")
    if has_problems(findings):
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
