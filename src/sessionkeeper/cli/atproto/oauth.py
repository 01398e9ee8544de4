"""The OAuth half of ``sessionkeeper atproto``: ``login --oauth`` and OAuth sessions elsewhere.

``login --oauth HANDLE`` signs in through the browser with a loopback redirect
on 127.0.0.1 (the URL is printed too); ``login --oauth HANDLE --remote`` signs
in from a shell whose machine the browser cannot reach: the URL is opened
anywhere, and the address the browser was finally sent to (and could not
load) is pasted back on stdin;
``sessions list``, ``whoami``, ``call`` and ``logout`` work on OAuth sessions
through the helpers here. ``$ATP_HANDLE_RESOLVER`` (an XRPC service answering
``resolveHandle``) and ``$ATP_PLC_DIRECTORY`` change how handles and DIDs
resolve; by default DNS, ``https://<handle>/.well-known`` and plc.directory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sessionkeeper.atproto.errors import NoSessionError, OAuthCallbackError
from sessionkeeper.atproto.listing import stored_oauth_sessions
from sessionkeeper.stores.base import Store

if TYPE_CHECKING:
    # Loaded when a command uses OAuth: a password session's commands never pay for it.
    from sessionkeeper.atproto import OAuthClient, OAuthSession, OAuthSessionManager


def oauth_client(store: Store) -> OAuthClient:
    """The CLI's loopback OAuth client on ``store``."""
    from sessionkeeper.atproto import OAuthClient

    return OAuthClient(store=store)  # it reads $ATP_HANDLE_RESOLVER and $ATP_PLC_DIRECTORY


REMOTE_INSTRUCTIONS = """Open this URL in a browser on any machine and sign in:
  {url}
The browser then tries to open http://127.0.0.1/callback?... and fails: that is expected.
Copy that whole address from the address bar and paste it here, then press Enter:"""


def read_pasted_redirect(url: str) -> str:
    """Show ``url`` (stderr) and read the redirect address the user pastes back (stdin)."""
    print(REMOTE_INSTRUCTIONS.format(url=url), file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line.strip():
        raise OAuthCallbackError("no redirect address was pasted on stdin; sign in again")
    return line


def oauth_login(
    store: Store, handle: str, *, open_browser: bool, timeout: float, remote: bool = False
) -> OAuthSession:
    """Sign ``handle`` in through the browser (here, or ``remote``ly); return the session."""
    with oauth_client(store) as client:
        if remote:
            manager = client.login_remote(handle, read_pasted_redirect)
        else:
            manager = client.login(handle, open_browser=open_browser, timeout=timeout)
        with manager:
            session = manager.session
            assert session is not None  # callback stores and makes the session current
            return session


@contextmanager
def open_oauth_manager(store: Store, did: str) -> Iterator[OAuthSessionManager | None]:
    """The CLI client's manager of ``did``'s OAuth session, or ``None`` when it has none.

    Built by `OAuthClient.restore`, so every refresh re-verifies the
    DID -> PDS -> issuer chain with the CLI's resolver settings first.
    """
    with oauth_client(store) as client:
        try:
            manager = client.restore(did)
        except NoSessionError:
            yield None
            return
        with manager:
            yield manager


def oauth_rows(store: Store, current: str | None) -> list[dict[str, Any]]:
    """The ``sessions list --json`` rows of the OAuth sessions."""
    return [
        {
            "kind": "oauth",
            "handle": s.handle,
            "did": s.did,
            "scope": s.scope,
            "issuer": s.issuer,
            "access_expires_at": s.expires_at,
            "current": s.did == current,
        }
        for s in stored_oauth_sessions(store)
    ]
