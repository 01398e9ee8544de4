"""HAC console operations without I/O: the forms and payloads to send, the answers to read."""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from sessionkeeper.hac.errors import HacClientError
from sessionkeeper.hac.models import (
    FlexibleSearchResult,
    GroovyScriptResult,
    ProjectData,
    UpdateData,
    UpdateParameter,
)

if TYPE_CHECKING:
    import httpx

SCRIPT_TYPES = ("groovy", "beanshell", "javascript")
VALIDATION_MODES = {
    "import_strict": "IMPORT_STRICT",
    "import_relaxed": "IMPORT_RELAXED",
    "strict": "IMPORT_STRICT",
    "relaxed": "IMPORT_RELAXED",
}


def json_object(response: httpx.Response, operation: str) -> dict[str, Any]:
    """The JSON object HAC answered, or a `HacClientError` saying what came instead."""
    try:
        body = response.json()
    except ValueError:
        raise HacClientError(
            f"{operation}: HAC answered with something that is not JSON "
            f"(HTTP {response.status_code}, {response.headers.get('content-type', '?')})"
        ) from None
    if not isinstance(body, dict):
        raise HacClientError(f"{operation}: HAC answered JSON that is not an object")
    return body


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _answer_reader(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn a reader's failure on JSON of an unexpected shape into a `HacClientError`."""

    def decorate(read: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(read)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return read(*args, **kwargs)
            except (AttributeError, TypeError, ValueError, KeyError) as exc:
                raise HacClientError(
                    f"{what}: HAC answered JSON of an unexpected shape ({type(exc).__name__})"
                ) from exc

        return guarded

    return decorate


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


# -- Groovy ---------------------------------------------------------------------------


def groovy_form(script: str, commit: bool, script_type: str) -> dict[str, str]:
    """The scripting console's form; ``ValueError`` for an unknown script type."""
    if script_type not in SCRIPT_TYPES:
        raise ValueError(f"script type {script_type!r} is not one of {', '.join(SCRIPT_TYPES)}")
    return {"script": script, "scriptType": script_type, "commit": "true" if commit else "false"}


@_answer_reader("Groovy script")
def groovy_result(body: Mapping[str, Any], commit: bool) -> GroovyScriptResult:
    """Read ``{outputText, executionResult, stacktraceText}``."""
    stacktrace = body.get("stacktraceText")
    return GroovyScriptResult(
        output_text=str(body.get("outputText") or ""),
        execution_result=str(body.get("executionResult") or ""),
        stacktrace_text=None if stacktrace is None else str(stacktrace),
        commit_mode=commit,
        execution_time_ms=_int_or_none(body.get("executionTime")),
    )


# -- FlexibleSearch -----------------------------------------------------------------------


def flexsearch_form(
    query: str, max_count: int, locale: str, user: str | None, data_source: str, raw_sql: bool
) -> dict[str, str]:
    """The FlexibleSearch console's form (``sqlQuery`` for raw SQL); never commits."""
    form = {
        "sqlQuery" if raw_sql else "flexibleSearchQuery": query,
        "maxCount": str(max_count),
        "locale": locale,
        "dataSource": data_source,
        "commit": "false",
    }
    if user is not None:
        form["user"] = user
    return form


def _exception_message(value: object) -> str | None:
    """FlexibleSearch's ``exception`` is an object ``{message, ...}``; keep its message."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        for key in ("message", "localizedMessage"):
            text = value.get(key)
            if isinstance(text, str) and text:
                return text
        return "FlexibleSearch query failed (HAC gave no message)"
    return str(value)


def _cell(value: object) -> str:
    # HAC HTML-escapes every cell of resultList.
    if value is None:
        return ""
    return html.unescape(value) if isinstance(value, str) else str(value)


@_answer_reader("FlexibleSearch query")
def flexsearch_result(body: Mapping[str, Any]) -> FlexibleSearchResult:
    """Read the query answer: unescaped rows, and the exception's message if any."""
    rows = [
        [_cell(cell) for cell in row] if isinstance(row, list) else [_cell(row)]
        for row in body.get("resultList") or []
    ]
    count = _int_or_none(body.get("resultCount"))
    return FlexibleSearchResult(
        headers=[str(header) for header in body.get("headers") or []],
        rows=rows,
        result_count=len(rows) if count is None else count,
        execution_time_ms=_int_or_none(body.get("executionTime")),
        exception=_exception_message(body.get("exception")),
    )


# -- Impex ------------------------------------------------------------------------------


def validation_enum(mode: str) -> str:
    """``import_strict``/``strict`` → ``IMPORT_STRICT`` etc.; ``ValueError`` for others."""
    try:
        return VALIDATION_MODES[mode.strip().lower()]
    except KeyError:
        raise ValueError(
            f"validation mode {mode!r} is not one of {', '.join(VALIDATION_MODES)}"
        ) from None


def impex_form(
    content: str,
    validation_mode: str,
    *,
    enable_code_execution: bool,
    legacy_mode: bool,
    max_threads: int,
) -> dict[str, str]:
    """The Impex import form, with Spring's checkbox convention done right."""
    if max_threads < 1:
        raise ValueError(f"max_threads must be at least 1, not {max_threads}")
    form = {
        "scriptContent": content,
        "validationEnum": validation_enum(validation_mode),
        "encoding": "UTF-8",
        "maxThreads": str(max_threads),
        # "_name=on" says the checkbox was on the form; the value itself is only
        # sent when ticked, and absent means false.
        "_legacyMode": "on",
        "_enableCodeExecution": "on",
    }
    if legacy_mode:
        form["legacyMode"] = "true"
    if enable_code_execution:
        form["enableCodeExecution"] = "true"
    return form


# -- System update ------------------------------------------------------------------------


@_answer_reader("update data")
def update_data(body: Mapping[str, Any]) -> UpdateData:
    """Read ``{isInitializing, projectDatas: [{name, description, parameter: [...]}]}``."""
    project_datas = []
    for pd in body.get("projectDatas") or []:
        parameters = [
            UpdateParameter(
                name=str(p.get("name", "")),
                label=str(p.get("label") or p.get("name", "")),
                values=dict(p.get("values") or {}),
                legacy=bool(p.get("legacy", False)),
                multi_select=bool(p.get("multiSelect", False)),
                default=p.get("default"),
            )
            for p in pd.get("parameter") or []
        ]
        project_datas.append(
            ProjectData(
                name=str(pd.get("name", "")),
                description=pd.get("description"),
                parameters=parameters,
            )
        )
    return UpdateData(
        is_initializing=bool(body.get("isInitializing", False)), project_datas=project_datas
    )


@_answer_reader("pending patches")
def pending_patches(body: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Read ``{category: [{hash, name, required, ...}]}``."""
    return {str(k): list(v) for k, v in body.items() if isinstance(v, list)}


@_answer_reader("pending patches")
def required_patch_hashes(patches: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
    """The hashes of required pending patches, per category (what an update must include)."""
    required: dict[str, list[str]] = {}
    for category, patch_list in patches.items():
        hashes = [str(p["hash"]) for p in patch_list if p.get("required") and "hash" in p]
        if hashes:
            required[category] = hashes
    return required


def update_payload(
    *,
    parameters: Mapping[str, Any],
    pending: Mapping[str, list[str]],
    drop_tables: bool,
    clear_hmc: bool,
    create_essential_data: bool,
    create_project_data: bool,
    localize_types: bool,
) -> dict[str, Any]:
    """The JSON of ``/platform/init/execute``; ``initMethod`` is ``"UPDATE"``.

    With ``initMethod: null`` HAC silently skips the schema DDL of the update.
    """
    return {
        "dropTables": drop_tables,
        "clearHMC": clear_hmc,
        "createEssentialData": create_essential_data,
        "createProjectData": create_project_data,
        "localizeTypes": localize_types,
        "initMethod": "UPDATE",
        "allParameters": dict(parameters),
        "patches": dict(pending),
        "parametersAsStringMap": {
            "initmethod": ["update"],
            **{k: v if isinstance(v, list) else [v] for k, v in parameters.items()},
        },
    }


__all__ = [
    "SCRIPT_TYPES",
    "VALIDATION_MODES",
    "flexsearch_form",
    "flexsearch_result",
    "groovy_form",
    "groovy_result",
    "impex_form",
    "json_object",
    "pending_patches",
    "required_patch_hashes",
    "update_data",
    "update_payload",
    "validation_enum",
]
