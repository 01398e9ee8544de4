"""The session record and its lifecycle events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sessionkeeper.atproto.errors import CorruptSessionError, SessionStringError
from sessionkeeper.atproto.jwt import redact, token_expiry_or_none
from sessionkeeper.core.lifetime import Lifetime
from sessionkeeper.events import SessionEvent

#: The file format's keys, in the order the Rust SDK writes them.
FIELD_KEYS: tuple[tuple[str, str], ...] = (
    ("refresh_jwt", "refreshJwt"),
    ("access_jwt", "accessJwt"),
    ("handle", "handle"),
    ("did", "did"),
    ("email", "email"),
    ("email_confirmed", "emailConfirmed"),
    ("email_auth_factor", "emailAuthFactor"),
    ("active", "active"),
    ("status", "status"),
)

SESSION_STRING_SEPARATOR = ":::"


#: What happened to a session (the core's event type, named as the seed names it).
AtpSessionEvent = SessionEvent


def _expect(data: dict[str, Any], key: str, kinds: type | tuple[type, ...], where: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, kinds) or (kinds is not bool and isinstance(value, bool)):
        raise CorruptSessionError(
            f"{where}: {key!r} has the wrong type ({type(value).__name__})", name=where
        )
    return value


@dataclass(slots=True)
class AtpSessionData:
    """An ATProto session: the JWT pair and the account it belongs to.

    The repr shows the handle, the DID and a short prefix of each token only.
    """

    refresh_jwt: str = field(repr=False)
    access_jwt: str = field(repr=False)
    handle: str
    did: str
    email: str | None = field(default=None, repr=False)
    email_confirmed: bool | None = None
    email_auth_factor: bool | None = None
    active: bool = True
    status: str | None = None

    def __repr__(self) -> str:
        return (
            f"AtpSessionData(handle={self.handle!r}, did={self.did!r}, "
            f"access_jwt={redact(self.access_jwt)!r}, refresh_jwt={redact(self.refresh_jwt)!r}, "
            f"active={self.active!r}, status={self.status!r})"
        )

    @property
    def access_expires_at(self) -> float | None:
        """Unix time the access token expires, or ``None`` if it cannot be decoded."""
        return token_expiry_or_none(self.access_jwt)

    @property
    def refresh_expires_at(self) -> float | None:
        """Unix time the refresh token expires, or ``None`` if it cannot be decoded."""
        return token_expiry_or_none(self.refresh_jwt)

    @property
    def lifetime(self) -> Lifetime:
        """The JWTs' ``exp``; an app-password session has no absolute end of its own."""
        return Lifetime(self.access_expires_at, self.refresh_expires_at, None)

    def to_json_dict(self) -> dict[str, Any]:
        """Return the camelCase document of the file format: all nine keys, ``None`` as null.

        The seed's file shows ``"status": null``; files without some keys
        (older Rust SDK ones) still load through [`from_json_dict`][].
        """
        return {key: getattr(self, attr) for attr, key in FIELD_KEYS}

    @classmethod
    def from_json_dict(cls, data: object, *, where: str = "session") -> AtpSessionData:
        """Build a session from the file format; raise [`CorruptSessionError`][] if invalid.

        Missing optional keys are ``None`` and a missing ``active`` is ``True``,
        as older Rust SDK files have it.
        """
        if not isinstance(data, dict):
            raise CorruptSessionError(f"{where}: not a JSON object", name=where)
        missing = [key for key in ("refreshJwt", "accessJwt", "handle", "did") if not data.get(key)]
        if missing:
            raise CorruptSessionError(
                f"{where}: missing required key(s) {', '.join(missing)}", name=where
            )
        active = _expect(data, "active", bool, where)
        return cls(
            refresh_jwt=_expect(data, "refreshJwt", str, where),
            access_jwt=_expect(data, "accessJwt", str, where),
            handle=_expect(data, "handle", str, where),
            did=_expect(data, "did", str, where),
            email=_expect(data, "email", str, where),
            email_confirmed=_expect(data, "emailConfirmed", bool, where),
            email_auth_factor=_expect(data, "emailAuthFactor", bool, where),
            active=True if active is None else active,
            status=_expect(data, "status", str, where),
        )

    @classmethod
    def from_session_string(cls, text: str) -> AtpSessionData:
        """Parse a MarshalX ``handle:::did:::accessJwt:::refreshJwt[:::pdsEndpoint]`` string.

        The PDS endpoint, when present, is available from `session_string_endpoint`.
        """
        handle, did, access, refresh, _ = parse_session_string(text)
        return cls(refresh_jwt=refresh, access_jwt=access, handle=handle, did=did)

    def to_session_string(self, pds_endpoint: str | None = None) -> str:
        """Return the MarshalX session string; the endpoint field only when given."""
        parts = [self.handle, self.did, self.access_jwt, self.refresh_jwt]
        if pds_endpoint:
            parts.append(pds_endpoint)
        return SESSION_STRING_SEPARATOR.join(parts)


def parse_session_string(text: str) -> tuple[str, str, str, str, str | None]:
    """Split a MarshalX session string into handle, DID, access, refresh and endpoint.

    Raises `SessionStringError` for another shape, or for an endpoint that is not
    an http(s) URL with a host: the tokens would be sent there.
    """
    if not isinstance(text, str):
        raise SessionStringError(f"a session string is a str, not {type(text).__name__}")
    parts = text.strip().split(SESSION_STRING_SEPARATOR)
    if len(parts) not in (4, 5) or not all(parts[:4]):
        raise SessionStringError(
            "not a session string: expected handle:::did:::accessJwt:::refreshJwt"
            f"[:::pdsEndpoint], got {len(parts)} field(s)"
        )
    endpoint = parts[4] if len(parts) == 5 and parts[4] else None
    if endpoint is not None:
        _check_endpoint(endpoint)
    return parts[0], parts[1], parts[2], parts[3], endpoint


def _check_endpoint(endpoint: str) -> None:
    # The value itself is never shown: in a string whose fields are out of order
    # it may be a token. Its scheme is safe to name (letters, digits, + - .).
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced [ in the host part
        raise SessionStringError(
            "the session string's PDS endpoint (its fifth field) is not a URL; "
            "it must be an http:// or https:// URL"
        ) from None
    if parts.scheme.lower() not in ("http", "https"):
        # A scheme of a few letters is a scheme; anything longer may be a token.
        found = f"uses {parts.scheme}:" if 0 < len(parts.scheme) <= 12 else "is not a URL"
        raise SessionStringError(
            f"the session string's PDS endpoint (its fifth field) {found}; "
            "it must be an http:// or https:// URL"
        )
    if not host:
        raise SessionStringError(
            "the session string's PDS endpoint (its fifth field) has no host; "
            "it must look like https://pds.example"
        )


def session_string_endpoint(text: str) -> str | None:
    """Return the PDS endpoint of a session string, or ``None`` for older strings."""
    return parse_session_string(text)[4]
