"""Drop-in replacement for hac-client-core: the same public names, on sessionkeeper."""

from sessionkeeper.hac import (
    AuthHandler,
    BasicAuthHandler,
    FlexibleSearchResult,
    GroovyScriptResult,
    HacAuthenticationError,
    HacClient,
    HacClientError,
    ImpexResult,
    ProjectData,
    SessionInfo,
    SessionManager,
    SessionMetadata,
    UpdateData,
    UpdateLog,
    UpdateParameter,
    UpdateResult,
)

__version__ = "0.1.2"

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
