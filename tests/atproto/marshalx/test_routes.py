"""Which requests of a MarshalX client are intercepted, decided on real tokens from FakePds."""

from __future__ import annotations

from pathlib import Path

import httpx

from sessionkeeper.atproto import AtpSessionData, PersistentSessionManager
from sessionkeeper.atproto.marshalx.routes import Action, bearer_token, decide, route
from sessionkeeper.atproto.marshalx.transport import servers
from sessionkeeper.clock import ManualClock
from sessionkeeper.testing.fake_pds import FakePds

CREATE = "com.atproto.server.createSession"
REFRESH = "com.atproto.server.refreshSession"
DELETE = "com.atproto.server.deleteSession"
PROFILE = "app.bsky.actor.getProfile"


def test_only_the_session_changing_methods_of_the_managers_servers_are_intercepted(
    tmp_path: Path, pds: FakePds, clock: ManualClock, alice: str
) -> None:
    with PersistentSessionManager(tmp_path, pds.url, clock=clock) as manager:
        old = manager.login("alice.test", "alice-pass")
        session = manager.refresh_token()
        ours = servers(manager)

    def decided(
        nsid: str,
        token: str | None,
        *,
        known: AtpSessionData | None = session,
        host: str = pds.url,
        scheme: str = "Bearer",
    ) -> tuple[Action, str | None]:
        headers = {"Authorization": f"{scheme} {token}"} if token else {}
        request = httpx.Request("POST", f"{host}/xrpc/{nsid}", headers=headers)
        where = route(request, ours)
        return decide(where, known if where.account else None, bearer_token(request)), where.account

    assert decided(CREATE, None) == (Action.KEEP, None)
    assert decided(PROFILE, session.access_jwt) == (Action.CALL, alice)
    assert decided(DELETE, session.access_jwt) == (Action.LOGOUT, alice)
    assert decided(REFRESH, session.refresh_jwt) == (Action.REFRESH, alice)
    # A pair the manager already replaced is answered with the newer one.
    assert decided(REFRESH, old.refresh_jwt) == (Action.ANSWER, alice)
    # Another host's requests go as they are, even a login or a token of ours.
    for nsid in (CREATE, REFRESH, DELETE, PROFILE):
        assert decided(nsid, session.access_jwt, host="https://elsewhere.example") == (
            Action.FORWARD,
            None,
        )
    # No token, a token that is not a session JWT, or another scheme: not the session's.
    assert decided(PROFILE, None) == (Action.FORWARD, None)
    assert decided(PROFILE, "not-a-jwt") == (Action.FORWARD, None)
    assert decided(PROFILE, session.access_jwt, scheme="DPoP") == (Action.FORWARD, None)
    # An account the manager has no session of: the server decides, a refresh is kept.
    assert decided(PROFILE, session.access_jwt, known=None) == (Action.FORWARD, alice)
    assert decided(REFRESH, session.refresh_jwt, known=None) == (Action.KEEP, alice)
