"""SAP Commerce HAC: persisted cookie + CSRF sessions and an HTTP client."""

from sessionkeeper.hac.auth import AuthHandler, BasicAuthHandler
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
from sessionkeeper.hac.session import SessionManager, SessionMetadata

__all__ = [
    "AuthHandler",
    "BasicAuthHandler",
    "FlexibleSearchResult",
    "GroovyScriptResult",
    "HacAuthenticationError",
    "HacClient",
    "HacClientError",
    "ImpexResult",
    "ProjectData",
    "SessionInfo",
    "SessionManager",
    "SessionMetadata",
    "UpdateData",
    "UpdateLog",
    "UpdateParameter",
    "UpdateResult",
]
