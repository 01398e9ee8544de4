"""Real MarshalX ``atproto`` clients (from PyPI) on a persistent manager, against FakePds.

The fake's clock is a ManualClock: moving it past the access token's exp makes
the server refuse the token while MarshalX (on the real clock) still thinks it
is fresh, which is exactly when MarshalX alone would fail the call.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

import atproto
from atproto import exceptions as atproto_exceptions
from sessionkeeper.atproto import (
    AsyncPersistentSessionManager,
    NoSessionError,
    PersistentSessionManager,
)
from sessionkeeper.atproto.jwt import decode_claims
from sessionkeeper.atproto.marshalx import (
    MARSHALX_REFRESH_MARGIN,
    SessionTransport,
    async_persistent_client,
    login_lock_name,
    persistent_client,
)
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores.base import validate_name
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.testing.fake_pds import FakePds
from tests.atproto.marshalx.support import CREATE_RECORD, PAST_EXP, REFRESH, posts, stored

pytestmark = pytest.mark.timeout(60)

CREATE = "com.atproto.server.createSession"
DELETE = "com.atproto.server.deleteSession"


def test_a_cold_start_logs_in_once_and_a_second_client_reuses_the_stored_session(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, alice: str
) -> None:
    client = persistent_client(manager, "alice.test", "alice-pass")
    assert isinstance(client, atproto.Client)
    assert client.me.did == alice  # the profile lookup at login reached the fake
    client.send_post("hello")
    assert stored(tmp_path, alice)["refreshJwt"] == manager.session.refresh_jwt  # type: ignore[union-attr]
    # By handle, DID, e-mail, or as the store's only session: no second createSession.
    for identifier in ("Alice.Test", alice, "alice@example.com", None):
        again = persistent_client(manager, identifier, "wrong password is never sent")
        assert again.me.handle == "alice.test"
    assert pds.counts[CREATE] == 1
    assert posts(pds, alice) == ["hello"]


def test_a_refused_call_is_refreshed_once_and_replayed_once(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, clock: ManualClock, alice: str
) -> None:
    client = persistent_client(manager, "alice.test", "alice-pass")
    before = client.export_session_string()
    clock.advance(PAST_EXP)
    pds.reset_counts()
    client.send_post("after exp")
    assert pds.counts[REFRESH] == 1
    assert pds.counts[CREATE_RECORD] == 2  # refused with ExpiredToken, then replayed once
    assert pds.errors[f"{CREATE_RECORD}:ExpiredToken"] == 1
    assert posts(pds, alice) == ["after exp"]
    # The store holds the new pair; MarshalX's copy is older until its next refresh,
    # and its calls carry the manager's newer token meanwhile (no second refresh).
    session = manager.session
    assert session is not None and stored(tmp_path, alice)["refreshJwt"] == session.refresh_jwt
    assert client.export_session_string() == before
    client.send_post("still fine")
    assert (pds.counts[REFRESH], pds.counts[CREATE_RECORD]) == (1, 3)
    # MarshalX's own refreshSession with its older token is answered from the store.
    answer = client.com.atproto.server.refresh_session(
        headers={"Authorization": f"Bearer {before.split(':::')[3]}"}
    )
    assert answer.refresh_jwt == session.refresh_jwt
    assert pds.counts[REFRESH] == 1


def test_marshalx_refresh_is_answered_by_the_manager_and_fires_its_refresh_event(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, alice: str
) -> None:
    client = persistent_client(manager, "alice.test", "alice-pass")
    events: list[tuple[str, str]] = []
    client.on_session_change(
        lambda event, session: events.append((event.value, session.refresh_jwt))
    )
    current = client.export_session_string().split(":::")[3]
    answer = client.com.atproto.server.refresh_session(
        headers={"Authorization": f"Bearer {current}"}
    )
    assert pds.counts[REFRESH] == 1
    assert answer.refresh_jwt == stored(tmp_path, alice)["refreshJwt"] != current
    # A second process holding the same (now rotated) pair adopts the stored one.
    with PersistentSessionManager(
        tmp_path / "sessions", pds.url, refresh_margin=MARSHALX_REFRESH_MARGIN
    ) as other_manager:
        other = persistent_client(other_manager, "alice.test")
        assert other.export_session_string().split(":::")[3] == answer.refresh_jwt
    assert pds.counts[REFRESH] == 1 and pds.errors[REFRESH] == 0
    assert events == []  # a direct namespace call is not MarshalX's own refresh


def test_logout_goes_through_the_manager_and_revokes_the_session(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, alice: str
) -> None:
    client = persistent_client(manager, "alice.test", "alice-pass")
    assert client.com.atproto.server.delete_session() is True
    assert pds.counts[DELETE] == 1 and pds.errors[DELETE] == 0
    assert pds.live_refresh_tokens(alice) == 0
    assert manager.session is None and manager.list_sessions() == []


def test_a_login_through_the_client_is_stored(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, alice: str, bob: str
) -> None:
    client = persistent_client(manager, "alice.test", "alice-pass")
    client.login("bob.test", "bob-pass")
    assert stored(tmp_path, bob)["handle"] == "bob.test"
    assert manager.session is not None and manager.session.did == bob
    client.send_post("from bob")
    assert posts(pds, bob) == ["from bob"]


def test_app_password_sessions_work_and_keep_their_scope(
    pds: FakePds, manager: PersistentSessionManager, clock: ManualClock
) -> None:
    did = pds.create_account("bot.test", "main-pass")
    app_password = pds.create_app_password(did, "bot")
    client = persistent_client(manager, "bot.test", app_password)
    clock.advance(PAST_EXP)
    client.send_post("via app password")
    assert posts(pds, did) == ["via app password"]
    session = manager.session
    assert session is not None
    assert decode_claims(session.access_jwt)["scope"] == "com.atproto.appPass"


def test_missing_sessions_and_bad_arguments_fail_clearly_before_any_login(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, alice: str, bob: str
) -> None:
    with pytest.raises(NoSessionError, match=r"no stored session for alice\.test"):
        persistent_client(manager, "alice.test")
    with pytest.raises(NoSessionError, match="pass identifier= and password="):
        persistent_client(manager)
    with pytest.raises(ValueError, match="mounts= would send requests past the session"):
        persistent_client(manager, "alice.test", "alice-pass", mounts={"all://": None})
    with pytest.raises(ValueError, match="either transport= or verify="):
        persistent_client(
            manager, "alice.test", "alice-pass", transport=httpx.HTTPTransport(), verify=False
        )
    assert pds.counts[CREATE] == 0
    persistent_client(manager, "alice.test", "alice-pass")
    persistent_client(manager, "bob.test", "bob-pass")
    with pytest.raises(ValueError, match=r"several sessions \(alice.test, bob.test\)"):
        persistent_client(manager)
    assert "alice-pass" not in repr(SessionTransport(manager))


def test_login_lock_names_are_valid_store_names_that_hide_the_identifier() -> None:
    for identifier in ("alice.test", "Alice@Example.com", "did:plc:abc/../x", "é" * 300):
        name = login_lock_name(identifier)
        assert validate_name(name) == name and "alice" not in name.lower()
    assert login_lock_name(" Alice.Test ") == login_lock_name("alice.test")


def test_clones_share_the_transport_and_closing_one_leaves_the_others_working(
    pds: FakePds, manager: PersistentSessionManager, clock: ManualClock, alice: str
) -> None:
    client = persistent_client(manager, "alice.test", "alice-pass")
    clone = client.clone()
    clock.advance(PAST_EXP)
    pds.reset_counts()
    clone.send_post("from the clone")  # refused, refreshed once, replayed
    client.send_post("from the original")  # carries the refreshed token at once
    assert pds.counts[REFRESH] == 1 and pds.errors[f"{CREATE_RECORD}:ExpiredToken"] == 1
    clone.request.close()
    client.send_post("after the clone closed")
    client.request.close()
    third = client.clone()
    third.send_post("from a clone of a closed client")
    assert posts(pds, alice) == [
        "from a clone of a closed client",
        "after the clone closed",
        "from the original",
        "from the clone",
    ]


def test_the_inner_transport_takes_the_network_options(
    pds: FakePds, manager: PersistentSessionManager, alice: str
) -> None:
    seen: list[str] = []

    def count(request: httpx.Request) -> None:
        seen.append(request.url.path)

    inner = httpx.Client(event_hooks={"request": [count]})
    client = persistent_client(manager, "alice.test", "alice-pass", transport=inner)
    client.send_post("through the inner client")
    assert "/xrpc/com.atproto.repo.createRecord" in seen
    # Options for httpx's own transport are accepted and reach a working client.
    again = persistent_client(manager, "alice.test", verify=False, http2=False, timeout=5)
    again.send_post("with options")
    assert posts(pds, alice) == ["with options", "through the inner client"]


def test_a_revoked_session_fails_the_call_like_marshalx_and_is_removed(
    tmp_path: Path, pds: FakePds, manager: PersistentSessionManager, clock: ManualClock, alice: str
) -> None:
    client = persistent_client(manager, "alice.test", "alice-pass")
    pds.revoke_all(alice)
    clock.advance(PAST_EXP)
    with pytest.raises(atproto_exceptions.BadRequestError) as caught:
        client.send_post("never arrives")
    assert caught.value.response.content.error == "ExpiredToken"
    assert manager.list_sessions() == []
    assert posts(pds, alice) == []


def test_the_async_client_refreshes_reactively_and_logs_out_through_the_manager(
    tmp_path: Path, pds: FakePds, clock: ManualClock, alice: str
) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(
            tmp_path / "sessions", pds.url, clock=clock, refresh_margin=MARSHALX_REFRESH_MARGIN
        ) as manager:
            client = await async_persistent_client(manager, "alice.test", "alice-pass")
            assert isinstance(client, atproto.AsyncClient) and client.me.did == alice
            clock.advance(PAST_EXP)
            await asyncio.gather(client.send_post("one"), client.clone().send_post("two"))
            assert pds.counts[REFRESH] == 1 and pds.errors[REFRESH] == 0
            assert sorted(posts(pds, alice)) == ["one", "two"]
            again = await async_persistent_client(manager, alice)
            assert again.me.handle == "alice.test"
            assert pds.counts[CREATE] == 1
            assert await client.com.atproto.server.delete_session() is True
            assert manager.session is None and await manager.list_sessions() == []
            assert pds.live_refresh_tokens(alice) == 0

    asyncio.run(scenario())


def test_environment_proxies_still_apply_through_the_session_transport(
    tmp_path: Path,
    pds: FakePds,
    manager: PersistentSessionManager,
    alice: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx ignores the environment's proxies once a transport is given; calls go out
    # on the manager's client, which read them when it was built, and trust_env=False
    # switches them off as usual.
    manager.login("alice.test", "alice-pass")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with PersistentSessionManager(tmp_path / "sessions", pds.url) as proxied:
        with pytest.raises(atproto_exceptions.NetworkError):
            persistent_client(proxied, "alice.test")
        direct = persistent_client(proxied, "alice.test", trust_env=False)
        direct.send_post("no proxy")
    assert posts(pds, alice) == ["no proxy"]


def test_importing_the_module_does_not_import_atproto() -> None:
    # atproto takes seconds to import; a bot that never builds a client does not pay it.
    code = (
        "import sys, sessionkeeper.atproto.marshalx as m; "
        "assert m.persistent_client and 'atproto' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_managers_tokens_never_reach_a_host_that_did_not_issue_them(
    pds: FakePds, manager: PersistentSessionManager, clock: ManualClock, alice: str
) -> None:
    sent: list[tuple[str, str | None]] = []

    def record(request: httpx.Request) -> None:
        sent.append(
            (request.url.host + str(request.url.port), request.headers.get("authorization"))
        )

    client = persistent_client(
        manager,
        "alice.test",
        "alice-pass",
        transport=httpx.Client(event_hooks={"request": [record]}, trust_env=False),
    )
    clock.advance(PAST_EXP)
    client.send_post("refreshed reactively")  # the manager now holds a newer token
    marshalx_token = client.export_session_string().split(":::")[2]
    assert manager.session is not None and manager.session.access_jwt != marshalx_token
    with FakePds(clock=clock) as other:
        client.update_base_url(other.url)
        with pytest.raises(atproto_exceptions.BadRequestError):
            client.get_profile("alice.test")  # the other server does not know the token
        host = "127.0.0.1" + str(other.port)
    to_other = [auth for where, auth in sent if where == host]
    # MarshalX's own header went as it was: no newer token swapped in, no refresh, no replay.
    assert to_other == [f"Bearer {marshalx_token}"]
    assert pds.counts[REFRESH] == 1


def test_an_async_cold_start_cancelled_while_waiting_for_the_login_lock_leaves_it_free(
    tmp_path: Path, pds: FakePds, clock: ManualClock, alice: str
) -> None:
    store = DirectoryStore(tmp_path / "sessions")
    name = login_lock_name("alice.test")
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock(name):
            taken.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(10), "the holder thread never took the lock"

    async def scenario() -> None:
        async with AsyncPersistentSessionManager(None, pds.url, store=store, clock=clock) as m:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(async_persistent_client(m, "alice.test", "alice-pass"), 0.3)
            release.set()
            await asyncio.to_thread(holder.join, 10)
            # The cancelled waiter took the lock after all and gave it back.
            await asyncio.sleep(0.2)
            client = await asyncio.wait_for(
                async_persistent_client(m, "alice.test", "alice-pass"), 10
            )
            assert client.me.did == alice

    asyncio.run(scenario())
    with store.lock(name, timeout=5):
        pass
    assert pds.counts[CREATE] == 1


def test_a_refresh_the_server_refuses_reaches_marshalx_as_its_own_error(
    pds: FakePds, manager: PersistentSessionManager, alice: str
) -> None:
    client = persistent_client(manager, "alice.test", "alice-pass")
    refresh = client.export_session_string().split(":::")[3]
    auth = {"Authorization": f"Bearer {refresh}"}
    # A 5xx keeps the session: MarshalX sees its NetworkError, the store keeps the pair.
    pds.set_fault("502", count=1, nsids={REFRESH})
    with pytest.raises(atproto_exceptions.NetworkError):
        client.com.atproto.server.refresh_session(headers=auth)
    assert manager.list_sessions() == [alice]
    # A revoked refresh token removes it: MarshalX sees 400 ExpiredToken.
    pds.revoke_all(alice)
    with pytest.raises(atproto_exceptions.BadRequestError) as caught:
        client.com.atproto.server.refresh_session(headers=auth)
    assert caught.value.response.content.error == "ExpiredToken"
    assert refresh not in str(caught.value.response.content.message)
    assert manager.list_sessions() == [] and manager.session is None
