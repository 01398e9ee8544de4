"""Persistent ATProto (Bluesky) sessions: stored atomically, refreshed exactly once, shared.

Users import from here::

    from sessionkeeper.atproto import PersistentSessionManager
"""

from sessionkeeper.atproto.codec import name_for_did, validate_did
from sessionkeeper.atproto.errors import (
    CorruptSessionError,
    MalformedTokenError,
    NoSessionError,
    OAuthCallbackError,
    OAuthError,
    OAuthResolutionError,
    OAuthTokenError,
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
    XrpcError,
    XrpcNetworkError,
)
from sessionkeeper.atproto.interop import copy_sessions, import_session_dir, import_session_string
from sessionkeeper.atproto.oauth.client import AsyncOAuthClient, OAuthClient
from sessionkeeper.atproto.oauth.dpop import generate_dpop_jwk
from sessionkeeper.atproto.oauth.manager import AsyncOAuthSessionManager, OAuthSessionManager
from sessionkeeper.atproto.oauth.session import OAuthSession
from sessionkeeper.atproto.password.async_manager import AsyncPersistentSessionManager
from sessionkeeper.atproto.password.manager import PersistentSessionManager
from sessionkeeper.atproto.types import AtpSessionData, AtpSessionEvent
from sessionkeeper.core.call_loop import SessionAuth

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
    "SessionAuth",
    "SessionError",
    "SessionExpiredError",
    "SessionNetworkError",
    "XrpcError",
    "XrpcNetworkError",
    "copy_sessions",
    "generate_dpop_jwk",
    "import_session_dir",
    "import_session_string",
    "name_for_did",
    "validate_did",
]
