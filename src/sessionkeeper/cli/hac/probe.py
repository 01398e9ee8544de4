"""Whether HAC still accepts a cached session, asked without logging in (``hac status``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sessionkeeper.hac.errors import HacClientError
from sessionkeeper.hac.probe import LoginNeededError, NoLoginAuth, still_accepted

if TYPE_CHECKING:
    from sessionkeeper.cli.hac.context import Options, Target
    from sessionkeeper.hac.session import SessionManager, SessionMetadata


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
            return still_accepted(client)
        except HacClientError as exc:
            # The client names the request it sent ("update data: cannot reach HAC at ..."),
            # which the user of ``hac status`` never asked for: name what status was doing.
            raise HacClientError(
                str(exc).replace("update data: ", "checking the session: ", 1)
            ) from exc


__all__ = ["LoginNeededError", "NoLoginAuth", "accepted"]
