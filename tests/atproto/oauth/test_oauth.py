"""OAuth sessions with DPoP: persisted, shared, refreshed once, against a fake OAuth PDS."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import jwt
import pytest

from sessionkeeper.atproto import (
    AtpSessionEvent,
    NoSessionError,
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
)
from sessionkeeper.atproto.oauth.client_auth import ClientCredentials
from sessionkeeper.atproto.oauth.dpop import generate_dpop_jwk, jwk_thumbprint
from sessionkeeper.atproto.oauth.manager import AsyncOAuthSessionManager, OAuthSessionManager
from sessionkeeper.atproto.oauth.session import OAuthSession, oauth_name_for_did
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores.errors import StoreUnavailableError
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.testing.fake_oauth import FakeOAuth, thumbprint_of
from sessionkeeper.testing.redis_server import RedisServer

pytestmark = pytest.mark.timeout(60)

DID = "did:plc:oauthalice"
CLIENT_ID = "https://app.example/client-metadata.json"


class FakeOAuthPds(FakeOAuth):
    """The shipped fake OAuth server with this file's web client registered."""

    def __init__(self, clock: ManualClock, *, lifetime: float = 3600.0) -> None:
        super().__init__(clock, lifetime=lifetime)
        self.register_client(
            {
                "client_id": CLIENT_ID,
                "redirect_uris": ["https://app.example/callback"],
                "scope": "atproto transition:generic",
                "token_endpoint_auth_method": "none",
            }
        )


@pytest.fixture
def server(clock: ManualClock) -> Iterator[FakeOAuthPds]:
    with FakeOAuthPds(clock) as fake:
        yield fake


def authorized(server: FakeOAuthPds, clock: ManualClock) -> OAuthSession:
    key = generate_dpop_jwk()
    answer = server.issue(DID, jwk_thumbprint({k: key[k] for k in ("kty", "crv", "x", "y")}))
    return OAuthSession.from_token_response(
        answer,
        issuer=server.url,
        token_endpoint=f"{server.url}/oauth/token",
        pds_url=server.url,
        client_id=CLIENT_ID,
        dpop_jwk=key,
        now=clock.time(),
        handle="alice.test",
    )


GET_SESSION = "com.atproto.server.getSession"
RESOURCE = f"/xrpc/{GET_SESSION}"


def test_oauth_session_persists_privately_and_hides_secrets(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    session = authorized(server, clock)
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        m.store_session(session)
    path = tmp_path / oauth_name_for_did(DID)
    assert path.name == "oauth_did_plc_oauthalice.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = repr(session)
    assert session.access_token not in text and session.dpop_jwk["d"] not in text
    with OAuthSessionManager(tmp_path, clock=clock) as fresh:
        assert fresh.list_sessions() == [DID]
        assert fresh.load_session(DID) == session
        assert fresh.query(GET_SESSION)["did"] == DID


def test_calls_follow_one_nonce_request_then_reuse_the_nonce(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        m.store_session(authorized(server, clock))
        for _ in range(3):
            assert m.query(GET_SESSION)["did"] == DID
        assert server.counts[RESOURCE] == 4 and server.counts["resource-nonce"] == 1
        server.rotate_nonce()
        m.query(GET_SESSION)
        assert server.counts["resource-nonce"] == 2
    assert server.counts["refresh"] == 0


def test_expired_access_token_is_refreshed_once_and_retried(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    with OAuthSessionManager(tmp_path, clock=ManualClock(clock.time())) as m:
        seen: list[str] = []
        m.on_session_event(lambda e, s: seen.append(e.value))
        before = authorized(server, clock)
        m.store_session(before)
        clock.advance(3601)  # only the server knows the token expired
        assert m.query(GET_SESSION)["did"] == DID
        assert server.counts["refresh"] == 1 and server.counts["rejected"] == 1
        assert seen == ["create", "update"]
        stored = json.loads((tmp_path / oauth_name_for_did(DID)).read_text())
        assert stored["refreshToken"] != before.refresh_token
        assert stored["refreshToken"] == m.session.refresh_token  # type: ignore[union-attr]


def test_proactive_refresh_before_expiry(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        m.store_session(authorized(server, clock))
        clock.advance(3600 - 30)
        assert m.needs_refresh()
        m.query(GET_SESSION)
        assert server.counts["refresh"] == 1 and server.counts["rejected"] == 0
        assert not m.needs_refresh()


@pytest.mark.redis
def test_proactive_refresh_with_the_store_down_uses_the_still_valid_token(
    server: FakeOAuthPds, clock: ManualClock
) -> None:
    # Imported here: this file also runs as a worker script, where ``tests`` is no package.
    from tests.redis_fixture import require_redis_server

    require_redis_server()
    with RedisServer(appendonly=False) as redis_server:
        store = RedisStore(redis_server.url, prefix="oauth-early:", lease=5, lock_timeout=2)
        with OAuthSessionManager(None, store=store, clock=clock) as m:
            m.store_session(authorized(server, clock))
            clock.advance(3600 - 30)
            redis_server.stop()
            assert m.query(GET_SESSION)["did"] == DID
            clock.advance(60)
            with pytest.raises(StoreUnavailableError):
                m.query(GET_SESSION)
    assert server.counts["refresh"] == 0


def test_threads_and_a_second_manager_share_one_refresh(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    with (
        OAuthSessionManager(tmp_path, clock=clock) as first,
        OAuthSessionManager(tmp_path, clock=clock) as second,
    ):
        first.store_session(authorized(server, clock))
        second.load_session(DID)
        clock.advance(3601)
        failures: list[BaseException] = []
        barrier = threading.Barrier(8)

        def call(m: OAuthSessionManager) -> None:
            barrier.wait()
            try:
                m.query(GET_SESSION)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=call, args=(m,)) for m in [first, second] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert failures == []
        assert server.counts["refresh"] == 1
        assert first.session == second.session


def test_a_refreshed_set_survives_a_failed_store_write(
    server: FakeOAuthPds, clock: ManualClock
) -> None:
    # Imported here: this module also runs as a worker script, without tests/ on its path.
    from tests.atproto_fixtures import FlakyStore

    store = FlakyStore()
    with OAuthSessionManager(None, store=store, clock=clock) as m:
        first = authorized(server, clock)
        m.store_session(first)
        clock.advance(3601)
        store.down = True
        assert m.query(GET_SESSION)["did"] == DID  # refreshed; the write failed
        kept = m.session
        assert kept is not None and kept.refresh_token != first.refresh_token
        store.down = False
        clock.advance(3601)
        # The stored set is the first one, whose refresh token is spent: the manager
        # must refresh with the newer set it kept, never adopt or replay the old one.
        assert m.query(GET_SESSION)["did"] == DID
        assert m.session is not None and m.session.refresh_token != kept.refresh_token
    assert server.counts["refresh"] == 2


def test_replayed_refresh_token_expires_the_session(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    session = authorized(server, clock)
    server.refresh[session.refresh_token or ""].used = True  # revoked on the server
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        seen: list[str] = []
        m.on_session_event(lambda e, s: seen.append(e.value))
        m.store_session(session)
        with pytest.raises(SessionExpiredError):
            m.refresh_token()
        assert m.session is None and m.list_sessions() == []
        assert seen == ["create", "expired"]


def test_server_errors_keep_the_oauth_session(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    session = authorized(server, clock)
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        seen: list[str] = []
        m.on_session_event(lambda e, s: seen.append(e.value))
        m.store_session(session)
        server.fault = 503
        with pytest.raises(SessionNetworkError):
            m.refresh_token()
        assert m.session == session and m.list_sessions() == [DID]
        assert seen == ["create", "network-error"]
        server.fault = None
        m.refresh_token()
        assert seen[-1] == AtpSessionEvent.UPDATE.value


def test_refresh_answer_for_another_account_is_not_stored(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    session = authorized(server, clock)
    server.answer_sub = "did:plc:mallory"
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        m.store_session(session)
        with pytest.raises(SessionError, match="another account"):
            m.refresh_token()
        assert m.session == session
    stored = json.loads((tmp_path / oauth_name_for_did(DID)).read_text())
    assert stored["accessToken"] == session.access_token


def test_a_token_answer_that_is_not_an_object_is_a_named_error(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    session = authorized(server, clock)
    server.answer_body = ["not", "an", "object"]
    with OAuthSessionManager(tmp_path, clock=clock) as m:
        m.store_session(session)
        with pytest.raises(SessionError, match="not a JSON object"):
            m.refresh_token()
        assert m.session == session


def test_a_confidential_refresh_signs_a_new_assertion_for_the_nonce_retry(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    credentials = ClientCredentials(
        client_id="https://app.example/confidential-client.json",
        redirect_uri="https://app.example/callback",
        scope="atproto transition:generic",
        key={**generate_dpop_jwk(), "kid": "key-1"},
    )
    server.register_client(credentials.metadata)
    key = generate_dpop_jwk()
    session = OAuthSession.from_token_response(
        server.issue(DID, thumbprint_of(key), client_id=credentials.client_id),
        issuer=server.url,
        token_endpoint=f"{server.url}/oauth/token",
        pds_url=server.url,
        client_id=credentials.client_id,
        dpop_jwk=key,
        now=clock.time(),
    )
    jtis: list[str] = []

    def record(request: httpx.Request) -> None:
        if request.url.path == "/oauth/token":
            assertion = dict(parse_qsl(request.content.decode()))["client_assertion"]
            jtis.append(jwt.decode(assertion, options={"verify_signature": False})["jti"])

    with (
        httpx.Client(event_hooks={"request": [record]}) as http,
        OAuthSessionManager(
            tmp_path, clock=clock, http=http, client_auth=credentials.auth_fields
        ) as m,
    ):
        m.store_session(session)  # no nonce known yet: the token endpoint asks for one
        m.refresh_token()
    assert server.counts["token-nonce"] == 1 and server.counts["refresh"] == 1
    assert len(jtis) == 2 and jtis[0] != jtis[1]  # an assertion's jti is single use


def test_oauth_auth_with_a_plain_httpx_client(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    with OAuthSessionManager(tmp_path, clock=ManualClock(clock.time())) as m:
        m.store_session(authorized(server, clock))
        with httpx.Client(base_url=server.url, auth=m.auth) as client:
            assert client.get(RESOURCE).json()["did"] == DID
            clock.advance(3601)
            assert client.get(RESOURCE).status_code == 200
    assert server.counts["refresh"] == 1


def test_token_answers_must_be_dpop_with_a_did(server: FakeOAuthPds, clock: ManualClock) -> None:
    key = generate_dpop_jwk()
    common: dict[str, Any] = {
        "issuer": server.url,
        "token_endpoint": f"{server.url}/oauth/token",
        "pds_url": server.url,
        "client_id": CLIENT_ID,
        "dpop_jwk": key,
        "now": 0.0,
    }
    with pytest.raises(SessionError, match="DPoP"):
        OAuthSession.from_token_response(
            {"access_token": "a", "token_type": "Bearer", "sub": DID}, **common
        )
    with pytest.raises(SessionError, match="DID"):
        OAuthSession.from_token_response(
            {"access_token": "a", "token_type": "DPoP", "sub": "alice"}, **common
        )


def test_async_oauth_manager_and_async_client_auth(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    async def scenario() -> None:
        async with AsyncOAuthSessionManager(tmp_path, clock=ManualClock(clock.time())) as m:
            seen: list[str] = []
            m.on_session_event(lambda e, s: seen.append(e.value))
            await m.store_session(authorized(server, clock))
            assert await m.list_sessions() == [DID]
            clock.advance(3601)
            results = await asyncio.gather(*(m.query(GET_SESSION) for _ in range(6)))
            assert {r["did"] for r in results} == {DID}
            assert server.counts["refresh"] == 1
            clock.advance(3601)
            async with httpx.AsyncClient(base_url=server.url, auth=m.auth) as client:
                assert (await client.get(RESOURCE)).json()["did"] == DID
            assert server.counts["refresh"] == 2
            assert seen == ["create", "update", "update"]
            await m.clear_session()
            assert await m.list_sessions() == []

    asyncio.run(scenario())


def test_no_oauth_session_raises(tmp_path: Path) -> None:
    with OAuthSessionManager(tmp_path) as m:
        with pytest.raises(NoSessionError):
            m.query(GET_SESSION)
        assert m.load_session(DID) is None


def worker(directory: str, go: str) -> int:
    """One process of the stampede: load the OAuth session, wait for go, call 4 times."""
    with OAuthSessionManager(directory) as m:
        m.load_session(DID)
        Path(f"{go}.ready-{os.getpid()}").touch()
        while not os.path.exists(go):
            time.sleep(0.005)
        failed = 0
        for _ in range(4):
            try:
                m.query(GET_SESSION)
            except Exception as exc:
                print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
                failed += 1
        session = m.session
        print(json.dumps({"failed": failed, "refresh": session.refresh_token if session else None}))
    return 0


@pytest.mark.timeout(120)
def test_oauth_refresh_is_single_flight_across_processes(
    tmp_path: Path, server: FakeOAuthPds, clock: ManualClock
) -> None:
    with OAuthSessionManager(tmp_path / "s") as m:
        m.store_session(authorized(server, clock))
    clock.advance(3601)  # the server refuses the access token from now on
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "worker", str(tmp_path / "s"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("go.ready-*"))) < 4:
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert server.counts["refresh"] == 1
    assert [r["failed"] for r in reports] == [0, 0, 0, 0]
    stored = json.loads((tmp_path / "s" / oauth_name_for_did(DID)).read_text())
    assert {r["refresh"] for r in reports} == {stored["refreshToken"]}


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "worker":
    sys.exit(worker(sys.argv[2], sys.argv[3]))
