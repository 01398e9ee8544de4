"""HAC session persistence: the seed's ``SessionManager`` on any `Store`.

Files are the original hac-client-core's: ``session_<md5>.json`` holding the nine
``SessionMetadata`` fields, so an existing ``~/.cache/hac-client/`` loads here and
the original loads ours. What changes is the mechanics: atomic 0600 writes,
read-modify-write under a cross-process lock, corrupt data recognised safely.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard, final

import orjson

from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.stores.base import Store, readable_items
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """The original library's cache directory, ``~/.cache/hac-client/``, so existing caches load."""
    return Path.home() / ".cache" / "hac-client"


FILE_PREFIX = "session_"
FILE_SUFFIX = ".json"


@dataclass
class SessionMetadata:
    """A persisted HAC session: cookies and CSRF token, never a password."""

    session_id: str
    """``JSESSIONID``"""
    csrf_token: str
    """CSRF token"""
    route_cookie: str | None
    """``ROUTE`` cookie for load balancer affinity (``"ROUTE=value"``)"""
    environment: str
    """Environment identifier (``env`` or ``env/endpoint``)"""
    base_url: str
    """HAC base URL"""
    username: str
    """Username"""
    created_at: float
    """Unix timestamp when the session was created"""
    last_used_at: float
    """Unix timestamp when the session was last used"""
    is_authenticated: bool = True
    """Whether the session is authenticated"""

    def __repr__(self) -> str:
        return (
            f"SessionMetadata(base_url={self.base_url!r}, username={self.username!r}, "
            f"environment={self.environment!r}, session_id={_hint(self.session_id)}, "
            f"csrf_token={_hint(self.csrf_token)}, route_cookie={self.route_cookie is not None}, "
            f"created_at={self.created_at_formatted!r}, "
            f"last_used_at={self.last_used_at_formatted!r}, "
            f"is_authenticated={self.is_authenticated})"
        )

    @property
    def age_seconds(self) -> float:
        """Seconds since the session was created (on the system clock; see [`age_at`][])."""
        return self.age_at(SYSTEM_CLOCK.time())

    @property
    def idle_seconds(self) -> float:
        """Seconds since the session was last used (on the system clock; see [`idle_at`][])."""
        return self.idle_at(SYSTEM_CLOCK.time())

    def age_at(self, now: float) -> float:
        """Seconds from the session's creation to ``now`` (a clock's reading)."""
        return now - self.created_at

    def idle_at(self, now: float) -> float:
        """Seconds from the session's last use to ``now`` (a clock's reading)."""
        return now - self.last_used_at

    @property
    def created_at_formatted(self) -> str:
        """Creation time as ``YYYY-MM-DD HH:MM:SS`` (local time)."""
        return datetime.fromtimestamp(self.created_at).strftime("%Y-%m-%d %H:%M:%S")

    @property
    def last_used_at_formatted(self) -> str:
        """Last use as ``YYYY-MM-DD HH:MM:SS`` (local time)."""
        return datetime.fromtimestamp(self.last_used_at).strftime("%Y-%m-%d %H:%M:%S")


def _hint(secret: str) -> str:
    return f"'{secret[:4]}...'" if secret else "''"


#: Timestamps past the year 3000 (or negative, or not finite) are not from a real session.
LATEST_TIMESTAMP = 32503680000.0


class SessionFileError(SessionkeeperError, ValueError):
    """A stored HAC session that cannot be used; the message says why (no secrets)."""


def parse_session(data: bytes) -> SessionMetadata:
    """Parse a session file; raise `SessionFileError` saying why it is not a session.

    Non-UTF-8 bytes, non-JSON, non-objects, missing fields, wrong types and
    timestamps outside 0 to the year 3000 are all corrupt. Unknown extra keys
    are ignored (a newer writer's).
    """
    try:
        # orjson: listings parse every session, and it is several times faster than json.
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in exc.msg:
            raise SessionFileError("is not UTF-8 text") from None
        raise SessionFileError(f"is not valid JSON ({exc.msg})") from None
    if type(raw) is not dict:
        raise SessionFileError(f"holds a JSON {type(raw).__name__}, not an object")
    # Exact type checks on each field: this runs once per session in every listing.
    get = raw.get
    session_id, csrf_token = get("session_id"), get("csrf_token")
    environment, base_url, username = get("environment"), get("base_url"), get("username")
    if not (
        type(session_id) is str
        and type(csrf_token) is str
        and type(environment) is str
        and type(base_url) is str
        and type(username) is str
    ):
        raise SessionFileError(_first_wrong(raw, _TEXT_FIELDS, "a string"))
    created_at, last_used_at = get("created_at"), get("last_used_at")
    if not (_is_timestamp(created_at) and _is_timestamp(last_used_at)):
        field = "created_at" if not _is_timestamp(created_at) else "last_used_at"
        raise SessionFileError(f"has {field!r} that is not a time between 1970 and 3000")
    route = get("route_cookie")
    authenticated = get("is_authenticated", True)
    if not (route is None or type(route) is str):
        raise SessionFileError("has 'route_cookie' that is neither a string nor null")
    if type(authenticated) is not bool:
        raise SessionFileError("has 'is_authenticated' that is not true or false")
    return SessionMetadata(
        session_id,
        csrf_token,
        route,
        environment,
        base_url,
        username,
        float(created_at),
        float(last_used_at),
        authenticated,
    )


_TEXT_FIELDS = ("session_id", "csrf_token", "environment", "base_url", "username")


def _first_wrong(raw: dict[str, Any], fields: tuple[str, ...], wanted: str) -> str:
    for key in fields:
        if key not in raw:
            return f"lacks the field {key!r}"
        if type(raw[key]) is not str:
            return f"has {key!r} of type {type(raw[key]).__name__}, not {wanted}"
    return "is not a HAC session"  # pragma: no cover - only called when a field is wrong


def decode_session(data: bytes) -> SessionMetadata | None:
    """Parse a session file; ``None`` for anything that is not a valid session."""
    try:
        return parse_session(data)
    except SessionFileError:
        return None


def session_key(session: SessionMetadata) -> tuple[str, str, str]:
    """The key a session was saved under: ``(base_url, username, environment)``."""
    return (session.base_url, session.username, session.environment)


def _is_timestamp(value: object) -> TypeGuard[float]:
    kind = type(value)
    # NaN fails both comparisons; bool is excluded by the exact type check.
    return (kind is float or kind is int) and 0 <= value <= LATEST_TIMESTAMP  # type: ignore[operator]


def encode_session(session: SessionMetadata) -> bytes:
    """Serialise the nine fields exactly as the original library does (indent 2)."""
    return json.dumps(asdict(session), indent=2).encode("utf-8")


def session_name(base_url: str, username: str, environment: str) -> str:
    """The original's file name: ``session_<md5 of "base_url:username:environment">.json``."""
    key = hashlib.md5(f"{base_url}:{username}:{environment}".encode()).hexdigest()
    return f"{FILE_PREFIX}{key}{FILE_SUFFIX}"


def is_session_name(name: str) -> bool:
    """Whether ``name`` looks like a HAC session file name."""
    return name.startswith(FILE_PREFIX) and name.endswith(FILE_SUFFIX)


def parsed_session(name: str, data: bytes) -> SessionMetadata | None:
    """The HAC session stored as ``name``, or ``None``, with a warning naming it, if corrupt."""
    try:
        return parse_session(data)
    except SessionFileError as exc:
        # Named, as ATProto listings name theirs: "No active session" alone hides why.
        logger.warning(
            "skipping HAC session file %s: it %s (a new session start replaces it)", name, exc
        )
        return None


def most_recent_first(sessions: Iterable[SessionMetadata | None]) -> list[SessionMetadata]:
    """The sessions (``None`` dropped), most recently used first: the order of a listing."""
    found = [session for session in sessions if session is not None]
    found.sort(key=lambda s: s.last_used_at, reverse=True)
    return found


@final
class SessionManager:
    """Manages persisted HAC sessions (API of hac-client-core's ``SessionManager``).

    ``cache_dir`` defaults to ``~/.cache/hac-client/``; ``store`` replaces the
    directory with any [`Store`][] (SQLite, Redis, encrypted, ...); ``clock``
    stamps ``created_at`` and ``last_used_at`` (the system clock by default).
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        store: Store | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or SYSTEM_CLOCK
        if store is not None:
            self.cache_dir: Path | None = Path(cache_dir) if cache_dir is not None else None
            self.store: Store = store
        else:
            self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            self.store = DirectoryStore(self.cache_dir)

    def __repr__(self) -> str:
        return f"SessionManager(store={self.store!r})"

    def lock(
        self, base_url: str, username: str, environment: str, timeout: float | None = None
    ) -> AbstractContextManager[None]:
        """Hold the cross-process lock of one session (for read-modify-write and login)."""
        return self.store.lock(session_name(base_url, username, environment), timeout)

    def load_session(
        self, base_url: str, username: str, environment: str
    ) -> SessionMetadata | None:
        """Load a cached session; ``None`` if absent or corrupt (a corrupt file is removed)."""
        name = session_name(base_url, username, environment)
        data = self._read(name)
        if data is None:
            return None
        session = decode_session(data)
        if session is None:
            session = self._recover_corrupt(name, data)
        if session is not None and session_key(session) != (base_url, username, environment):
            # md5("base:user:env") is ambiguous (user "ops:prod" + env "eu" and user "ops"
            # + env "prod:eu" share a name): another account's cookies must never be used.
            logger.warning(
                "HAC session file %s belongs to user %r on %s (environment %r), "
                "not the one asked for; not using it",
                name,
                session.username,
                session.base_url,
                session.environment,
            )
            return None
        return session

    def _read(self, name: str) -> bytes | None:
        try:
            return self.store.get(name)
        except (OSError, StoreError) as exc:
            logger.warning("cannot read HAC session %s: %s", name, exc)
            return None

    def _recover_corrupt(self, name: str, seen: bytes) -> SessionMetadata | None:
        # Re-read under the lock before deleting: a writer that replaced the file
        # meanwhile must not lose its new, valid session to our stale verdict.
        try:
            with self.store.lock(name):
                current = self._read(name)
                if current is None:
                    return None
                if current != seen:
                    return decode_session(current)
                self.store.delete(name)
                logger.warning("HAC session file %s is corrupt; it was removed", name)
                return None
        except (OSError, StoreError) as exc:
            # Still corrupt, so still no session; the next load tries the removal again.
            logger.warning("HAC session file %s is corrupt and could not be removed: %s", name, exc)
            return None

    def save_session(
        self,
        base_url: str,
        username: str,
        environment: str,
        session_id: str,
        csrf_token: str,
        route_cookie: str | None = None,
    ) -> None:
        """Save a session, keeping ``created_at`` of an existing one for the same key."""
        name = session_name(base_url, username, environment)
        try:
            with self.store.lock(name):
                existing = self.load_session(base_url, username, environment)
                now = self.clock.time()
                session = SessionMetadata(
                    session_id=session_id,
                    csrf_token=csrf_token,
                    route_cookie=route_cookie,
                    environment=environment,
                    base_url=base_url,
                    username=username,
                    created_at=existing.created_at if existing else now,
                    last_used_at=now,
                    is_authenticated=True,
                )
                self.store.put(name, encode_session(session))
        except (OSError, StoreError) as exc:
            # The cache is an optimisation: a failed write must not fail the caller's
            # operation, but it must not go unnoticed either.
            logger.warning("cannot save HAC session %s: %s", name, exc)

    def touch_session(self, base_url: str, username: str, environment: str) -> None:
        """Update ``last_used_at`` of an existing cached session."""
        name = session_name(base_url, username, environment)
        try:
            with self.store.lock(name):
                session = self.load_session(base_url, username, environment)
                if session is None:
                    return
                session.last_used_at = self.clock.time()
                self.store.put(name, encode_session(session))
        except (OSError, StoreError) as exc:
            logger.warning("cannot touch HAC session %s: %s", name, exc)

    def remove_session(self, base_url: str, username: str, environment: str) -> None:
        """Delete one cached session."""
        self.store.delete(session_name(base_url, username, environment))

    def list_sessions(self) -> list[SessionMetadata]:
        """All valid cached sessions, most recently used first (corrupt ones skipped)."""
        stored = readable_items(self.store, is_session_name, what="HAC session")
        return most_recent_first(parsed_session(name, data) for name, data in stored)

    def clear_all_sessions(self) -> int:
        """Delete every cached session file; return how many were removed."""
        removed = 0
        for name in self.store.names():
            if is_session_name(name) and self.store.delete(name):
                removed += 1
        return removed


def session_to_dict(session: SessionMetadata) -> dict[str, Any]:
    """The nine fields as a plain dict (what the file holds)."""
    return asdict(session)
