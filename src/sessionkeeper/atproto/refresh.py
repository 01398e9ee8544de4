"""The refresh rules both ATProto kinds share, free of I/O: adopt or refresh, judge the answer.

The refresh is the core's single flight (`sessionkeeper.core.singleflight`)
with a `TokenRefreshPolicy`; each kind's policy says how to refresh
(`sessionkeeper.atproto.password.flows`, `sessionkeeper.atproto.oauth.tokens`).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Generic, TypeVar

import httpx

from sessionkeeper.atproto.backoff import (
    clear_wait,
    not_sent,
    read_wait,
    record_wait,
    refresh_wait_name,
    remaining,
)
from sessionkeeper.atproto.errors import SessionError
from sessionkeeper.atproto.intent import Intent, begin_refresh, intent_name
from sessionkeeper.atproto.kinds import AtprotoKind, newest, read_stored
from sessionkeeper.atproto.xrpc import (
    json_value,
)
from sessionkeeper.core.flow import Delete, Flow
from sessionkeeper.core.lifetime import iso
from sessionkeeper.core.singleflight import Produced, Verdict

S = TypeVar("S")


logger = logging.getLogger(__name__)


#: Refresh errors that mean the refresh token (and so the session) is dead.
DEAD_SESSION_ERRORS = frozenset({"ExpiredToken", "InvalidToken", "AccountTakedown"})


def is_adoptable(kind: AtprotoKind[S], stored: S, known: S, now: float) -> bool:
    """Whether ``stored`` is another holder's newer, unexpired set of ``known``'s account.

    Any different, not older set that has not expired is adopted, even one inside
    the refresh margin: otherwise a margin longer than the token's life would
    make every waiting holder refresh again, once each. An older stored set (one
    this holder rotated but could not store) is never adopted.
    """
    exp = kind.expires_at(stored)
    return (
        kind.account(stored) == kind.account(known)
        and not kind.same(stored, known)
        and not kind.newer(known, stored)
        and not (exp is not None and now >= exp)
    )


#: OAuth token-endpoint errors that mean the grant is dead. ``invalid_client`` and
#: ``unauthorized_client`` (a 401 too) say the *client* failed to authenticate or may
#: not use the grant type: the refresh token itself is still good, so it is kept.
DEAD_GRANT_ERRORS = frozenset({"invalid_grant"})


def refresh_verdict(status: int, error: str | None, *, oauth: bool = False) -> Verdict | None:
    """Classify a refresh answer; ``None`` for an error that says nothing of the session.

    The one classifier of both kinds. refreshSession (``oauth=False``) declares a
    session dead with a 401 or a dead-session error; an OAuth token endpoint only
    with ``invalid_grant``, since its 401 is about client authentication.
    """
    if 200 <= status < 300:
        return Verdict.FRESH
    if status == 429 or status >= 500:
        return Verdict.UNAVAILABLE
    if oauth:
        return Verdict.DEAD if error in DEAD_GRANT_ERRORS else None
    if status == 401 or error in DEAD_SESSION_ERRORS:
        return Verdict.DEAD
    return None


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


def _json_of(response: httpx.Response, where: str) -> object:
    try:
        return json_value(response.content)
    except ValueError:
        raise SessionError(f"{where} answered HTTP {response.status_code} without JSON") from None


class TokenRefreshPolicy(ABC, Generic[S]):
    """The single-flight policy both ATProto kinds share; subclasses say how to refresh.

    A stored set is adopted when another holder refreshed it (different, not
    older, not expired). Otherwise the newest set known is refreshed: the
    stored one, unless it is older than ours (we rotated but could not store),
    or the one in memory when another thread here rotated it meanwhile.
    """

    def __init__(
        self, kind: AtprotoKind[S], known: S, *, now: float, in_memory: S | None = None
    ) -> None:
        self.kind = kind
        self.did = kind.account(known)
        self.name = kind.name(self.did)
        self.now = now
        self._in_memory = in_memory

    def decode(self, raw: bytes | None) -> S | None:
        """The stored set of this DID, or ``None``."""
        return read_stored(self.kind, raw, self.name, self.did)

    def encode(self, value: S) -> bytes:
        """Serialise a new set."""
        return self.kind.encode(value)

    def adoptable(self, stored: S, known: S | None) -> bool:
        """Another holder's newer, unexpired set."""
        return known is None or is_adoptable(self.kind, stored, known, self.now)

    def replaces(self, value: S, stored: S) -> bool:
        """Whether ``value`` is a later rotation of ``stored`` (for a write-back)."""
        return self.kind.newer(value, stored)

    def base(self, stored: S | None, known: S | None) -> S | None:
        """The newest set known, in the store, in this holder's hands or in memory."""
        ours = [s for s in (stored, known, self._in_memory) if s is not None]
        return newest(self.kind, *(s for s in ours if self.kind.account(s) == self.did))

    def produce(self, base: S | None) -> Flow[Produced[S]]:
        """Refresh ``base`` unless a wait another holder recorded still runs (fleet backoff).

        Runs under the session's lock, so one holder per window asks the server; a
        429 answer's wait is recorded for every process sharing the store.
        """
        name = refresh_wait_name(self.name, self.did)
        seen = yield from read_wait(name)
        left = remaining(seen, self.now)
        if seen is not None and left is not None:
            held = not_sent(f"the refresh of {self.did}", name, seen, left)
            # The server's 429 is why: status 429, and the error raised as it is.
            return Produced(
                Verdict.UNAVAILABLE, status=429, message=str(held), retry_after=left, failure=held
            )
        token = self.refresh_secret(base)
        lost = None
        intent = intent_name(self.name, self.did)
        if token is not None:
            lost = yield from begin_refresh(intent, token, self.now)
        produced: Produced[S] = yield from self.renew(base)
        if lost is not None:
            produced = self._after_lost_answer(produced, lost)
        if produced.verdict is Verdict.DEAD and token is not None:
            yield Delete(intent)  # the session goes (the single flight removes it); so does this
        if produced.status == 429 and produced.retry_after:
            reason = f"HTTP 429 {produced.error or ''} on the refresh of {self.did}".replace(
                "  ", " "
            )
            yield from record_wait(name, self.now, produced.retry_after, reason)
        elif produced.verdict is Verdict.FRESH:
            yield from clear_wait(name, seen)
        return produced

    def _after_lost_answer(self, produced: Produced[S], lost: Intent) -> Produced[S]:
        """Name a lost answer in the verdict on the token it left spent (or log the recovery)."""
        when = iso(lost.at)
        if produced.verdict is Verdict.FRESH:
            logger.warning(
                "recovered the %s of %s: a refresh's answer was lost at %s, and the server "
                "answered the same token again",
                self.kind.label,
                self.did,
                when,
            )
        elif produced.verdict is Verdict.DEAD:
            logger.warning(
                "the %s of %s is lost: a refresh's answer was lost at %s",
                self.kind.label,
                self.did,
                when,
            )
            lost_at = f"a refresh's answer was lost at {when}"
            said = f"{produced.message}; {lost_at}" if produced.message else lost_at
            return replace(produced, message=said)
        return produced

    @abstractmethod
    def refresh_secret(self, base: S | None) -> str | None:
        """The refresh token a refresh of ``base`` spends (recorded only as a digest)."""

    @abstractmethod
    def renew(self, base: S | None) -> Flow[Produced[S]]:
        """Refresh ``base`` with the server and classify the answer."""
