"""Check a store for what would leak or break sessions, and say how to fix each thing.

A directory store is inspected on the file system *before* anything opens it
(opening a ``DirectoryStore`` tightens modes, which would hide the finding)
and without writing anything: permissions (directory 0700, files 0600),
symlinks, corrupt or foreign files, temp files of dead writers, and lock
files that no session and no process use. Other stores are checked through
the Store protocol: reachable, every session readable and well-formed.

An encrypted entry is never called corrupt: read without a key it is named
as encrypted, read with another key as sealed by a different key, each with
the option or variable that opens it. `repair` applies only the fixes
that cannot lose a readable session (modes, temp files of dead writers).
"""

from __future__ import annotations

import enum
import os
import shlex
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from sessionkeeper.maintenance.formats import FormatError, format_of, is_lock_name
from sessionkeeper.maintenance.prune import HAC_IDLE_TIMEOUT, prune_verdict
from sessionkeeper.stores.base import MAX_VALUE_BYTES, Store
from sessionkeeper.stores.directory import (
    LOCK_SUFFIX,
    STALE_TEMP_SECONDS,
    TEMP_SUFFIX,
    DirectoryStore,
)
from sessionkeeper.stores.encrypted import KEY_ENV, MAGIC
from sessionkeeper.stores.errors import DecryptionError, MissingKeyError, StoreError
from sessionkeeper.stores.files import read_regular_file
from sessionkeeper.stores.locking import flock_is_held
from sessionkeeper.stores.url import open_store, parse_store_url, redact_url, with_encryption


class Severity(enum.Enum):
    """A problem makes ``doctor`` fail; a note is information with advice."""

    PROBLEM = "problem"
    NOTE = "note"


@dataclass(frozen=True)
class Repair:
    """A fix ``doctor --fix`` may apply: set a file's mode, or remove a dead writer's temp file."""

    path: Path
    mode: int | None = None  #: the mode to set; ``None`` removes the (temp) file


@dataclass(frozen=True)
class Finding:
    """One thing the doctor found: what, where, and the fix."""

    severity: Severity
    subject: str
    message: str
    fix: str
    repair: Repair | None = None  #: set when the fix cannot lose a readable session


def _problem(subject: str, message: str, fix: str, repair: Repair | None = None) -> Finding:
    return Finding(Severity.PROBLEM, subject, message, fix, repair)


def _note(subject: str, message: str, fix: str) -> Finding:
    return Finding(Severity.NOTE, subject, message, fix)


def store_command(subcommand: str, url: str | None) -> str:
    """``sessionkeeper store SUBCOMMAND --store URL`` (password hidden), to paste as a fix."""
    words = ["sessionkeeper", "store", subcommand]
    if url:
        words += ["--store", redact_url(url)]
    return " ".join(shlex.quote(w) for w in words)


def _encrypted_url(url: str | None, where: Path) -> str:
    return with_encryption(url or f"dir:{where}", True)


def _content_findings(
    name: str, data: bytes, where: str, now: float, url: str | None, named: str | None
) -> list[Finding]:
    # ``url`` is the store's own (an encrypted entry's fix adds ?encrypt=1 to it, so
    # it must be named); ``named`` is what the other fixes pass as --store, if anything.
    session_format = format_of(name)
    if session_format is None:
        return [_note(where, "is not a session file; sessionkeeper ignores it", "none needed")]
    if data.startswith(MAGIC):
        # Sealed by EncryptedStore: only the key can tell whether it is sound.
        encrypted = _encrypted_url(url, Path(where).parent)
        return [
            _note(
                where,
                "is encrypted (sessionkeeper's AES-GCM format); its content was not checked",
                f"{KEY_ENV}=<key> {store_command('doctor', encrypted)} (or the keyring's key)",
            )
        ]
    try:
        session_format.load(name, data)
    except FormatError as exc:
        return [
            _problem(
                where,
                f"is a corrupt {session_format.label}: {exc}",
                "remove it; the next login writes a fresh session",
            )
        ]
    verdict = prune_verdict(name, data, idle=HAC_IDLE_TIMEOUT, now=now)
    if verdict is not None:
        return [_note(where, f"is a dead session ({verdict[1]})", store_command("prune", named))]
    return []


def diagnose_directory(
    path: Path, *, contents: bool = True, url: str | None = None
) -> list[Finding]:
    """Inspect a directory store on disk, read-only; ``url`` is what fixes name as its store."""
    findings: list[Finding] = []
    if not path.exists():
        return [_problem(str(path), "does not exist", "check the path (or log in once)")]
    if not path.is_dir():
        return [_problem(str(path), "is not a directory", "point the store at a directory")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        findings.append(
            _problem(
                str(path),
                f"directory is mode {mode:04o}; other users can list the sessions",
                f"chmod 700 {shlex.quote(str(path))}",
                Repair(path, 0o700),
            )
        )
    now = time.time()
    with os.scandir(path) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    names = {e.name for e in entries if not e.name.startswith(".")}
    for entry in entries:
        where = str(Path(entry.path))
        try:
            info = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # renamed or removed by a writer since the listing
        if entry.name.startswith("."):
            findings += _hidden_findings(entry.name, Path(entry.path), info, names, now, url)
            continue
        if stat.S_ISLNK(info.st_mode):
            findings.append(
                _problem(
                    where,
                    "is a symlink; stores never follow links",
                    f"replace it with the file it points to, or rm {where}",
                )
            )
            continue
        if not stat.S_ISREG(info.st_mode):
            findings.append(_note(where, "is not a regular file", "move it out of the store"))
            continue
        file_mode = stat.S_IMODE(info.st_mode)
        if file_mode & 0o077:
            findings.append(
                _problem(
                    where,
                    f"is mode {file_mode:04o}; other users can read its tokens",
                    f"chmod 600 {shlex.quote(where)}",
                    Repair(Path(entry.path), 0o600),
                )
            )
        if contents:
            if info.st_size > MAX_VALUE_BYTES:
                findings.append(
                    _problem(where, f"is {info.st_size} bytes; no session is", f"rm {where}")
                )
                continue
            try:
                # Non-blocking and no-follow: the file may have become a FIFO or a link.
                data = read_regular_file(entry.path, None, Path(entry.path), tighten=False)
            except (StoreError, OSError) as exc:
                findings.append(_problem(where, f"cannot be read ({exc})", "check it"))
                continue
            if data is None:
                continue  # removed since the listing: nothing left to check
            findings += _content_findings(entry.name, data, where, now, url, url)
    return findings


def _hidden_findings(
    name: str, path: Path, info: os.stat_result, names: set[str], now: float, url: str | None
) -> list[Finding]:
    where = str(path)
    if name.endswith(TEMP_SUFFIX):
        if _stale_temp(path, info, now):
            return [
                _problem(
                    where,
                    "is a temp file left by a writer that died",
                    f"{store_command('prune', url)} (removes it)",
                    Repair(path),
                )
            ]
        return []
    if name.endswith(LOCK_SUFFIX):
        owner = name[1 : -len(LOCK_SUFFIX)]
        if owner not in names and not is_lock_name(owner) and not flock_is_held(path):
            return [
                _note(
                    where,
                    f"is the lock file of {owner!r}, which no longer exists; nothing holds it",
                    f"harmless; rm {where} when no sessionkeeper process runs",
                )
            ]
    return []


def _stale_temp(path: Path, info: os.stat_result, now: float) -> bool:
    return now - info.st_mtime >= STALE_TEMP_SECONDS and not DirectoryStore.temp_file_in_use(path)


def diagnose_store(
    store: Store, url: str | None = None, *, name_store: bool = True
) -> list[Finding]:
    """Check every session of ``store`` through the Store protocol (``url``: see `diagnose`)."""
    named = url if name_store else None
    findings: list[Finding] = []
    try:
        names = store.names()
    except StoreError as exc:
        return [_problem(repr(store), f"cannot be listed: {exc}", "check the store URL")]
    now = time.time()
    for name in names:
        try:
            data = store.get(name)
        except DecryptionError as exc:
            findings.append(
                _problem(
                    name,
                    f"cannot be decrypted with this key ({exc})",
                    f"set {KEY_ENV} to the key it was written with (unset, the keyring's key "
                    "is used); keep the entry: it is intact without the right key",
                )
            )
            continue
        except (StoreError, OSError) as exc:
            findings.append(
                _problem(
                    name,
                    f"cannot be read: {type(exc).__name__}: {exc}",
                    "check the key or remove it",
                )
            )
            continue
        if data is not None:
            findings += _content_findings(name, data, name, now, url, named)
    return findings


def _sqlite_file_findings(path: Path) -> list[Finding]:
    if not path.exists():
        return [_problem(str(path), "does not exist", "check the path")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [
            _problem(str(path), f"is mode {mode:04o}; other users can read it", f"chmod 600 {path}")
        ]
    return []


def diagnose(url: str, *, name_store: bool = True) -> list[Finding]:
    """Check the store a URL names (see `sessionkeeper.stores.url.open_store`).

    The fixes name ``--store URL`` unless ``name_store`` is false: for a store
    found without the option (the variable or the default), which the fix's
    command finds the same way.
    """
    parts = parse_store_url(url)
    path = parts.path
    named = url if name_store else None
    if path is not None and parts.scheme != "sqlite":
        findings = diagnose_directory(path, contents=not parts.encrypt, url=named)
        if parts.encrypt and path.is_dir():
            findings += _via_store(url, name_store)
        return findings
    if path is not None:
        findings = _sqlite_file_findings(path)
        if path.exists():
            findings += _via_store(url, name_store)
        return findings
    return _via_store(url, name_store)


def _via_store(url: str, name_store: bool) -> list[Finding]:
    try:
        store = open_store(url)
    except MissingKeyError as exc:
        fix = f"set {KEY_ENV} (or save a key: sessionkeeper store keygen --save), then rerun"
        return [_problem(display_url(url), f"cannot be opened: {exc}", fix)]
    except (StoreError, OSError) as exc:
        return [_problem(display_url(url), f"cannot be opened: {exc}", "check the store URL")]
    return diagnose_store(store, url, name_store=name_store)


def display_url(url: str) -> str:
    """A store URL without its query and with any password hidden."""
    return redact_url(url.split("?", 1)[0])


def repair(findings: list[Finding]) -> list[Finding]:
    """Apply every finding's safe repair; return the findings that were fixed.

    Each is checked again just before it is applied: a temp file is removed
    only if it is still stale and no writer holds it.
    """
    fixed: list[Finding] = []
    for finding in findings:
        action = finding.repair
        if action is None:
            continue
        try:
            info = action.path.lstat()
            if action.mode is not None:
                if stat.S_ISLNK(info.st_mode):
                    continue  # never chmod through a link
                action.path.chmod(action.mode)
            elif stat.S_ISREG(info.st_mode) and _stale_temp(action.path, info, time.time()):
                action.path.unlink()
            else:
                continue
        except FileNotFoundError:
            continue  # gone meanwhile: nothing left to fix
        fixed.append(finding)
    return fixed


def has_problems(findings: list[Finding]) -> bool:
    """Whether any finding is a problem (not just a note)."""
    return any(f.severity is Severity.PROBLEM for f in findings)


__all__ = [
    "Finding",
    "Repair",
    "Severity",
    "diagnose",
    "diagnose_directory",
    "diagnose_store",
    "display_url",
    "has_problems",
    "repair",
    "store_command",
]
