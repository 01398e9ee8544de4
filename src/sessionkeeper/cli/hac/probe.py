"""Whether HAC still accepts a cached session, asked without logging in (``hac status``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.errors import HacClientError

if TYPE_CHECKING:
    import httpx

    from sessionkeeper.cli.hac.context import Options, Target
    from sessionkeeper.hac.session import SessionManager, SessionMetadata


class LoginNeededError(SessionkeeperError):
    """The client wanted to log in: the server no longer accepts the cached session."""


class NoLoginAuth(AuthHandler):
    """An auth handler that refuses to log in, so the probe can only observe."""

    def __init__(self, username: str) -> None:
        self.username = username

    def apply_auth(self, request: httpx.Request) -> httpx.Request:
        """Nothing per request: the session cookie carries the login."""
        return request

    def get_initial_credentials(self) -> dict[str, str]:
        """Called only when a login would happen: stop there."""
        raise LoginNeededError("the session is no longer accepted")


def accepted(
    options: Options, target: Target, manager: SessionManager, session: SessionMetadata
) -> bool:
    """Whether HAC still takes ``session``: one request, no login, the cache untouched.

    The request is a read-only GET that needs a session (the system update
    data; the update log is readable without one while HAC initialises).

    The client recognises a dead session as it always does (a redirect to the
    login page, 401/403/405, the login page itself) and then asks the auth
    handler for credentials, which this one refuses.
    """
    from sessionkeeper.cli.hac.waiting import watched
    from sessionkeeper.hac.client import HacClient

    with (
        HacClient(
            target.url,
            NoLoginAuth(session.username),
            environment=target.key,
            timeout=target.timeout,
            ignore_ssl=target.ignore_ssl,
            quiet=not options.verbose,
            session_manager=manager,
        ) as client,
        watched(client, session.username),
    ):
        client.use_session(session)
        try:
            client.get_update_data()
        except LoginNeededError:
            return False
        except HacClientError as exc:
            # The client names the request it sent ("update data: cannot reach HAC at ..."),
            # which the user of ``hac status`` never asked for: name what status was doing.
            raise HacClientError(
                str(exc).replace("update data: ", "checking the session: ", 1)
            ) from exc
    return True


__all__ = ["LoginNeededError", "NoLoginAuth", "accepted"]
