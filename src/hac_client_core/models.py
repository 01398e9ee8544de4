"""``hac_client_core.models`` of the original library: result models."""

from sessionkeeper.hac.models import (
    FlexibleSearchResult,
    GroovyScriptResult,
    ImpexResult,
    ProjectData,
    SessionInfo,
    UpdateData,
    UpdateLog,
    UpdateParameter,
    UpdateResult,
)

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
]
