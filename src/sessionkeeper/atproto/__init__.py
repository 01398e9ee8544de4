"""Persistent ATProto (Bluesky) sessions: stored atomically, refreshed exactly once, shared.

Users import from here::

    from sessionkeeper.atproto import PersistentSessionManager
"""

from sessionkeeper.atproto.async_manager import AsyncPersistentSessionManager
from sessionkeeper.atproto.auth import SessionAuth
from sessionkeeper.atproto.codec import name_for_did, validate_did
from sessionkeeper.atproto.errors import (
    CorruptSessionError,
    MalformedTokenError,
    NoSessionError,
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
    XrpcError,
    XrpcNetworkError,
)
from sessionkeeper.atproto.manager import PersistentSessionManager
from sessionkeeper.atproto.types import AtpSessionData, AtpSessionEvent

__all__ = [
    "AsyncPersistentSessionManager",
    "AtpSessionData",
    "AtpSessionEvent",
    "CorruptSessionError",
    "MalformedTokenError",
    "NoSessionError",
    "PersistentSessionManager",
    "SessionAuth",
    "SessionError",
    "SessionExpiredError",
    "SessionNetworkError",
    "XrpcError",
    "XrpcNetworkError",
    "name_for_did",
    "validate_did",
]
