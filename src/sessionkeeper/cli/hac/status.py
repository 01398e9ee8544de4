"""``hac status``: which HAC, which user, how old the session is, and whether HAC still takes it.

Like ``gh auth status``: one read-only request (a GET of the system update
data, which needs a session) answers whether the server still accepts the
cached session. It never logs in and never changes the cache: a session HAC
no longer accepts is reported, with the ``hac session start`` line that
replaces it, and the exit code is 1.
"""

from __future__ import annotations

import typer

from sessionkeeper.cli.hac import output as out
from sessionkeeper.cli.hac.context import (
    chosen_session,
    no_session_error,
    start_command,
)
from sessionkeeper.cli.hac.errors import CliError, reported
from sessionkeeper.cli.hac.params import EndpointName, Environment, JsonOutput
from sessionkeeper.errors import SessionkeeperError


def status_command(
    ctx: typer.Context,
    environment: Environment = None,
    endpoint: EndpointName = None,
    json_output: JsonOutput = False,
) -> None:
    """Show the environment, endpoint, user and session age, and whether HAC still accepts it."""
    with reported(json_output=json_output):
        options, target, manager, session = chosen_session(ctx, environment, endpoint)
        if session is None:
            raise no_session_error(options, target)
        if not json_output:
            # What the cache knows comes first, so a HAC that does not answer still
            # leaves the user knowing which session and URL were asked about.
            out.line(f"Environment: {target.environment}")
            out.line(f"Endpoint:    {target.endpoint}")
            out.line(f"URL:         {target.session_url}")
            out.line(f"User:        {session.username}")
            age, idle = session.age_seconds, session.idle_seconds
            out.line(
                f"Session:     {out.format_duration(age)} old, idle {out.format_duration(idle)}"
            )
        # Only now: the probe loads the HAC client (httpx), which ``hac --help`` never needs.
        from sessionkeeper.cli.hac.probe import accepted

        try:
            ok = accepted(options, target, manager, session)
        except SessionkeeperError:
            if not json_output:
                out.line("Accepted:    unknown (see the error below)")
            raise
        if json_output:
            out.emit_json(
                {
                    "environment": target.environment,
                    "endpoint": target.endpoint,
                    "url": target.session_url,
                    "username": session.username,
                    "created_at": session.created_at_formatted,
                    "age_seconds": session.age_seconds,
                    "idle_seconds": session.idle_seconds,
                    "accepted": ok,
                }
            )
        else:
            out.line(f"Accepted:    {'yes' if ok else 'no'}")
        if not ok:
            raise CliError(
                f"HAC no longer accepts the session of {session.username!r} for "
                f"'{target.key}'; start a new one:\n"
                f"  {start_command(options, target, session.username)}",
                kind="session_not_accepted",
                shown=json_output,
            )


__all__ = ["status_command"]
