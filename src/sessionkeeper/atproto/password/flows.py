"""App-password flows, free of I/O: createSession, refreshSession, deleteSession.

The flows yield the core's operations (`sessionkeeper.core.flow`) and run on
either driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx

from sessionkeeper.atproto.backoff import (
    clear_wait,
    login_wait_name,
    not_sent,
    read_wait,
    record_wait,
    remaining,
)
from sessionkeeper.atproto.codec import encode_session, name_for_did
from sessionkeeper.atproto.errors import SessionError, SessionNetworkError
from sessionkeeper.atproto.formats import LOGIN_LOCK
from sessionkeeper.atproto.issuer import read_issuer, record_issuer, same_service
from sessionkeeper.atproto.kinds import newest, read_stored
from sessionkeeper.atproto.password.kind import PASSWORD
from sessionkeeper.atproto.records import remove_session
from sessionkeeper.atproto.refresh import (
    TokenRefreshPolicy,
    _json_of,
    logger,
    pds_endpoint,
    refresh_verdict,
)
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
from sessionkeeper.core.flow import Call, Flow, Get, Locked, NetworkFailure, Put, Send
from sessionkeeper.core.singleflight import Produced, Verdict


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


class PasswordRefresh(TokenRefreshPolicy[AtpSessionData]):
    """Refreshes an app-password session with refreshSession."""

    def __init__(
        self,
        known: AtpSessionData,
        *,
        service_url: str,
        now: float,
        in_memory: AtpSessionData | None = None,
    ) -> None:
        super().__init__(PASSWORD, known, now=now, in_memory=in_memory)
        self.service_url = service_url
        self.endpoint: str | None = None  #: the PDS learnt from the answer's didDoc

    def refresh_secret(self, base: AtpSessionData | None) -> str | None:
        """The refresh JWT."""
        return base.refresh_jwt if base is not None else None

    def renew(self, base: AtpSessionData | None) -> Flow[Produced[AtpSessionData]]:
        """POST refreshSession with the refresh token and classify the answer."""
        if base is None:  # pragma: no cover - a refresh always has a session
            raise SessionError(f"no session of {self.did} to refresh")
        did = self.did
        answer = yield Send(
            "POST", xrpc_url(self.service_url, REFRESH_SESSION), bearer(base.refresh_jwt)
        )
        if isinstance(answer, NetworkFailure):
            return Produced(Verdict.UNAVAILABLE, message=answer.reason)
        error, message = (None, None) if answer.is_success else error_body(answer)
        status = answer.status_code
        verdict = refresh_verdict(status, error)
        if verdict is Verdict.FRESH:
            where = f"{REFRESH_SESSION} for {did}"
            fresh, self.endpoint = session_from_answer(
                _json_of(answer, where), previous=base, where=where
            )
            if fresh.did != did:
                raise SessionError(
                    f"{REFRESH_SESSION} for {did} answered for another account ({fresh.did}); "
                    "the answer was not stored"
                )
            return Produced(Verdict.FRESH, fresh)
        if verdict is Verdict.UNAVAILABLE:
            wait = retry_after(answer.headers, self.now)
            return Produced(verdict, None, status, error, message, wait)
        if verdict is Verdict.DEAD:
            return Produced(verdict, None, status, error, message)
        raise_for_error(answer, REFRESH_SESSION, now=self.now)
        raise AssertionError("unreachable: a non-2xx answer raised")  # pragma: no cover


@dataclass(frozen=True)
class LoginOutcome:
    """What a login gave: the session, the PDS its answer named, and whether it was reused."""

    session: AtpSessionData
    endpoint: str | None
    reused: bool


def matches_identifier(session: AtpSessionData, identifier: str) -> bool:
    """Whether ``identifier`` (a DID, a handle with or without ``@``, an e-mail) names it."""
    given = identifier.strip()
    if given == session.did:
        return True
    wanted = given.removeprefix("@").lower()
    return wanted == session.handle.lower() or (
        session.email is not None and wanted == session.email.lower()
    )


def reusable(sessions: list[AtpSessionData], identifier: str, now: float) -> AtpSessionData | None:
    """The stored session of ``identifier`` whose refresh token may still work, else ``None``."""
    for session in sessions:
        if not matches_identifier(session, identifier):
            continue
        expires = session.refresh_expires_at
        if expires is None or expires > now:
            return session
    return None


def login_flow(
    identifier: str,
    password: str,
    *,
    auth_factor_token: str | None,
    service_url: str,
    now: float,
    stored: Callable[[], list[AtpSessionData]],
    force: bool = False,
) -> Flow[LoginOutcome]:
    """Under the login lock: reuse ``identifier``'s stored session, else createSession.

    The lock is what keeps a cold fleet to one createSession: the first holder
    creates and stores the session, every later holder finds it. Only a session
    that ``service_url`` issued is reused (`sessionkeeper.atproto.issuer`): a
    stored session of another service, or of an unknown one, is never sent
    here. ``force`` always creates, and revokes the stored session of the same
    account that the new one replaces (it would otherwise stay valid on the
    server, unseen), when this service issued it.
    """

    def locked() -> Flow[LoginOutcome]:
        sessions: list[AtpSessionData] = yield Call(stored)
        # The same handle may have a session at another service too: only ours counts.
        previous: AtpSessionData | None = None
        for candidate in sessions:
            if reusable([candidate], identifier, now) is None:
                continue
            issued_by = yield from read_issuer(candidate.did)
            if issued_by is not None and same_service(issued_by, service_url):
                previous = candidate
                break
        if previous is not None and not force:
            return LoginOutcome(previous, None, reused=True)
        body: dict[str, str] = {"identifier": identifier, "password": password}
        if auth_factor_token is not None:
            body["authFactorToken"] = auth_factor_token
        # Fleet backoff: under the login lock, so after a 429 every other process sharing
        # the store reads the wait instead of spending one more attempt of the budget.
        wait_name = login_wait_name(service_url, identifier)
        answer = yield from _create_session(identifier, body, wait_name, service_url, now)
        where = f"{CREATE_SESSION} for {identifier!r}"
        session, endpoint = session_from_answer(_json_of(answer, where), where=where)
        yield Put(name_for_did(session.did), encode_session(session))
        yield from record_issuer(session.did, service_url)
        if previous is not None and previous.did == session.did:
            yield from _revoke(previous, service_url)
        return LoginOutcome(session, endpoint, reused=False)

    outcome: LoginOutcome = yield Locked(LOGIN_LOCK, locked())
    return outcome


def _revoke(replaced: AtpSessionData, service_url: str) -> Flow[None]:
    """deleteSession for a session a forced login replaced; a failure is only logged."""
    answer = yield Send("POST", xrpc_url(service_url, DELETE_SESSION), bearer(replaced.refresh_jwt))
    if isinstance(answer, NetworkFailure) or not answer.is_success:
        reason = answer.reason if isinstance(answer, NetworkFailure) else answer.status_code
        logger.warning(
            "could not revoke the replaced session of %s (%s); it lapses on its own",
            replaced.did,
            reason,
        )


def _create_session(
    identifier: str, body: dict[str, str], wait_name: str, service_url: str, now: float
) -> Flow[httpx.Response]:
    seen = yield from read_wait(wait_name)
    left = remaining(seen, now)
    if seen is not None and left is not None:
        raise not_sent(f"{CREATE_SESSION} for {identifier!r}", wait_name, seen, left)
    answer: httpx.Response | NetworkFailure = yield Send(
        "POST", xrpc_url(service_url, CREATE_SESSION), {}, json=body
    )
    if isinstance(answer, NetworkFailure):
        raise SessionNetworkError(
            f"{CREATE_SESSION} at {service_url} for {identifier!r} failed: {answer.reason}"
        )
    if answer.status_code == 429:
        wait = retry_after(answer.headers, now)
        if wait:
            yield from record_wait(wait_name, now, wait, f"HTTP 429 on {CREATE_SESSION}")
    raise_for_error(answer, CREATE_SESSION, now=now)
    yield from clear_wait(wait_name, seen)
    return answer


def logout_flow(session: AtpSessionData, *, service_url: str) -> Flow[AtpSessionData]:
    """Under the DID's lock: deleteSession with the newest refresh token, then remove the session.

    That is the stored pair, unless ``session`` is newer (a rotation whose store
    write failed: the stored refresh token is spent). The server revokes the
    refresh token; a network failure or an error answer is logged and the
    session is removed locally all the same.
    """
    name = name_for_did(session.did)
    current: AtpSessionData = yield Locked(name, _logout_locked(session, name, service_url))
    return current


def _logout_locked(session: AtpSessionData, name: str, service_url: str) -> Flow[AtpSessionData]:
    stored = read_stored(PASSWORD, (yield Get(name)), name, session.did)
    # The stored pair, unless ours is newer (we rotated but could not store it).
    current = newest(PASSWORD, stored, session) or session
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
    yield from remove_session(name, session.did)
    return current
