"""The ATProto formats, registered with the core: password and OAuth sessions, and the
records kept beside them (a refresh's intent, a rate limit's wait, the issuer).

Sessions load through the protocol's own loaders (name checked against the DID
inside); a session is dead by its kind's one rule (``PasswordKind.dead``,
``OAuthKind.dead``), the rule the managers prune by. A wait record is over once
its wait has passed; an intent record once no refresh token it could concern
can still live (every refresh rewrites it, and no ATProto refresh token outlives
90 days without a refresh).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sessionkeeper.atproto.backoff import WAIT_PREFIX, WAIT_SUFFIX, Wait, decode_wait
from sessionkeeper.atproto.codec import is_session_name, load_named_session
from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.intent import INTENT_PREFIX, INTENT_SUFFIX, Intent, decode_intent
from sessionkeeper.atproto.issuer import ISSUER_PREFIX, ISSUER_SUFFIX, decode_issuer
from sessionkeeper.atproto.oauth.session import OAuthSession, is_oauth_name, load_named_oauth
from sessionkeeper.atproto.password.kind import PASSWORD
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.maintenance.formats import (
    ExpiryPolicy,
    FormatError,
    PruneReason,
    SessionFormat,
    hours,
    never_dies,
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

#: No ATProto refresh token lives this long without a refresh, and each refresh
#: rewrites its session's intent record: an older record concerns a dead token.
INTENT_RELEVANCE = 90 * 86400.0


def _record_format(
    kind: str,
    what: str,
    prefix: str,
    suffix: str,
    decode: Callable[[bytes], T | None],
    dead: Callable[[T, float, ExpiryPolicy], str | None],
) -> SessionFormat:
    """Register the record kept beside sessions under ``prefix...suffix`` names."""

    def load(name: str, data: bytes) -> T:
        record = decode(data)
        if record is None:
            raise FormatError(f"it is not a readable {what} record")
        return record

    return register(
        SessionFormat(
            name=f"atproto-{kind}",
            label=f"atproto {what}",
            matches=lambda name: name.startswith(prefix) and name.endswith(suffix),
            load=load,
            dead=dead,
            prune_reason=PruneReason.RECORD_OVER,
        )
    )


def _wait_over(wait: Wait, now: float, policy: ExpiryPolicy) -> str | None:
    return f"its wait ended {hours(now - wait.until)} ago" if wait.until <= now else None


def _intent_over(intent: Intent, now: float, policy: ExpiryPolicy) -> str | None:
    age = now - intent.at
    return f"written {hours(age)} ago, past any refresh token" if age > INTENT_RELEVANCE else None


ATPROTO_WAIT = _record_format(
    "wait", "rate-limit wait", WAIT_PREFIX, WAIT_SUFFIX, decode_wait, _wait_over
)
ATPROTO_INTENT = _record_format(
    "intent", "refresh intent", INTENT_PREFIX, INTENT_SUFFIX, decode_intent, _intent_over
)
# One small record per account that ever logged in here; removed with its session.
ATPROTO_ISSUER = _record_format(
    "issuer", "session issuer", ISSUER_PREFIX, ISSUER_SUFFIX, decode_issuer, never_dies
)

__all__ = [
    "ATPROTO_INTENT",
    "ATPROTO_ISSUER",
    "ATPROTO_OAUTH_SESSION",
    "ATPROTO_SESSION",
    "ATPROTO_WAIT",
    "INTENT_RELEVANCE",
    "LOGIN_LOCK",
]
