"""Result models of HAC operations: plain dataclasses, field for field the originals."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from sessionkeeper.redaction import redact_secret

_TAG = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n{3,}")


def secret_prefix(value: str | None) -> str:
    """Show at most the first 6 characters of a secret, for reprs and logs."""
    return repr(value) if not value else f"'{redact_secret(value)}'"


def html_to_text(html_content: str) -> str:
    """Turn HAC's HTML log output into plain text (``<br>`` become newlines)."""
    text = html_content.replace("<br/>", "\n").replace("<br>", "\n")
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


@dataclass
class GroovyScriptResult:
    """What a Groovy (or other console) script printed and returned."""

    output_text: str
    execution_result: str
    stacktrace_text: str | None = None
    commit_mode: bool = False
    execution_time_ms: int | None = None

    @property
    def success(self) -> bool:
        """True when the script raised nothing (empty stacktrace)."""
        return self.stacktrace_text is None or not self.stacktrace_text.strip()


@dataclass
class FlexibleSearchResult:
    """Rows of a FlexibleSearch or SQL query, or the message of its exception."""

    headers: list[str]
    rows: list[list[str]]
    result_count: int
    execution_time_ms: int | None = None
    exception: str | None = None

    @property
    def success(self) -> bool:
        """True when the query raised nothing."""
        return self.exception is None


@dataclass
class ImpexResult:
    """Outcome of an Impex import or validation."""

    success: bool
    output: str
    error: str | None = None
    validation_errors: list[str] | None = None

    def __post_init__(self) -> None:
        if self.validation_errors is None:
            self.validation_errors = []


@dataclass
class SessionInfo:
    """The live HAC session of a client; its repr shows only prefixes of the secrets."""

    session_id: str
    csrf_token: str
    route_cookie: str | None = None
    is_authenticated: bool = False

    def __repr__(self) -> str:
        return (
            f"SessionInfo(session_id={secret_prefix(self.session_id)}, "
            f"csrf_token={secret_prefix(self.csrf_token)}, route_cookie={self.route_cookie!r}, "
            f"is_authenticated={self.is_authenticated!r})"
        )


@dataclass
class UpdateParameter:
    """One parameter of a project data extension (e.g. a patch switch)."""

    name: str
    label: str
    values: dict[str, bool]
    legacy: bool = False
    multi_select: bool = False
    default: str | None = None

    @property
    def selected_value(self) -> str | None:
        """The first value marked selected, if any."""
        for value, selected in self.values.items():
            if selected:
                return value
        return None

    @property
    def available_values(self) -> list[str]:
        """Every value the parameter offers."""
        return list(self.values)


@dataclass
class ProjectData:
    """A project data extension shown on the update page."""

    name: str
    description: str | None
    parameters: list[UpdateParameter]

    @property
    def has_parameters(self) -> bool:
        """True when the extension has configurable parameters."""
        return bool(self.parameters)


@dataclass
class UpdateData:
    """What the system update page offers."""

    is_initializing: bool
    project_datas: list[ProjectData]

    @property
    def extensions_with_parameters(self) -> list[ProjectData]:
        """Extensions that have configurable parameters."""
        return [pd for pd in self.project_datas if pd.has_parameters]

    def get_extension(self, name: str) -> ProjectData | None:
        """The extension called ``name``, if present."""
        for pd in self.project_datas:
            if pd.name == name:
                return pd
        return None

    def get_patches_extension(self) -> ProjectData | None:
        """The project's patches extension (e.g. ``cchpatches``), if any.

        Preference: a ``*patches`` extension with parameters, project-specific
        names over plain ``patches``; then any ``*patches``; then any match.
        """
        candidates = [pd for pd in self.project_datas if "patches" in pd.name.lower()]
        if not candidates:
            return None
        with_params = [pd for pd in candidates if pd.has_parameters]
        if with_params:
            specific = [pd for pd in with_params if pd.name.lower() != "patches"]
            return specific[0] if specific else with_params[0]
        specific = [
            pd
            for pd in candidates
            if pd.name.lower().endswith("patches") and pd.name.lower() != "patches"
        ]
        return specific[0] if specific else candidates[0]


@dataclass
class UpdateResult:
    """Answer of a system update run."""

    success: bool
    log_html: str

    @property
    def log_text(self) -> str:
        """The log as plain text."""
        return html_to_text(self.log_html)

    @property
    def is_finished(self) -> bool:
        """True when the log says the run finished."""
        return "finished" in self.log_html.lower()


@dataclass
class UpdateLog:
    """The update/initialization log, polled while an update runs."""

    log_html: str

    @property
    def log_text(self) -> str:
        """The log as plain text."""
        return html_to_text(self.log_html)

    @property
    def is_complete(self) -> bool:
        """True when the log reports the end of the run."""
        text = self.log_text.lower()
        return any(
            marker in text
            for marker in (
                "update finished",
                "initialization finished",
                "completed successfully",
                "update completed",
            )
        )

    @property
    def has_errors(self) -> bool:
        """True when the log mentions an error, exception or failure."""
        text = self.log_text.lower()
        return "error" in text or "exception" in text or "failed" in text


__all__ = [
    "FlexibleSearchResult",
    "GroovyScriptResult",
    "ImpexResult",
    "ProjectData",
    "SessionInfo",
    "UpdateData",
    "UpdateLog",
    "UpdateParameter",
    "UpdateResult",
    "html_to_text",
]
