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
import time
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


def _stored_for(store: Store, identifier: str) -> list[OAuthSession]:
    """The stored OAuth sessions whose DID or handle is ``identifier`` (``@`` and case aside)."""
    wanted = identifier.strip().removeprefix("@").lower()
    return [
        session
        for session in stored_oauth_sessions(store)
        if wanted in {session.did.lower(), (session.handle or "").lower()}
    ]


def reusable_oauth(store: Store, identifier: str) -> OAuthSession | None:
    """``identifier``'s stored OAuth session (DID or handle) while it still works, else ``None``.

    A session the kind's rule calls dead is skipped without a request; one
    whose access token expired is refreshed first (through the single
    flight), and ``None`` is returned when the issuer has ended the grant.
    """
    from sessionkeeper.atproto.errors import SessionExpiredError
    from sessionkeeper.atproto.oauth.kind import OAUTH

    now = time.time()
    for session in _stored_for(store, identifier):
        if OAUTH.dead(session, now) is not None:
            continue
        with open_oauth_manager(store, session.did) as manager:
            current = None if manager is None else manager.session
            if manager is None or current is None:
                return None
            if current.expires_at is None or current.expires_at > now:
                return current
            try:
                return manager.refresh_token()
            except SessionExpiredError:
                return None
    return None


def revoke_oauth(store: Store, identifier: str) -> None:
    """Revoke and remove ``identifier``'s stored OAuth session, if there is one (for --force).

    As a forced password login does, a revocation that fails is only warned
    about: the sign-in that follows replaces the session, and the old grant
    lapses on its own.
    """
    from sessionkeeper.atproto.errors import SessionError

    for session in _stored_for(store, identifier):
        with open_oauth_manager(store, session.did) as manager:
            if manager is None:
                continue
            try:
                manager.logout()
            except SessionError as exc:
                print(
                    f"warning: could not revoke the stored session of {session.did} ({exc}); "
                    "signing in anew, the old grant lapses on its own",
                    file=sys.stderr,
                )


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
            "refresh_expires_at": s.refresh_expires_at,
            "session_ends_at": s.session_ends_at,
            "current": s.did == current,
        }
        for s in stored_oauth_sessions(store)
    ]
