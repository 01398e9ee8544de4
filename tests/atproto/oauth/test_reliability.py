"""OAuth sessions under faults: clocks that differ, lost writes, client errors, foreign hosts,
an unreachable PLC directory and token answers with unusable ``expires_in``.

Each test runs the real managers against the shipped fake authorization server and
PDS over HTTP on 127.0.0.1; what the server saw is counted by the server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import OAuthTokenError, SessionError, SessionNetworkError
from sessionkeeper.atproto.identity import IdentityResolver, issuer_check
from sessionkeeper.atproto.oauth.dpop import generate_dpop_jwk
from sessionkeeper.atproto.oauth.manager import AsyncOAuthSessionManager, OAuthSessionManager
from sessionkeeper.atproto.oauth.session import OAuthSession, oauth_name_for_did
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing._server import LoopbackServer
from sessionkeeper.testing.fake_oauth import FakeOAuth, thumbprint_of
from sessionkeeper.testing.fake_pds._http import (
    HttpRequest,
    HttpResponse,
    XrpcHandler,
    json_response,
)
from tests.atproto_fixtures import FlakyStore

pytestmark = pytest.mark.timeout(60)

DID = "did:plc:oauthalice"
CLIENT_ID = "https://app.example/client-metadata.json"
GET_SESSION = "com.atproto.server.getSession"
RESOURCE = f"/xrpc/{GET_SESSION}"

#: Marks "send the server's own answer" for :attr:`Server.expires_in`.
AS_IS = object()


class Server(FakeOAuth):
    """The shipped fake with a web client registered, and two faults of its token endpoint."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.register_client(
            {
                "client_id": CLIENT_ID,
                "redirect_uris": ["https://app.example/callback"],
                "scope": "atproto transition:generic",
                "token_endpoint_auth_method": "none",
            }
        )
        #: What token answers carry as ``expires_in`` (``None``: left out, as RFC 6749 allows).
        self.expires_in: Any = AS_IS
        #: ``(status, error)`` the token endpoint answers instead of working.
        self.refuse_client: tuple[int, str] | None = None
        #: The revocation endpoint answers 200 and revokes nothing (RFC 7009 allows silence).
        self.ignore_revocation = False

    def _issue(
        self, did: str, jkt: str, session: str, client_id: str, scope: str
    ) -> dict[str, Any]:
        answer = super()._issue(did, jkt, session, client_id, scope)
        if self.expires_in is None:
            del answer["expires_in"]
        elif self.expires_in is not AS_IS:
            answer["expires_in"] = self.expires_in
        return answer

    def token(self, form: dict[str, str], proof: str | None) -> tuple[int, Any, dict[str, str]]:
        if self.refuse_client is not None and form.get("grant_type") == "refresh_token":
            status, error = self.refuse_client
            self.count("refused-client")
            return status, {"error": error, "error_description": "client refused"}, {}
        return super().token(form, proof)

    def _revoke(self, form: dict[str, str], proof: str | None) -> tuple[int, Any, dict[str, str]]:
        if self.ignore_revocation:
            self.count("revoke-ignored")
            return 200, {}, self._nonce_header()
        return super()._revoke(form, proof)


@pytest.fixture
def server(clock: ManualClock) -> Iterator[Server]:
    with Server(clock) as fake:
        yield fake


def authorized(server: Server, now: float) -> OAuthSession:
    """A signed-in set, as a callback would store it, computed with the clock value ``now``."""
    key = generate_dpop_jwk()
    return OAuthSession.from_token_response(
        server.issue(DID, thumbprint_of(key)),
        issuer=server.url,
        token_endpoint=f"{server.url}/oauth/token",
        pds_url=server.url,
        client_id=CLIENT_ID,
        dpop_jwk=key,
        now=now,
        handle="alice.test",
        revocation_endpoint=f"{server.url}/oauth/revoke",
    )


def stored_refresh_token_at(directory: Path) -> str:
    token: str = json.loads((directory / oauth_name_for_did(DID)).read_text())["refreshToken"]
    return token


def stored_refresh_token(store: MemoryStore) -> str:
    raw = store.get(oauth_name_for_did(DID))
    assert raw is not None
    token: str = json.loads(raw)["refreshToken"]
    return token


# -- ordering: no local clock -------------------------------------------------------------


def test_a_set_rotated_on_a_machine_ten_minutes_behind_is_adopted_not_replayed(
    tmp_path: Path, server: Server, clock: ManualClock
) -> None:
    ahead, behind = ManualClock(clock.time()), ManualClock(clock.time() - 600)
    with (
        OAuthSessionManager(tmp_path, clock=ahead) as here,
        OAuthSessionManager(tmp_path, clock=behind) as there,
    ):
        here.store_session(authorized(server, ahead.time()))
        there.load_session(DID)
        rotated = there.refresh_token()  # its expiry, by its clock, is earlier than ours
        # Our access token died with that rotation: the 401 must make us adopt its set.
        assert here.query(GET_SESSION)["did"] == DID
        assert here.session is not None and here.session.refresh_token == rotated.refresh_token
    assert server.counts["refresh"] == 1 and server.counts["replay"] == 0


def test_without_expires_in_a_kept_rotation_is_never_traded_for_the_spent_stored_set(
    server: Server, clock: ManualClock
) -> None:
    server.expires_in = None  # RFC 6749 makes it optional: no expiry to order sets by
    store = FlakyStore()
    with OAuthSessionManager(None, store=store, clock=clock) as m:
        m.store_session(authorized(server, clock.time()))
        store.down = True
        kept = m.refresh_token()  # rotated; the write failed; the store holds the spent set
        store.down = False
        again = m.refresh_token()  # must refresh the kept set, not adopt the stored one
        assert again.refresh_token != kept.refresh_token
        assert m.query(GET_SESSION)["did"] == DID
        assert stored_refresh_token(store) == again.refresh_token
    assert server.counts["refresh"] == 2 and server.counts["replay"] == 0


def test_a_stored_document_without_generation_still_loads_and_refreshes(
    tmp_path: Path, server: Server, clock: ManualClock
) -> None:
    session = authorized(server, clock.time())
    document = session.to_json_dict()
    document.pop("generation")
    assert "lineage" not in document
    (tmp_path / oauth_name_for_did(DID)).write_text(json.dumps(document))
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        loaded = m.load_session(DID)
        assert loaded is not None and loaded.generation == 0
        fresh = m.refresh_token()
        assert fresh.generation == 1
    assert json.loads((tmp_path / oauth_name_for_did(DID)).read_text())["generation"] == 1


# -- a rotation whose write failed is written back ----------------------------------------


def test_a_set_that_could_not_be_stored_is_written_back_by_the_next_call(
    server: Server, clock: ManualClock
) -> None:
    store = FlakyStore()
    with OAuthSessionManager(None, store=store, clock=clock) as m:
        first = authorized(server, clock.time())
        m.store_session(first)
        store.down = True
        kept = m.refresh_token()
        assert stored_refresh_token(store) == first.refresh_token  # only in memory
        m.query(GET_SESSION)  # the store is still down: the call works, the write waits
        store.down = False
        assert m.query(GET_SESSION)["did"] == DID
        assert stored_refresh_token(store) == kept.refresh_token
    # Another holder restoring now refreshes the live token, not the spent one.
    with OAuthSessionManager(None, store=store, clock=clock) as other:
        other.load_session(DID)
        other.refresh_token()
        assert other.query(GET_SESSION)["did"] == DID
    assert server.counts["refresh"] == 2 and server.counts["replay"] == 0


def test_the_asyncio_manager_writes_back_a_set_it_could_not_store(
    server: Server, clock: ManualClock
) -> None:
    async def scenario() -> None:
        store = FlakyStore()
        async with AsyncOAuthSessionManager(None, store=store, clock=clock) as m:
            await m.store_session(authorized(server, clock.time()))
            store.down = True
            kept = await m.refresh_token()
            store.down = False
            assert (await m.query(GET_SESSION))["did"] == DID
            assert stored_refresh_token(store) == kept.refresh_token

    asyncio.run(scenario())


def test_a_write_back_never_replaces_a_newer_sign_in(server: Server, clock: ManualClock) -> None:
    store = FlakyStore()
    with (
        OAuthSessionManager(None, store=store, clock=clock) as m,
        OAuthSessionManager(None, store=store, clock=clock) as other,
    ):
        m.store_session(authorized(server, clock.time()))
        store.down = True
        m.refresh_token()
        store.down = False
        signed_in_again = authorized(server, clock.time())  # another sign-in, stored meanwhile
        other.store_session(signed_in_again)
        assert m.query(GET_SESSION)["did"] == DID  # its own set still works
        assert stored_refresh_token(store) == signed_in_again.refresh_token


# -- only invalid_grant ends the grant ----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"), [(401, "invalid_client"), (400, "unauthorized_client"), (401, "")]
)
def test_a_refresh_refused_for_the_client_keeps_the_session(
    tmp_path: Path, server: Server, clock: ManualClock, status: int, error: str
) -> None:
    session = authorized(server, clock.time())
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        seen: list[str] = []
        m.on_session_event(lambda e, s: seen.append(e.value))
        m.store_session(session)
        server.refuse_client = (status, error)
        with pytest.raises(OAuthTokenError) as refused:
            m.refresh_token()
        assert refused.value.status == status
        assert str(session.refresh_token) not in str(refused.value)
        assert m.session == session and m.list_sessions() == [DID]
        assert seen == ["create"]
        server.refuse_client = None
        assert m.refresh_token().refresh_token != session.refresh_token  # it was good all along
    assert server.counts["refused-client"] == 1 and server.counts["refresh"] == 1


# -- tokens go to their own PDS only ------------------------------------------------------


class Foreign(LoopbackServer):
    """Another host: records what each request carried and answers 401 to all."""

    handler_class = XrpcHandler

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict[str, str]] = []

    def handle_http(self, request: HttpRequest) -> HttpResponse:
        self.seen.append(dict(request.headers))
        return json_response(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": "DPoP"})


def test_auth_sends_no_token_to_a_foreign_host_and_its_401_rotates_nothing(
    tmp_path: Path, server: Server, clock: ManualClock
) -> None:
    session = authorized(server, clock.time())
    with Foreign() as foreign, OAuthSessionManager(tmp_path, clock=clock) as m:
        m.store_session(session)
        with httpx.Client(auth=m.auth) as client:
            answer = client.get(f"{foreign.url}/xrpc/{GET_SESSION}")
            assert answer.status_code == 401
            assert client.get(f"{server.url}{RESOURCE}").json()["did"] == DID
        headers = [{k.lower() for k in seen} for seen in foreign.seen]
        assert len(headers) == 1 and not headers[0] & {"authorization", "dpop"}
        assert m.session == session
    assert server.counts["refresh"] == 0 and server.counts[RESOURCE] >= 1


# -- an unreachable PLC directory is a network error --------------------------------------


def test_an_unreachable_plc_directory_in_the_last_minute_leaves_the_valid_token_working(
    tmp_path: Path, server: Server, clock: ManualClock
) -> None:
    with Foreign() as gone:
        dead_plc = gone.url  # a port that was just closed: connection refused
    check = issuer_check(IdentityResolver(plc_directory=dead_plc))
    with OAuthSessionManager(tmp_path, clock=clock, issuer_check=check) as m:
        seen: list[str] = []
        m.on_session_event(lambda e, s: seen.append(e.value))
        m.store_session(authorized(server, clock.time()))
        clock.advance(3600 - 30)  # within the refresh margin; the token is still valid
        assert m.query(GET_SESSION)["did"] == DID
        assert seen == ["create", "network-error"] and m.list_sessions() == [DID]
        clock.advance(60)  # now expired: nothing valid is left to fall back to
        with pytest.raises(SessionNetworkError, match="unreachable"):
            m.query(GET_SESSION)
        assert m.list_sessions() == [DID]
    assert server.counts["refresh"] == 0


# -- expires_in that cannot be used -------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (10**400, 86400.0),
        (1e308 * 10, 86400.0),
        (-5, None),
        (0, None),
        (math.nan, None),
        ("3600", None),
        (True, None),
        (None, None),
    ],
    ids=["huge-int", "infinite", "negative", "zero", "nan", "string", "bool", "absent"],
)
def test_an_unusable_expires_in_never_loses_the_rotated_set(
    server: Server,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    expires_in: object,
    expected: float | None,
) -> None:
    store = MemoryStore()
    with OAuthSessionManager(None, store=store, clock=clock) as m:
        m.store_session(authorized(server, clock.time()))
        server.expires_in = expires_in
        with caplog.at_level(logging.WARNING):
            fresh = m.refresh_token()
        assert stored_refresh_token(store) == fresh.refresh_token  # stored, not dropped
        assert fresh.expires_at == (None if expected is None else clock.time() + expected)
        for _ in range(2):
            assert m.query(GET_SESSION)["did"] == DID  # no refresh on every call
        m.refresh_token()  # and the rotated set refreshes like any other
    assert server.counts["refresh"] == 2 and server.counts["replay"] == 0
    assert all("10000000000" not in record.getMessage() for record in caplog.records)


# -- logout proves the revocation, or says it could not ------------------------------------


def test_logout_proves_the_revocation_with_a_token_the_pds_accepted(
    tmp_path: Path, server: Server, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    session = authorized(server, clock.time())
    with OAuthSessionManager(tmp_path, clock=clock) as m, caplog.at_level(logging.WARNING):
        m.store_session(session)
        m.logout()
        assert m.list_sessions() == []
    assert server.counts[RESOURCE] - server.counts["resource-nonce"] == 2  # before, after
    assert not server.session_alive(str(session.refresh_token))
    assert not [r for r in caplog.records if "could not be verified" in r.getMessage()]


def test_logout_with_an_expired_access_token_proves_the_revocation_with_a_renewed_one(
    tmp_path: Path, server: Server, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    session = authorized(server, clock.time())
    with OAuthSessionManager(tmp_path, clock=clock) as m, caplog.at_level(logging.WARNING):
        m.store_session(session)
        clock.advance(3601)  # the PDS refuses the access token now, revoked or not
        m.logout()
        assert m.list_sessions() == []
    assert server.counts["refresh"] == 1 and server.counts["revoked"] == 1
    assert not server.session_alive(str(session.refresh_token))
    assert not [r for r in caplog.records if "could not be verified" in r.getMessage()]


def test_logout_with_an_expired_token_and_a_revocation_that_did_nothing_keeps_the_session(
    tmp_path: Path, server: Server, clock: ManualClock
) -> None:
    session = authorized(server, clock.time())
    server.ignore_revocation = True  # answers success, revokes nothing
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        m.store_session(session)
        clock.advance(3601)  # a 401 now would "prove" a revocation that never happened
        with pytest.raises(SessionError, match="still accepts"):
            m.logout()
        assert m.list_sessions() == [DID]
    # The renewed set the probe used is the stored one: nothing was lost.
    assert server.session_alive(stored_refresh_token_at(tmp_path))


def test_logout_says_the_revocation_could_not_be_verified_when_no_valid_token_can_be_had(
    tmp_path: Path, server: Server, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    session = authorized(server, clock.time())
    with OAuthSessionManager(tmp_path, clock=clock) as m, caplog.at_level(logging.WARNING):
        m.store_session(session)
        clock.advance(3601)
        server.refuse_client = (401, "invalid_client")  # no renewal to probe with
        m.logout()
        assert m.list_sessions() == []
    warned = [r.getMessage() for r in caplog.records if "could not be verified" in r.getMessage()]
    assert len(warned) == 1 and DID in warned[0]
    assert str(session.access_token) not in warned[0]
    assert not server.session_alive(str(session.refresh_token))  # revoked all the same


def test_logout_keeps_a_session_the_pds_still_accepts_after_the_revocation(
    tmp_path: Path, server: Server, clock: ManualClock
) -> None:
    server.ignore_revocation = True
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        m.store_session(authorized(server, clock.time()))
        with pytest.raises(SessionError, match="still accepts"):
            m.logout()
        assert m.list_sessions() == [DID] and m.session is not None
