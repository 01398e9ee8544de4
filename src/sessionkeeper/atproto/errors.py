"""Errors of the ATProto session manager; each names the account, file or call at fault."""

from __future__ import annotations

from sessionkeeper.errors import SessionkeeperError


class SessionError(SessionkeeperError):
    """Base class of every ATProto session error."""


class NoSessionError(SessionError):
    """An operation needs a session and none is loaded: log in or load one first."""


class SessionExpiredError(SessionError):
    """The server declared the session dead (expired or revoked refresh token, takedown).

    The session has been removed from memory and from the store; log in again.
    """

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        super().__init__(message)
        self.error = error
        self.status = status


class SessionNetworkError(SessionError):
    """A refresh failed on the network, a 5xx or a 429; the session is kept.

    ``retry_after`` is the number of seconds the server asked us to wait, if it said.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class RateLimitedError(SessionNetworkError):
    """A call not sent: a 429's wait, recorded in the store for every process, still runs.

    ``until`` is when the wait ends (Unix time), ``retry_after`` the seconds
    left, ``record`` the store entry that holds the wait. The server answered;
    it was not unreachable.
    """

    def __init__(self, message: str, *, until: float, retry_after: float, record: str) -> None:
        super().__init__(message, status=429, retry_after=retry_after)
        self.until = until
        self.record = record


class CorruptSessionError(SessionError):
    """A stored session that is not a valid session document; names the file."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class SessionStringError(SessionError, ValueError):
    """A MarshalX session string that cannot be used: wrong shape, or a PDS that is not http(s).

    The message names the fault, never a token.
    """


class MalformedTokenError(SessionError, ValueError):
    """A JWT that cannot be decoded (not three base64url parts of JSON, or no numeric exp)."""


class XrpcError(SessionError):
    """An XRPC call answered with an error: carries the HTTP status, error name and message."""

    def __init__(self, status: int, error: str | None, message: str | None, *, nsid: str) -> None:
        self.status = status
        self.error = error
        self.message = message
        self.nsid = nsid
        #: seconds the server asked to wait (429), when it said
        self.retry_after: float | None = None
        text = f"{nsid} failed with HTTP {status}"
        if error:
            text += f" {error}"
        if message:
            text += f": {message}"
        super().__init__(text)


class XrpcNetworkError(SessionNetworkError):
    """An XRPC call (not a refresh) could not reach the server; the session is kept."""


class OAuthError(SessionError):
    """Base class of every ATProto OAuth authorization error."""


class OAuthResolutionError(OAuthError):
    """Discovery or verification failed: a handle, DID document, PDS or authorization
    server did not resolve, or did not match what it must (names the step and the value).

    ``unavailable`` is true when a service did not answer usefully (unreachable,
    5xx, 429): that says nothing about the account, unlike a mismatch.
    """

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


class OAuthCallbackError(OAuthError):
    """The redirect back from the authorization server cannot be accepted: an unknown,
    expired or reused ``state``, an ``iss`` that is not the issuer asked, or ``error=``.

    ``error`` holds the server's error code when the redirect carried one
    (``access_denied`` when the user declined).
    """

    def __init__(self, message: str, *, error: str | None = None) -> None:
        super().__init__(message)
        self.error = error


class OAuthTokenError(OAuthError):
    """The authorization server's PAR or token endpoint refused a request.

    ``error`` is its OAuth error code (``invalid_grant``, ``invalid_client``, ...),
    ``status`` the HTTP status.
    """

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        super().__init__(message)
        self.error = error
        self.status = status
