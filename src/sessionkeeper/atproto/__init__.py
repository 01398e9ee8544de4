"""Persistent ATProto (Bluesky) sessions: stored atomically, refreshed exactly once, shared.

Users import from here::

    from sessionkeeper.atproto import PersistentSessionManager
"""

from typing import TYPE_CHECKING

from sessionkeeper._lazy import lazy_names

if TYPE_CHECKING:
    from sessionkeeper.atproto.codec import name_for_did, validate_did
    from sessionkeeper.atproto.errors import (
        CorruptSessionError,
        MalformedTokenError,
        NoSessionError,
        OAuthCallbackError,
        OAuthError,
        OAuthResolutionError,
        OAuthTokenError,
        RateLimitedError,
        SessionError,
        SessionExpiredError,
        SessionNetworkError,
        SessionStringError,
        XrpcError,
        XrpcNetworkError,
    )
    from sessionkeeper.atproto.interop import (
        copy_sessions,
        import_session_dir,
        import_session_string,
    )
    from sessionkeeper.atproto.oauth.client import AsyncOAuthClient, OAuthClient
    from sessionkeeper.atproto.oauth.dpop import generate_dpop_jwk
    from sessionkeeper.atproto.oauth.manager import AsyncOAuthSessionManager, OAuthSessionManager
    from sessionkeeper.atproto.oauth.session import OAuthSession
    from sessionkeeper.atproto.password.async_manager import AsyncPersistentSessionManager
    from sessionkeeper.atproto.password.manager import PersistentSessionManager
    from sessionkeeper.atproto.types import AtpSessionData, AtpSessionEvent
    from sessionkeeper.core.call_loop import SessionAuth

#: Where each public name lives. Names load on first use: a process that needs the
#: app-password manager (a bot, ``sessionkeeper atproto whoami``) never imports the
#: OAuth client, its JOSE stack or dnspython.
_MODULE_OF = {
    "AsyncOAuthClient": "sessionkeeper.atproto.oauth.client",
    "AsyncOAuthSessionManager": "sessionkeeper.atproto.oauth.manager",
    "AsyncPersistentSessionManager": "sessionkeeper.atproto.password.async_manager",
    "AtpSessionData": "sessionkeeper.atproto.types",
    "AtpSessionEvent": "sessionkeeper.atproto.types",
    "CorruptSessionError": "sessionkeeper.atproto.errors",
    "MalformedTokenError": "sessionkeeper.atproto.errors",
    "NoSessionError": "sessionkeeper.atproto.errors",
    "OAuthCallbackError": "sessionkeeper.atproto.errors",
    "OAuthClient": "sessionkeeper.atproto.oauth.client",
    "OAuthError": "sessionkeeper.atproto.errors",
    "OAuthResolutionError": "sessionkeeper.atproto.errors",
    "OAuthSession": "sessionkeeper.atproto.oauth.session",
    "OAuthSessionManager": "sessionkeeper.atproto.oauth.manager",
    "OAuthTokenError": "sessionkeeper.atproto.errors",
    "PersistentSessionManager": "sessionkeeper.atproto.password.manager",
    "RateLimitedError": "sessionkeeper.atproto.errors",
    "SessionAuth": "sessionkeeper.core.call_loop",
    "SessionError": "sessionkeeper.atproto.errors",
    "SessionExpiredError": "sessionkeeper.atproto.errors",
    "SessionNetworkError": "sessionkeeper.atproto.errors",
    "SessionStringError": "sessionkeeper.atproto.errors",
    "XrpcError": "sessionkeeper.atproto.errors",
    "XrpcNetworkError": "sessionkeeper.atproto.errors",
    "copy_sessions": "sessionkeeper.atproto.interop",
    "generate_dpop_jwk": "sessionkeeper.atproto.oauth.dpop",
    "import_session_dir": "sessionkeeper.atproto.interop",
    "import_session_string": "sessionkeeper.atproto.interop",
    "name_for_did": "sessionkeeper.atproto.codec",
    "validate_did": "sessionkeeper.atproto.codec",
}


__getattr__ = lazy_names(__name__, globals(), _MODULE_OF)


__all__ = [
    "AsyncOAuthClient",
    "AsyncOAuthSessionManager",
    "AsyncPersistentSessionManager",
    "AtpSessionData",
    "AtpSessionEvent",
    "CorruptSessionError",
    "MalformedTokenError",
    "NoSessionError",
    "OAuthCallbackError",
    "OAuthClient",
    "OAuthError",
    "OAuthResolutionError",
    "OAuthSession",
    "OAuthSessionManager",
    "OAuthTokenError",
    "PersistentSessionManager",
    "RateLimitedError",
    "SessionAuth",
    "SessionError",
    "SessionExpiredError",
    "SessionNetworkError",
    "SessionStringError",
    "XrpcError",
    "XrpcNetworkError",
    "copy_sessions",
    "generate_dpop_jwk",
    "import_session_dir",
    "import_session_string",
    "name_for_did",
    "validate_did",
]
