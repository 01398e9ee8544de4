"""Ask HAC whether it still takes a cached session, without ever logging in.

One read-only GET that needs a session (the system update data; the update
log is readable without one while HAC initialises). The client recognises a
dead session as it always does (a redirect to the login page, 401/403/405,
the login page itself) and then asks its auth handler for credentials, which
`NoLoginAuth` refuses. A session HAC took has its idle timer restarted
on the server: that is how ``hac status`` observes and ``sessionkeeper
keepalive`` keeps one alive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.hac.auth import AuthHandler

if TYPE_CHECKING:
    import httpx

    from sessionkeeper.hac.client import HacClient


class LoginNeededError(SessionkeeperError):
    """The client wanted to log in: the server no longer accepts the cached session."""


class NoLoginAuth(AuthHandler):
    """An auth handler that refuses to log in, so a probe can only observe."""

    def __init__(self, username: str) -> None:
        self.username = username

    def apply_auth(self, request: httpx.Request) -> httpx.Request:
        """Nothing per request: the session cookie carries the login."""
        return request

    def get_initial_credentials(self) -> dict[str, str]:
        """Called only when a login would happen: stop there."""
        raise LoginNeededError("the session is no longer accepted")


def still_accepted(client: HacClient) -> bool:
    """Whether HAC takes the session ``client`` holds: one request, never a login.

    ``client`` is built with `NoLoginAuth` and given its session
    (``use_session``).
    """
    try:
        client.get_update_data()
    except LoginNeededError:
        return False
    return True


__all__ = ["LoginNeededError", "NoLoginAuth", "still_accepted"]
