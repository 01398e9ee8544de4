"""Impex import and validation against the fake HAC's tables.

A header is ``MODE Type;attr[modifiers];...`` with MODE one of ``INSERT``,
``INSERT_UPDATE``, ``UPDATE``, ``REMOVE``; data lines start with ``;``;
``$macro=...`` and ``#`` comments are accepted; ``#%...`` lines are code
(BeanShell, or Groovy with ``#%groovy%``) and need code execution enabled.
Rows of types that have a table (Product, User, Language) are stored, so a
later FlexibleSearch sees them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sessionkeeper.testing.fake_hac._data import HacDatabase, ItemTable

logger = logging.getLogger(__name__)

VALIDATION_MODES = frozenset({"IMPORT_STRICT", "IMPORT_RELAXED"})
_HEADER = re.compile(r"(INSERT_UPDATE|INSERT|UPDATE|REMOVE)\s+([A-Za-z_]\w*)\s*(;.*)?", re.I)
_MACRO = re.compile(r"\$[\w-]+\s*=.*")


@dataclass(frozen=True)
class ImpexFlags:
    """The effective form flags of one Impex request."""

    validation_mode: str
    encoding: str
    max_threads: int
    legacy_mode: bool
    enable_code_execution: bool


@dataclass(frozen=True)
class ImpexProblem:
    """One unresolved line: its number, its text and why."""

    line_number: int
    line: str
    reason: str

    def render(self) -> str:
        """The line as HAC lists it among the unresolved lines."""
        return f"line {self.line_number}: {self.line} -> {self.reason}"


@dataclass
class _Header:
    mode: str
    table: ItemTable | None
    attributes: list[str | None]  # None for a column the fake ignores


def _parse_header(
    match: re.Match[str], database: HacDatabase, strict: bool
) -> tuple[_Header | None, str | None]:
    mode = match.group(1).upper()
    type_code = match.group(2)
    if not database.is_known_type(type_code):
        return None, f"unknown type '{type_code}'"
    table = database.by_type(type_code)
    attributes: list[str | None] = []
    for raw_column in (match.group(3) or "").split(";")[1:]:
        name = re.sub(r"\[.*?\]", "", raw_column).strip()
        name = name.split("(", 1)[0].strip()
        if not name:
            attributes.append(None)
            continue
        if table is None:
            attributes.append(None)
            continue
        attribute = table.attribute_named(name)
        if attribute is None and strict:
            return None, f"unknown attribute '{name}' for type {table.type_code}"
        attributes.append(attribute)
    return _Header(mode, table, attributes), None


def _apply(header: _Header, values: list[str], database: HacDatabase) -> str | None:
    table = header.table
    if table is None:
        return None
    row = {
        attribute: value.strip()
        for attribute, value in zip(header.attributes, values, strict=False)
        if attribute is not None and attribute != "pk"
    }
    key = row.get(table.unique)
    if not key:
        return f"missing unique attribute '{table.unique}'"
    with database.guard:
        existing = next((r for r in table.rows if r.get(table.unique) == key), None)
        if header.mode == "REMOVE":
            if existing is not None:
                table.rows.remove(existing)
        elif header.mode == "INSERT":
            if existing is not None:
                return f"item with {table.unique}='{key}' already exists"
            table.add(row)
        elif header.mode == "UPDATE":
            if existing is None:
                return f"no item with {table.unique}='{key}' to update"
            existing.update(row)
        elif existing is None:
            table.add(row)
        else:
            existing.update(row)
    return None


def run_impex(
    script: str, flags: ImpexFlags, database: HacDatabase, *, apply: bool
) -> list[ImpexProblem]:
    """Check (and with ``apply`` import) ``script``; return the unresolved lines."""
    strict = flags.validation_mode == "IMPORT_STRICT"
    problems: list[ImpexProblem] = []
    header: _Header | None = None
    header_failed = False
    for number, raw_line in enumerate(script.splitlines(), start=1):
        line = raw_line.strip()
        if not line:
            continue
        if line.startswith("#%"):
            if not flags.enable_code_execution:
                problems.append(ImpexProblem(number, line, "code execution is disabled"))
            continue
        if line.startswith("#") or _MACRO.fullmatch(line):
            continue
        header_match = _HEADER.fullmatch(line)
        if header_match:
            header, reason = _parse_header(header_match, database, strict)
            header_failed = header is None
            if reason is not None:
                problems.append(ImpexProblem(number, line, reason))
            continue
        if not line.startswith(";"):
            problems.append(ImpexProblem(number, line, "cannot parse line"))
            continue
        if header is None:
            if not header_failed:
                problems.append(ImpexProblem(number, line, "data line without a header"))
            else:
                problems.append(ImpexProblem(number, line, "header could not be resolved"))
            continue
        if apply:
            reason = _apply(header, line.split(";")[1:], database)
            if reason is not None:
                problems.append(ImpexProblem(number, line, reason))
    logger.debug("impex: %d unresolved lines (apply=%s)", len(problems), apply)
    return problems
