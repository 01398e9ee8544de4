"""Which requests of a MarshalX client are the session's, and whose session each one is.

Pure decisions, shared by the blocking and the asyncio transport: only
requests to the manager's own servers are touched (so its tokens never reach
a host that did not issue them); there, the session-changing XRPC methods are
intercepted, and every other call that carries a token of an account the
manager has is an ordinary call of that account.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import httpx

from sessionkeeper.atproto.errors import MalformedTokenError
from sessionkeeper.atproto.jwt import decode_claims
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.atproto.xrpc import CREATE_SESSION, DELETE_SESSION, REFRESH_SESSION

_XRPC = "/xrpc/"

#: Scheme, host and port: where a token may be sent.
Server = tuple[str, str, int | None]


class Action(enum.Enum):
    """What the transport does with one request."""

    FORWARD = "forward"  #: send it as it is (another host, no token, or no account of ours)
    KEEP = "keep"  #: send it, then keep the session the server answers (createSession)
    ANSWER = "answer"  #: answer a refreshSession with the newer pair the manager holds
    REFRESH = "refresh"  #: refresh the token's account through the manager's single flight
    LOGOUT = "logout"  #: log the token's account out through the manager (deleteSession)
    CALL = "call"  #: send it through the manager's call loop for the token's account


@dataclass(frozen=True, slots=True)
class Route:
    """What a request is: another host's, or which XRPC method for which account (DID)."""

    ours: bool  #: sent to a server that issued the manager's tokens
    nsid: str | None = None
    did: str | None = None

    @property
    def account(self) -> str | None:
        """The account whose session decides the action, if the request has one."""
        return self.did if self.ours and self.nsid != CREATE_SESSION else None


def server_of(url: str | httpx.URL) -> Server:
    """Scheme, host and port of ``url`` (default ports as ``None``, as httpx parses them)."""
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def token_subject(request: httpx.Request) -> str | None:
    """The DID in the ``sub`` claim of the request's bearer token, read without verifying.

    Access and refresh tokens of a session both name its account, so this is
    whose session a request belongs to, whichever of the two MarshalX sent.
    """
    token = bearer_token(request)
    if token is None:
        return None
    try:
        sub = decode_claims(token).get("sub")
    except MalformedTokenError:
        return None
    return sub if isinstance(sub, str) and sub.startswith("did:") else None


def nsid_of(request: httpx.Request) -> str | None:
    """The XRPC method a request calls, if its path is an XRPC one."""
    path = request.url.path
    index = path.find(_XRPC)
    return path[index + len(_XRPC) :] if index >= 0 else None


def route(request: httpx.Request, servers: frozenset[Server]) -> Route:
    """What ``request`` of a client whose manager serves ``servers`` is."""
    if server_of(request.url) not in servers:
        return Route(ours=False)
    return Route(ours=True, nsid=nsid_of(request), did=token_subject(request))


def decide(where: Route, session: AtpSessionData | None, presented: str | None) -> Action:
    """The action for a request, given its account's session (``None``: none known).

    ``presented`` is the request's bearer token. Only the session-changing
    methods are intercepted; an account the manager never had is the
    server's business (a refreshSession answer is kept, as a login's is).
    """
    if not where.ours:
        return Action.FORWARD
    if where.nsid == CREATE_SESSION:
        return Action.KEEP
    if session is None:
        return Action.KEEP if where.nsid == REFRESH_SESSION else Action.FORWARD
    if where.nsid == REFRESH_SESSION:
        # A pair the manager already replaced is answered with the newer one, no server call.
        return Action.REFRESH if presented == session.refresh_jwt else Action.ANSWER
    if where.nsid == DELETE_SESSION:
        return Action.LOGOUT
    return Action.CALL


def bearer_token(request: httpx.Request) -> str | None:
    """The request's bearer token, if it carries one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


__all__ = [
    "Action",
    "Route",
    "Server",
    "bearer_token",
    "decide",
    "nsid_of",
    "route",
    "server_of",
    "token_subject",
]
