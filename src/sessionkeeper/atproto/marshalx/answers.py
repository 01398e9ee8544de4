"""The answers a MarshalX client expects, made from what the manager did.

MarshalX installs the pair of a refreshSession answer and raises its own
errors from XRPC error answers, so a refresh answered by the manager (or
failed in it) is translated into the HTTP answer the server would have given.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from sessionkeeper.atproto.errors import (
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
    XrpcError,
)
from sessionkeeper.atproto.password.flows import session_from_answer
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.atproto.xrpc import json_value

logger = logging.getLogger(__name__)


def json_answer(request: httpx.Request, status: int, body: Any, **headers: str) -> httpx.Response:
    """An XRPC answer with a JSON body."""
    return httpx.Response(
        status,
        content=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8", **headers},
        request=request,
    )


def session_answer(request: httpx.Request, session: AtpSessionData) -> httpx.Response:
    """A refreshSession answer carrying ``session``: MarshalX installs it as the new pair."""
    return json_answer(request, 200, session.to_json_dict())


def deleted_answer(request: httpx.Request) -> httpx.Response:
    """deleteSession's answer: 200 without a body (MarshalX reads it as ``True``)."""
    return httpx.Response(200, request=request)


def failure_answer(request: httpx.Request, exc: SessionError) -> httpx.Response:
    """The XRPC error answer a failed refresh means to MarshalX (it raises its own error).

    A refresh that got no answer at all becomes a transport error, as the
    network's own failure would have been.
    """
    if isinstance(exc, SessionExpiredError):
        body = {"error": exc.error or "ExpiredToken", "message": str(exc)}
        return json_answer(request, exc.status or 400, body)
    if isinstance(exc, SessionNetworkError):
        if exc.status is None:
            raise httpx.ConnectError(str(exc), request=request) from exc
        wait = {"Retry-After": str(round(exc.retry_after))} if exc.retry_after else {}
        return json_answer(
            request, exc.status, {"error": "Unavailable", "message": str(exc)}, **wait
        )
    if isinstance(exc, XrpcError):
        body = {"error": exc.error or "Failed", "message": exc.message or str(exc)}
        return json_answer(request, exc.status, body)
    return json_answer(request, 400, {"error": "SessionError", "message": str(exc)})


def answered_session(response: httpx.Response, nsid: str) -> AtpSessionData | None:
    """The session a successful createSession/refreshSession answer carries, if any."""
    if not response.is_success:
        return None
    try:
        session, _ = session_from_answer(json_value(response.content), where=nsid)
    except (ValueError, SessionError):
        logger.warning("%s answered without a session document; not stored", nsid)
        return None
    return session


__all__ = [
    "answered_session",
    "deleted_answer",
    "failure_answer",
    "json_answer",
    "session_answer",
]
