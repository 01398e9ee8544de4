"""``hac_client_core.client`` of the original library: the client, its errors, and the
names the original module imported (scripts sometimes import them from here)."""

from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
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
from sessionkeeper.hac.session import SessionManager

__all__ = [
    "AuthHandler",
    "FlexibleSearchResult",
    "GroovyScriptResult",
    "HacAuthenticationError",
    "HacClient",
    "HacClientError",
    "ImpexResult",
    "ProjectData",
    "SessionInfo",
    "SessionManager",
    "UpdateData",
    "UpdateLog",
    "UpdateParameter",
    "UpdateResult",
]
