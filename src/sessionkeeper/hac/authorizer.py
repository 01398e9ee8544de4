"""How a HAC session signs a console request, and which answers refuse it.

The call loop (`sessionkeeper.core.call_loop`) drives this authorizer as
it drives the ATProto ones: a session's ``JSESSIONID`` and route cookie, its
CSRF token as a header (and in the form, for the pages that read it there),
then the client's gate; the login page, a redirect to it, or 401/403/405 is
HAC's verdict that the session (or its CSRF token) is dead.

Imported with the HTTP stack, on the first client.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from sessionkeeper.hac.session import SessionMetadata
from sessionkeeper.hac.transport import HacGate, is_dead_session, session_cookies

#: Request extension: the form of a page that reads the CSRF token from its body.
CSRF_FORM = "sessionkeeper.hac.csrf_form"
#: Request extension: a string only a real result page holds (see ``is_dead_session``).
RESULT_MARKER = "sessionkeeper.hac.result_marker"
#: Request extension the authorizer sets on the request it was given: the session that
#: signed its last sending (what the answer the call returns was made with).
SIGNED_WITH = "sessionkeeper.hac.session"


def signed_with(request: httpx.Request) -> SessionMetadata:
    """The session that signed the last sending of ``request``."""
    session: SessionMetadata = request.extensions[SIGNED_WITH]
    return session


class HacAuthorizer:
    """HAC sessions: cookies and the CSRF token on each request; the login page refuses."""

    def __init__(self, gate: HacGate) -> None:
        self._gate = gate

    def send(
        self, request: httpx.Request, session: SessionMetadata
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response]:
        """Sign ``request`` with ``session``, pass the gate, send once."""
        request.extensions[SIGNED_WITH] = session
        response = yield self._gate.apply(self._sign(request, session))
        return response

    def rejected(self, response: httpx.Response) -> bool:
        """HAC's dead-session answer (a result page that echoes the login form is not one)."""
        return is_dead_session(response, response.request.extensions.get(RESULT_MARKER))

    @staticmethod
    def _sign(request: httpx.Request, session: SessionMetadata) -> httpx.Request:
        form = request.extensions.get(CSRF_FORM)
        if form is not None:
            # The token is part of the body: a replay with a renewed session needs a new one.
            request = httpx.Request(
                request.method,
                request.url,
                headers=[
                    (name, value)
                    for name, value in request.headers.multi_items()
                    if name.lower() != "content-length"
                ],
                data={**form, "_csrf": session.csrf_token},
                extensions=dict(request.extensions),
            )
        request.headers["Cookie"] = session_cookies(session).header()
        request.headers["X-CSRF-TOKEN"] = session.csrf_token
        request.headers["X-Requested-With"] = "XMLHttpRequest"
        return request


__all__ = ["CSRF_FORM", "RESULT_MARKER", "SIGNED_WITH", "HacAuthorizer", "signed_with"]
