"""What the commands add to an error so its fix can be pasted: the URL tried, the next command.

A hint is written from what the failing invocation knew (the URL it used, the
options it was given), so the line it prints runs as it stands.
"""

from __future__ import annotations

import json
import shlex
import time

import typer

from sessionkeeper.atproto.home import FROM_DEFAULT, FROM_FLAG, STORE_ENV
from sessionkeeper.core.lifetime import iso
from sessionkeeper.redaction import redact_url

#: Words in a TLS failure that mean the server answered in plain HTTP.
_PLAIN_HTTP_SIGNS = ("WRONG_VERSION_NUMBER", "record layer failure", "wrong version number")


def unreachable(reason: str, url: str, *, default_of: str | None = None) -> str:
    """A connection failure that names the URL, says when it was a default, and hints at http://."""
    shown = redact_url(url)
    message = reason if shown in reason else f"cannot reach {shown}: {reason}"
    if default_of:
        message += f" ({shown} is the default service; {default_of})"
    if url.lower().startswith("https://") and any(s in reason for s in _PLAIN_HTTP_SIGNS):
        plain = "http://" + shown.split("://", 1)[1]
        message += f"; the server speaks plain HTTP, not TLS: use {plain}"
    return message


def answered(reason: str, url: str | None, *, status: int | None, wait: float | None = None) -> str:
    """A refusal from a server that did answer (a 429, a 5xx, a wait it asked for), with its URL.

    Never "cannot reach": the fix is to wait or to try later, not to check the
    address or the network. ``wait``: the seconds the server asked for, when
    ``reason`` does not say them already.
    """
    shown = redact_url(url) if url else "the server"
    if status == 429:
        message = f"rate-limited by {shown}: {reason}"
    elif status is not None:
        message = f"{shown} answered HTTP {status}: {reason}"
    else:
        message = f"{shown} asked to wait: {reason}"
    if wait:
        until = iso(time.time() + wait)
        message += f"; it asked to wait {wait:.0f} s (until {until})"
    return message


def command(*words: str | None) -> str:
    """A shell command line from its words (``None`` words left out), each quoted if it must be."""
    return " ".join(shlex.quote(w) for w in words if w is not None)


def store_option(url: str | None) -> list[str]:
    """``["--store", URL]`` for a hint, or nothing when the URL came from the environment.

    A URL holding a password is shown redacted: such a hint cannot be pasted as
    it stands, but no secret reaches the terminal.
    """
    return [] if not url else ["--store", redact_url(url)]


def store_reason(source: str, detail: str) -> str:
    """Why `sessionkeeper.atproto.home.choose_store` chose a store, in the words users see."""
    if source == FROM_FLAG:
        return f"given with {detail}"
    if source == FROM_DEFAULT:
        return f"the default: {detail}; set {STORE_ENV} or pass --store to choose another"
    return f"from the variable {detail}"


def json_error(error: str, message: str) -> None:
    """Print ``{"error": ..., "message": ...}`` on stdout, for ``--json`` callers."""
    typer.echo(json.dumps({"error": error, "message": message}))
