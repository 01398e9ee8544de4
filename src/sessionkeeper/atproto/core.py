"""The sans-I/O heart of the session managers: every decision, no sockets, no files.

Multi-step operations are generators that *describe* their I/O: they yield
:class:`Send`, :class:`Get`, :class:`Put` and :class:`Delete` operations and
receive the results (an ``httpx.Response`` or a :class:`NetworkFailure` for a
send, bytes or ``None`` for a get). The sync manager performs them with
blocking calls, the async one with awaits; both share these flows, so "is it
due", "what does this answer mean" and "what to store" exist exactly once.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Generator
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from sessionkeeper.atproto.codec import decode_session, encode_session, name_for_did
from sessionkeeper.atproto.errors import (
    CorruptSessionError,
    SessionError,
    SessionNetworkError,
)
from sessionkeeper.atproto.jwt import token_expiry_or_none
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.atproto.xrpc import (
    CREATE_SESSION,
    DELETE_SESSION,
    REFRESH_SESSION,
    bearer,
    error_body,
    raise_for_error,
    retry_after,
    xrpc_url,
)
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

#: Refresh errors that mean the refresh token (and so the session) is dead.
DEAD_SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AccountTakedown"})


# --- I/O operations a flow may ask for -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send one HTTP request; the flow receives an ``httpx.Response`` or a NetworkFailure."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    json: Any = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Get:
    """Read a store name; the flow receives ``bytes | None``."""

    name: str


@dataclass(frozen=True, slots=True)
class Put:
    """Write a store name."""

    name: str
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove a store name."""

    name: str


@dataclass(frozen=True, slots=True)
class NetworkFailure:
    """A request that got no HTTP answer (refused, reset, timed out)."""

    reason: str


Op = Send | Get | Put | Delete
Flow = Generator[Op, Any, Any]


# --- pure decisions ----------------------------------------------------------------------


def is_due(access_jwt: str, now: float, margin: float) -> bool:
    """Whether an access token should be refreshed: ``now > exp - margin``.

    A token without a readable ``exp`` is never due here; the server's 401
    or ExpiredToken then triggers the reactive refresh.
    """
    exp = token_expiry_or_none(access_jwt)
    return exp is not None and now > exp - margin


def is_expired(access_jwt: str, now: float) -> bool:
    """Whether an access token is past its ``exp`` (unknown ``exp`` counts as not expired)."""
    exp = token_expiry_or_none(access_jwt)
    return exp is not None and now >= exp


def same_pair(a: AtpSessionData, b: AtpSessionData) -> bool:
    """Whether two sessions hold the same token pair.

    Both tokens are compared: access tokens carry no ``jti``, so two issued
    in the same second are identical, while every refresh token is unique.
    """
    return a.access_jwt == b.access_jwt and a.refresh_jwt == b.refresh_jwt


def refresh_issued(session: AtpSessionData) -> float:
    """When the session's refresh token was issued, told by its exp (0 if unreadable).

    Every refresh token of a server has the same lifetime, so a later exp means
    a newer token: this orders two pairs of one account.
    """
    return token_expiry_or_none(session.refresh_jwt) or 0.0


def is_newer_or_same(stored: AtpSessionData, known: AtpSessionData) -> bool:
    """Whether the stored pair is at least as new as the one this holder knows."""
    return refresh_issued(stored) >= refresh_issued(known)


def should_adopt(stored: AtpSessionData | None, known: AtpSessionData, now: float) -> bool:
    """Whether a stored pair, read under the lock, was refreshed by someone else and is usable.

    Any different, newer pair that has not expired is adopted, even one inside
    the refresh margin: otherwise a margin longer than the token's life would
    make every waiting holder refresh again, once each. An older stored pair
    (one this holder rotated but could not store) is never adopted.
    """
    return (
        stored is not None
        and stored.did == known.did
        and not same_pair(stored, known)
        and is_newer_or_same(stored, known)
        and not is_expired(stored.access_jwt, now)
    )


class Verdict(enum.Enum):
    """What a refreshSession answer means for the session."""

    FRESH = "fresh"  #: a new pair
    DEAD = "dead"  #: the refresh token is expired, revoked or of the wrong kind
    TRANSIENT = "transient"  #: 5xx or 429: try later, keep the session
    FAILED = "failed"  #: any other error: keep the session, report it


def refresh_verdict(status: int, error: str | None) -> Verdict:
    """Classify a refreshSession answer by status and error name."""
    if 200 <= status < 300:
        return Verdict.FRESH
    if status == 429 or status >= 500:
        return Verdict.TRANSIENT
    if status == 401 or error in DEAD_SESSION_ERRORS:
        return Verdict.DEAD
    return Verdict.FAILED


def pds_endpoint(did_doc: object) -> str | None:
    """Return the ``#atproto_pds`` service endpoint of a DID document, if it has one."""
    if not isinstance(did_doc, dict):
        return None
    services = did_doc.get("service")
    if not isinstance(services, list):
        return None
    for service in services:
        if not isinstance(service, dict):
            continue
        ident = service.get("id")
        if isinstance(ident, str) and ident.endswith("#atproto_pds"):
            endpoint = service.get("serviceEndpoint")
            if isinstance(endpoint, str) and endpoint.startswith(("http://", "https://")):
                return endpoint.rstrip("/")
    return None


def session_from_answer(
    body: object, *, previous: AtpSessionData | None = None, where: str
) -> tuple[AtpSessionData, str | None]:
    """Build a session from a createSession/refreshSession answer, plus its PDS endpoint.

    refreshSession may leave out the e-mail fields; they are carried over from
    ``previous``. ``active`` missing means true.
    """
    if not isinstance(body, dict):
        raise SessionError(f"{where} answered with something other than a JSON object")
    document = {k: v for k, v in body.items() if k != "didDoc"}
    session = AtpSessionData.from_json_dict(document, where=where)
    if previous is not None and previous.did == session.did:
        session = replace(
            session,
            email=session.email if "email" in body else previous.email,
            email_confirmed=(
                session.email_confirmed if "emailConfirmed" in body else previous.email_confirmed
            ),
            email_auth_factor=(
                session.email_auth_factor
                if "emailAuthFactor" in body
                else previous.email_auth_factor
            ),
        )
    return session, pds_endpoint(body.get("didDoc"))


def _json_of(response: httpx.Response, where: str) -> object:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        raise SessionError(f"{where} answered HTTP {response.status_code} without JSON") from None


# --- flows -------------------------------------------------------------------------------


class RefreshOutcome(enum.Enum):
    """How a refresh ended."""

    ADOPTED = "adopted"  #: another holder had refreshed; its pair was taken over
    REFRESHED = "refreshed"  #: this holder refreshed and stored the new pair
    REMOVED = "removed"  #: the server declared the session dead; it was removed
    UNAVAILABLE = "unavailable"  #: network error, 5xx or 429; session kept


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What :func:`refresh_flow` decided and what it learnt."""

    outcome: RefreshOutcome
    session: AtpSessionData
    endpoint: str | None = None
    status: int | None = None
    error: str | None = None
    message: str | None = None
    retry_after: float | None = None


def read_stored(raw: bytes | None, name: str, did: str) -> AtpSessionData | None:
    """Decode a stored session for ``did``; corrupt or foreign data reads as absent (logged)."""
    if raw is None:
        return None
    try:
        stored = decode_session(raw, name=name)
    except CorruptSessionError as exc:
        logger.warning("ignoring stored session: %s", exc)
        return None
    if stored.did != did:
        logger.warning("session file %s belongs to %s, not %s; ignoring it", name, stored.did, did)
        return None
    return stored


def refresh_flow(
    known: AtpSessionData, *, service_url: str, now: float
) -> Generator[Op, Any, RefreshResult]:
    """Refresh ``known`` (to be run while holding the store lock of its DID).

    Re-reads the stored pair first: one that another thread, process or machine
    already refreshed is adopted, and a rotated refresh token is never reused.
    The flow stays bound to ``known.did``: an answer for another DID is an error
    and is not stored.
    """
    did = known.did
    name = name_for_did(did)
    stored = read_stored((yield Get(name)), name, did)
    if stored is not None and should_adopt(stored, known, now):
        return RefreshResult(RefreshOutcome.ADOPTED, stored)
    # Refresh with the newest refresh token known: normally the stored one, unless
    # this holder rotated the pair while the store could not take the write.
    base = stored if stored is not None and is_newer_or_same(stored, known) else known
    answer = yield Send("POST", xrpc_url(service_url, REFRESH_SESSION), bearer(base.refresh_jwt))
    if isinstance(answer, NetworkFailure):
        return RefreshResult(RefreshOutcome.UNAVAILABLE, base, message=answer.reason)
    error, message = (None, None) if answer.is_success else error_body(answer)
    verdict = refresh_verdict(answer.status_code, error)
    if verdict is Verdict.FRESH:
        where = f"{REFRESH_SESSION} for {did}"
        fresh, endpoint = session_from_answer(_json_of(answer, where), previous=base, where=where)
        if fresh.did != did:
            raise SessionError(
                f"{REFRESH_SESSION} for {did} answered for another account ({fresh.did}); "
                "the answer was not stored"
            )
        try:
            yield Put(name, encode_session(fresh))
        except StoreError as exc:
            # The server has already rotated: the old refresh token may be dead now, so
            # dropping this pair would lose the session. Keep working with it in memory;
            # the next successful write (the next refresh) stores it.
            logger.error(
                "refreshed %s but could not store the new tokens (%s); "
                "this process keeps them in memory",
                did,
                exc,
            )
        return RefreshResult(RefreshOutcome.REFRESHED, fresh, endpoint)
    if verdict is Verdict.DEAD:
        yield Delete(name)
        return RefreshResult(
            RefreshOutcome.REMOVED, base, status=answer.status_code, error=error, message=message
        )
    if verdict is Verdict.TRANSIENT:
        return RefreshResult(
            RefreshOutcome.UNAVAILABLE,
            base,
            status=answer.status_code,
            error=error,
            message=message,
            retry_after=retry_after(answer.headers, now),
        )
    raise_for_error(answer, REFRESH_SESSION, now=now)
    raise AssertionError("unreachable: a non-2xx answer raised")  # pragma: no cover


def login_flow(
    identifier: str,
    password: str,
    *,
    auth_factor_token: str | None,
    service_url: str,
    now: float,
) -> Generator[Op, Any, tuple[AtpSessionData, str | None]]:
    """createSession, then store the new session under its DID's name."""
    body: dict[str, str] = {"identifier": identifier, "password": password}
    if auth_factor_token is not None:
        body["authFactorToken"] = auth_factor_token
    answer = yield Send("POST", xrpc_url(service_url, CREATE_SESSION), {}, body)
    if isinstance(answer, NetworkFailure):
        raise SessionNetworkError(f"{CREATE_SESSION} for {identifier!r} failed: {answer.reason}")
    raise_for_error(answer, CREATE_SESSION, now=now)
    where = f"{CREATE_SESSION} for {identifier!r}"
    session, endpoint = session_from_answer(_json_of(answer, where), where=where)
    yield Put(name_for_did(session.did), encode_session(session))
    return session, endpoint


def logout_flow(session: AtpSessionData, *, service_url: str) -> Generator[Op, Any, AtpSessionData]:
    """deleteSession with the newest stored refresh token, then remove the stored session.

    The server revokes the refresh token; a network failure or an error answer
    is logged and the session is removed locally all the same.
    """
    name = name_for_did(session.did)
    stored = read_stored((yield Get(name)), name, session.did)
    current = stored if stored is not None else session
    answer = yield Send("POST", xrpc_url(service_url, DELETE_SESSION), bearer(current.refresh_jwt))
    if isinstance(answer, NetworkFailure):
        logger.warning(
            "logout of %s: %s unreachable (%s); removing the session locally",
            session.did,
            DELETE_SESSION,
            answer.reason,
        )
    elif not answer.is_success:
        error, _ = error_body(answer)
        logger.warning(
            "logout of %s: %s answered HTTP %s %s; removing the session locally",
            session.did,
            DELETE_SESSION,
            answer.status_code,
            error or "",
        )
    yield Delete(name)
    return current
