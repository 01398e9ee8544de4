"""``hac_client_core.auth`` of the original library: authentication handlers."""

from sessionkeeper.hac.auth import AuthHandler, BasicAuthHandler

__all__ = ["AuthHandler", "BasicAuthHandler"]
