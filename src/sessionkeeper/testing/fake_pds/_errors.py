"""The XRPC error answer: an HTTP status, an error name and a message."""

from __future__ import annotations

from collections.abc import Mapping

from sessionkeeper.errors import SessionkeeperError


class XrpcError(SessionkeeperError):
    """An error answer ``{"error": name, "message": text}`` with its HTTP status.

    Raised inside the fake's method implementations and turned into a response
    by the dispatcher, so every error leaves the server in the same shape.
    """

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, str]:
        """The JSON body the reference PDS sends for this error."""
        return {"error": self.error, "message": self.message}


def invalid_request(message: str) -> XrpcError:
    """400 ``InvalidRequest``: the request itself is malformed."""
    return XrpcError(400, "InvalidRequest", message)


def invalid_token(message: str) -> XrpcError:
    """400 ``InvalidToken``: a token that is not valid for this call."""
    return XrpcError(400, "InvalidToken", message)


def expired_token(message: str) -> XrpcError:
    """400 ``ExpiredToken``: a token past ``exp`` or revoked."""
    return XrpcError(400, "ExpiredToken", message)


def auth_missing() -> XrpcError:
    """401 ``AuthMissing``: no bearer token where one is required."""
    return XrpcError(401, "AuthMissing", "Authentication Required")


def account_takedown() -> XrpcError:
    """401 ``AccountTakedown``: the account was taken down."""
    return XrpcError(401, "AccountTakedown", "Account has been taken down")
