"""SAP Commerce HAC: persisted cookie + CSRF sessions and an HTTP client."""

from sessionkeeper.hac.session import SessionManager, SessionMetadata

__all__ = ["SessionManager", "SessionMetadata"]
