"""``hac_client_core.session`` of the original library: session persistence."""

from sessionkeeper.hac.session import SessionManager, SessionMetadata

__all__ = ["SessionManager", "SessionMetadata"]
