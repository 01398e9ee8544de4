"""FlexibleSearch and raw SQL queries over the fake HAC's tables.

Understood: ``SELECT {a},{b} FROM {Type}``, ``SELECT * FROM {Type}``, each
with an optional ``WHERE {col}='value'`` (``AND`` of several), and for SQL
``SELECT a,b FROM table`` / ``SELECT * FROM table`` with ``WHERE col='v'``.
Anything else answers the way HAC does for a failing query: 200 with an
``exception`` object and no results.
"""

from __future__ import annotations

import re
import time
from html import escape
from typing import Any

from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.testing.fake_hac._data import HacDatabase, ItemTable

_FLEX = re.compile(
    r"\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+\{\s*(?P<type>[A-Za-z_]\w*)\s*\}"
    r"(?:\s+WHERE\s+(?P<where>.+?))?\s*;?\s*",
    re.IGNORECASE | re.DOTALL,
)
_SQL = re.compile(
    r"\s*SELECT\s+(?P<cols>.+?)\s+FROM\s+(?P<type>[A-Za-z_]\w*)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?\s*;?\s*",
    re.IGNORECASE | re.DOTALL,
)
_FLEX_COND = re.compile(r"\s*\{\s*(\w+)\s*\}\s*=\s*'((?:[^']|'')*)'\s*")
_SQL_COND = re.compile(r"\s*(\w+)\s*=\s*'((?:[^']|'')*)'\s*")
_FLEX_COL = re.compile(r"\s*\{\s*(\w+)\s*\}\s*")


class QueryError(SessionkeeperError):
    """A query the fake cannot translate or run."""


def _conditions(where: str | None, pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    if not where:
        return []
    result = []
    for part in re.split(r"\s+AND\s+", where, flags=re.IGNORECASE):
        match = pattern.fullmatch(part)
        if not match:
            raise QueryError(f"cannot parse condition: {part.strip()}")
        result.append((match.group(1), match.group(2).replace("''", "'")))
    return result


def _resolve(table: ItemTable, name: str, *, sql: bool) -> str:
    attribute = table.attribute_of_column(name) if sql else table.attribute_named(name)
    if attribute is None:
        kind = "column" if sql else "attribute"
        raise QueryError(f"unknown {kind} '{name}' for type {table.type_code}")
    return attribute


def _run(database: HacDatabase, query: str, *, sql: bool) -> tuple[list[str], list[list[str]], str]:
    match = (_SQL if sql else _FLEX).fullmatch(query)
    if not match:
        raise QueryError(f"cannot translate query: {query.strip()}")
    type_name = match.group("type")
    table = database.by_sql_table(type_name) if sql else database.by_type(type_name)
    if table is None:
        if sql:
            raise QueryError(f"Table '{type_name}' doesn't exist")
        raise QueryError(f"type code '{type_name}' invalid")
    cols = match.group("cols").strip()
    if cols == "*":
        attributes = ["pk", *table.attributes]
    else:
        attributes = []
        for col in cols.split(","):
            if sql:
                attributes.append(_resolve(table, col.strip(), sql=True))
            else:
                col_match = _FLEX_COL.fullmatch(col)
                if not col_match:
                    raise QueryError(f"cannot parse select column: {col.strip()}")
                attributes.append(_resolve(table, col_match.group(1), sql=False))
    conditions = [
        (_resolve(table, name, sql=sql), value)
        for name, value in _conditions(match.group("where"), _SQL_COND if sql else _FLEX_COND)
    ]
    headers = [table.column(a) for a in attributes]
    with database.guard:
        rows = [
            [row.get(a, "") for a in attributes]
            for row in table.rows
            if all(row.get(a) == value for a, value in conditions)
        ]
    select = ",".join(f"item_t0.{h}" for h in headers)
    # The SQL text HAC reports back; display only, never executed.
    translated = f"SELECT {select} FROM {table.table} item_t0"  # noqa: S608
    if conditions:
        translated += " WHERE " + " AND ".join(
            f"item_t0.{table.column(a)} = ?" for a, _ in conditions
        )
    return headers, rows, translated


def _exception(message: str) -> dict[str, Any]:
    full = f"de.hybris.platform.jalo.flexiblesearch.FlexibleSearchException: {message}"
    frames = [
        ("de.hybris.platform.jalo.flexiblesearch.FlexibleSearch", "search", 1463),
        ("de.hybris.platform.hac.facade.impl.DefaultFlexibleSearchFacade", "executeQuery", 112),
        ("de.hybris.platform.hac.controller.FlexibleSearchController", "execute", 74),
    ]
    return {
        "message": full,
        "localizedMessage": full,
        "stackTrace": [
            {
                "className": cls,
                "methodName": method,
                "fileName": cls.rsplit(".", 1)[1] + ".java",
                "lineNumber": line,
                "nativeMethod": False,
            }
            for cls, method, line in frames
        ],
        "cause": None,
        "suppressed": [],
    }


def execute_query(
    database: HacDatabase,
    *,
    flexible_query: str | None,
    sql_query: str | None,
    max_count: int,
    data_source: str,
) -> dict[str, Any]:
    """Run one FlexibleSearch (or SQL) request and return HAC's JSON answer."""
    started = time.perf_counter()
    sql = not flexible_query and bool(sql_query)
    query = (sql_query if sql else flexible_query) or ""
    answer: dict[str, Any] = {
        "query": query,
        "executionTime": 0,
        "resultCount": 0,
        "exception": None,
        "resultList": [],
        "headers": [],
        "rawExecution": sql,
        "dataSourceId": data_source,
        "exceptionStackTrace": None,
        "parametersAsString": "",
        "catalogVersionsAsString": "",
    }
    try:
        headers, rows, translated = _run(database, query, sql=sql)
    except QueryError as exc:
        answer["exception"] = _exception(str(exc))
        answer["exceptionStackTrace"] = "\n".join(
            [answer["exception"]["message"]]
            + [
                f"\tat {f['className']}.{f['methodName']}({f['fileName']}:{f['lineNumber']})"
                for f in answer["exception"]["stackTrace"]
            ]
        )
    else:
        limited = rows[: max(max_count, 0)]
        answer.update(
            query=translated if not sql else query,
            headers=headers,
            resultList=[[escape(cell) for cell in row] for row in limited],
            resultCount=len(limited),
        )
    answer["executionTime"] = int((time.perf_counter() - started) * 1000)
    return answer
