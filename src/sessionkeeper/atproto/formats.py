"""The ATProto formats, registered with the core: password sessions and OAuth sessions.

Both load through the protocol's own loaders (name checked against the DID
inside); an entry is dead by its kind's one rule (``PasswordKind.dead``,
``OAuthKind.dead``), the rule the managers prune by.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sessionkeeper.atproto.codec import is_session_name, load_named_session
from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.oauth.session import OAuthSession, is_oauth_name, load_named_oauth
from sessionkeeper.atproto.password.kind import PASSWORD
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.maintenance.formats import (
    ExpiryPolicy,
    FormatError,
    SessionFormat,
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
    return PASSWORD.dead(session, now)


def _oauth_dead(session: OAuthSession, now: float, policy: ExpiryPolicy) -> str | None:
    # The OAuth kind (and its JOSE stack) loads only when an OAuth entry is judged.
    from sessionkeeper.atproto.oauth.kind import OAUTH

    return OAUTH.dead(session, now)


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
