"""The ATProto formats, registered with the core: password sessions and OAuth sessions.

Both load through the protocol's own loaders (name checked against the DID
inside); an entry is dead once no refresh token could still be used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sessionkeeper.atproto.codec import is_session_name, load_named_session
from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.jwt import token_expiry_or_none
from sessionkeeper.atproto.oauth.session import OAuthSession, is_oauth_name, load_named_oauth
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.maintenance.formats import (
    ExpiryPolicy,
    FormatError,
    SessionFormat,
    hours,
    register,
    register_lock_name,
)

#: The store lock every password login takes (it guards no entry of its own).
LOGIN_LOCK = register_lock_name("atproto-login")

T = TypeVar("T")


def _loader(load: Callable[..., T]) -> Callable[[str, bytes], T]:
    def format_load(name: str, data: bytes) -> T:
        try:
            return load(data, name=name)
        except CorruptSessionError as exc:
            raise FormatError(str(exc)) from None

    return format_load


def _password_dead(session: AtpSessionData, now: float, policy: ExpiryPolicy) -> str | None:
    # The access token expires long before the refresh token: the refresh token decides.
    expires = session.refresh_expires_at
    if expires is not None and expires <= now:
        return f"refresh token expired {hours(now - expires)} ago"
    return None


def _oauth_dead(session: OAuthSession, now: float, policy: ExpiryPolicy) -> str | None:
    if session.refresh_token is None:
        if session.expires_at is not None and session.expires_at <= now:
            return f"access token expired {hours(now - session.expires_at)} ago, no refresh token"
        return None
    expires = token_expiry_or_none(session.refresh_token)  # opaque tokens have no date
    if expires is not None and expires <= now:
        return f"refresh token expired {hours(now - expires)} ago"
    return None


ATPROTO_SESSION = register(
    SessionFormat(
        name="atproto",
        label="atproto session",
        matches=is_session_name,
        load=_loader(load_named_session),
        dead=_password_dead,
    )
)
ATPROTO_OAUTH_SESSION = register(
    SessionFormat(
        name="atproto-oauth",
        label="atproto oauth session",
        matches=is_oauth_name,
        load=_loader(load_named_oauth),
        dead=_oauth_dead,
    )
)

__all__ = ["ATPROTO_OAUTH_SESSION", "ATPROTO_SESSION", "LOGIN_LOCK"]
