"""PersistentSessionManager against a fake PDS on 127.0.0.1: every method, event and verdict."""

from __future__ import annotations

import json
import logging
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import (
    AtpSessionData,
    AtpSessionEvent,
    CorruptSessionError,
    NoSessionError,
    PersistentSessionManager,
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
    XrpcError,
    name_for_did,
)
from sessionkeeper.atproto.issuer import issuer_name
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores import MemoryStore
from sessionkeeper.testing._server import LoopbackServer
from sessionkeeper.testing.fake_pds import FakePds

pytestmark = pytest.mark.timeout(60)

REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"
GET_SESSION = "com.atproto.server.getSession"
Events = list[tuple[AtpSessionEvent, AtpSessionData | None]]


@pytest.fixture
def session_dir(tmp_path: Path) -> Path:
    return tmp_path / "sessions"


@pytest.fixture
def manager(
    session_dir: Path, pds: FakePds, clock: ManualClock
) -> Iterator[PersistentSessionManager]:
    with PersistentSessionManager(session_dir, pds.url, clock=clock) as m:
        yield m


@pytest.fixture
def events(manager: PersistentSessionManager) -> Events:
    seen: Events = []
    manager.on_session_event(lambda event, session: seen.append((event, session)))
    return seen


def kinds(events: Events) -> list[str]:
    return [event.value for event, _ in events]


def stored(session_dir: Path, did: str) -> dict[str, Any] | None:
    path = session_dir / name_for_did(did)
    return json.loads(path.read_text()) if path.exists() else None


# -- login, store, load, list, clear, logout -------------------------------------------------


def test_login_creates_stores_and_emits_create(
    manager: PersistentSessionManager, pds: FakePds, alice: str, session_dir: Path, events: Events
) -> None:
    session = manager.login("alice.test", "alice-pass")
    assert session.did == alice and session.handle == "alice.test"
    assert session.email == "alice@example.com" and session.active is True
    assert manager.session == session
    assert pds.counts[CREATE] == 1
    assert kinds(events) == ["create"] and events[0][1] == session
    path = session_dir / f"{alice.replace(':', '_')}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    keys = "refreshJwt accessJwt handle did email emailConfirmed emailAuthFactor active status"
    assert list(json.loads(path.read_text())) == keys.split()
    assert manager.pds_endpoint == pds.url


def test_login_reuses_the_stored_session_of_that_handle_or_did(
    manager: PersistentSessionManager, pds: FakePds, alice: str
) -> None:
    first = manager.login("alice.test", "alice-pass")
    again = manager.login("@Alice.test", "alice-pass")
    by_did = manager.login(alice, "alice-pass")
    assert pds.counts[CREATE] == 1
    assert again == first == by_did == manager.session


def test_forced_login_creates_a_session_and_revokes_the_one_it_replaces(
    manager: PersistentSessionManager, pds: FakePds, alice: str
) -> None:
    first = manager.login("alice.test", "alice-pass")
    assert pds.live_refresh_tokens(alice) == 1
    second = manager.login("alice.test", "alice-pass", force=True)
    assert pds.counts[CREATE] == 2
    assert second.refresh_jwt != first.refresh_jwt
    assert manager.session == second
    assert manager.load_session(alice) == second
    assert pds.live_refresh_tokens(alice) == 1  # the replaced one was revoked


def test_wrong_password_emits_create_failed_and_stores_nothing(
    manager: PersistentSessionManager, alice: str, session_dir: Path, events: Events
) -> None:
    with pytest.raises(XrpcError) as info:
        manager.login("alice.test", "wrong")
    assert (info.value.status, info.value.error) == (401, "AuthenticationRequired")
    assert "wrong" not in str(info.value)
    assert kinds(events) == ["create-failed"] and events[0][1] is None
    assert manager.session is None and manager.list_sessions() == []


def test_login_with_email_auth_factor_token(
    manager: PersistentSessionManager, pds: FakePds
) -> None:
    did = pds.create_account("carol.test", "carol-pass", email="c@x.test", email_auth_factor=True)
    with pytest.raises(XrpcError) as info:
        manager.login("carol.test", "carol-pass")
    assert info.value.error == "AuthFactorTokenRequired"
    code = pds.sign_in_code(did)
    assert code is not None
    session = manager.login("carol.test", "carol-pass", auth_factor_token=code)
    assert session.did == did and session.email_auth_factor is True


def test_login_to_an_unreachable_server_is_a_network_error(
    session_dir: Path, events: Events
) -> None:
    with PersistentSessionManager(session_dir, "http://127.0.0.1:9") as m:
        seen: Events = []
        m.on_session_event(lambda e, s: seen.append((e, s)))
        with pytest.raises(SessionNetworkError):
            m.login("alice.test", "pw")
    assert kinds(seen) == ["create-failed"]


def test_store_session_then_load_in_a_new_manager(
    manager: PersistentSessionManager,
    pds: FakePds,
    alice: str,
    session_dir: Path,
    clock: ManualClock,
    events: Events,
) -> None:
    session = manager.login("alice.test", "alice-pass")
    other = AtpSessionData(
        refresh_jwt=session.refresh_jwt,
        access_jwt=session.access_jwt,
        handle="x.test",
        did="did:plc:other",
    )
    manager.store_session(other)
    assert manager.session == other
    assert kinds(events) == ["create", "create"]
    with PersistentSessionManager(session_dir, pds.url, clock=clock) as fresh:
        seen: Events = []
        fresh.on_session_event(lambda e, s: seen.append((e, s)))
        loaded = fresh.load_session(alice)
        assert loaded == session and fresh.session == session
        assert kinds(seen) == ["create"]
        assert sorted(fresh.list_sessions()) == sorted([alice, "did:plc:other"])
        assert fresh.query(GET_SESSION)["did"] == alice
    assert pds.counts[CREATE] == 1


def test_load_session_absent_returns_none_without_event(
    manager: PersistentSessionManager, events: Events
) -> None:
    assert manager.load_session("did:plc:nobody") is None
    assert events == [] and manager.session is None


def test_file_whose_did_differs_from_the_one_asked_for_is_not_returned(
    manager: PersistentSessionManager, alice: str, session_dir: Path
) -> None:
    manager.login("alice.test", "alice-pass")
    content = (session_dir / name_for_did(alice)).read_bytes()
    (session_dir / "did_plc_mallory.json").write_bytes(content)
    assert manager.load_session("did:plc:mallory") is None
    assert manager.list_sessions() == [alice]


def test_corrupt_file_is_a_named_error_and_list_skips_it(
    manager: PersistentSessionManager, alice: str, session_dir: Path
) -> None:
    manager.login("alice.test", "alice-pass")
    (session_dir / "did_plc_broken.json").write_bytes(b'{"refreshJwt": "abc", trunc')
    (session_dir / "notes.txt").write_text("not a session")
    with pytest.raises(CorruptSessionError) as info:
        manager.load_session("did:plc:broken")
    assert "did_plc_broken.json" in str(info.value)
    assert isinstance(info.value, SessionError)
    assert manager.list_sessions() == [alice]
    assert (session_dir / "did_plc_broken.json").exists()


def test_clear_session_removes_memory_and_file_and_emits_delete(
    manager: PersistentSessionManager, alice: str, session_dir: Path, events: Events
) -> None:
    manager.login("alice.test", "alice-pass")
    manager.clear_session()
    assert manager.session is None and stored(session_dir, alice) is None
    assert kinds(events) == ["create", "delete"]
    manager.clear_session()  # nothing current: nothing to do
    assert kinds(events) == ["create", "delete"]


def test_logout_revokes_on_the_server_then_clears(
    manager: PersistentSessionManager, pds: FakePds, alice: str, session_dir: Path, events: Events
) -> None:
    session = manager.login("alice.test", "alice-pass")
    manager.logout()
    assert pds.counts["com.atproto.server.deleteSession"] == 1
    assert manager.session is None and stored(session_dir, alice) is None
    assert kinds(events) == ["create", "delete"]
    reuse = httpx.post(
        f"{pds.url}/xrpc/{REFRESH}", headers={"Authorization": f"Bearer {session.refresh_jwt}"}
    )
    assert reuse.status_code == 400 and reuse.json()["error"] == "ExpiredToken"
    with pytest.raises(NoSessionError):
        manager.logout()


def test_logout_with_the_server_unreachable_still_clears_and_warns(
    manager: PersistentSessionManager,
    pds: FakePds,
    alice: str,
    session_dir: Path,
    events: Events,
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = manager.login("alice.test", "alice-pass")
    pds.set_fault("drop")
    with caplog.at_level(logging.WARNING, logger="sessionkeeper.atproto"):
        manager.logout()
    assert manager.session is None and stored(session_dir, alice) is None
    assert kinds(events) == ["create", "delete"]
    assert "removing the session locally" in caplog.text
    assert session.refresh_jwt not in caplog.text and session.access_jwt not in caplog.text


def test_no_session_raises_no_session_error(manager: PersistentSessionManager) -> None:
    with pytest.raises(NoSessionError):
        manager.query(GET_SESSION)
    with pytest.raises(NoSessionError):
        manager.refresh_token()
    assert manager.needs_refresh() is False


def test_store_argument_replaces_the_directory(
    pds: FakePds, alice: str, clock: ManualClock
) -> None:
    store = MemoryStore()
    with PersistentSessionManager(None, pds.url, store=store, clock=clock) as m:
        m.login("alice.test", "alice-pass")
        # The session, and the record of the service that issued it.
        assert sorted(store.names()) == sorted([name_for_did(alice), issuer_name(alice)])
    # Neither a directory nor a store: the per-user default (tests/atproto/marshalx/test_home.py).


# -- refresh ---------------------------------------------------------------------------------


def test_refresh_token_rotates_stores_and_emits_update(
    manager: PersistentSessionManager, pds: FakePds, alice: str, session_dir: Path, events: Events
) -> None:
    before = manager.login("alice.test", "alice-pass")
    after = manager.refresh_token()
    assert after.refresh_jwt != before.refresh_jwt and after.did == alice
    assert after.email == "alice@example.com"
    assert manager.session == after
    assert stored(session_dir, alice) == after.to_json_dict()
    assert kinds(events) == ["create", "update"] and events[1][1] == after
    assert pds.counts[REFRESH] == 1


def test_proactive_refresh_happens_before_the_call_when_due(
    manager: PersistentSessionManager, pds: FakePds, alice: str, clock: ManualClock, events: Events
) -> None:
    manager.login("alice.test", "alice-pass")
    clock.advance(7200 - 121)
    assert manager.needs_refresh() is False
    manager.query(GET_SESSION)
    assert pds.counts[REFRESH] == 0
    clock.advance(2)
    assert manager.needs_refresh() is True
    assert manager.query(GET_SESSION)["did"] == alice
    assert pds.counts[REFRESH] == 1
    assert pds.errors[GET_SESSION] == 0
    assert kinds(events) == ["create", "update"]
    assert manager.needs_refresh() is False


def test_reactive_refresh_on_expired_token_retries_once(
    session_dir: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    # The manager's clock stands still while the server's moves past the token's exp.
    with PersistentSessionManager(session_dir, pds.url, clock=ManualClock(clock.time())) as m:
        m.login("alice.test", "alice-pass")
        clock.advance(7201)
        assert m.query(GET_SESSION)["did"] == alice
    assert pds.counts[REFRESH] == 1
    assert pds.counts[GET_SESSION] == 2 and pds.errors[GET_SESSION] == 1


def test_reactive_refresh_never_loops(
    manager: PersistentSessionManager, pds: FakePds, alice: str, bob: str
) -> None:
    manager.login("alice.test", "alice-pass")
    record = {"repo": bob, "collection": "app.bsky.feed.post", "record": {"text": "not mine"}}
    with pytest.raises(XrpcError) as info:
        manager.procedure("com.atproto.repo.createRecord", record)
    assert info.value.status == 401
    assert pds.counts["com.atproto.repo.createRecord"] == 2
    assert pds.counts[REFRESH] == 1


def test_disable_auto_refresh_turns_off_proactive_and_reactive(
    manager: PersistentSessionManager, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    manager.login("alice.test", "alice-pass")
    manager.disable_auto_refresh()
    clock.advance(7201)
    assert manager.needs_refresh() is True
    with pytest.raises(XrpcError) as info:
        manager.query(GET_SESSION)
    assert (info.value.status, info.value.error) == (400, "ExpiredToken")
    assert pds.counts[REFRESH] == 0
    manager.enable_auto_refresh()
    manager.query(GET_SESSION)
    assert pds.counts[REFRESH] == 1


def test_query_and_procedure_carry_the_token_to_the_pds(
    manager: PersistentSessionManager, pds: FakePds, alice: str
) -> None:
    manager.login("alice.test", "alice-pass")
    created = manager.procedure(
        "com.atproto.repo.createRecord",
        {"repo": alice, "collection": "app.bsky.feed.post", "record": {"text": "hello"}},
    )
    assert created["uri"].startswith(f"at://{alice}/app.bsky.feed.post/")
    listed = manager.query(
        "com.atproto.repo.listRecords", {"repo": alice, "collection": "app.bsky.feed.post"}
    )
    assert [r["value"]["text"] for r in listed["records"]] == ["hello"]
    with pytest.raises(XrpcError) as info:
        manager.query(
            "com.atproto.repo.listRecords", {"repo": "nobody.test", "collection": "x.y.z"}
        )
    assert (info.value.status, info.value.error) == (400, "InvalidRequest")
    assert "Could not find repo" in (info.value.message or "")


def test_pds_endpoint_comes_from_did_doc(pds: FakePds, alice: str, tmp_path: Path) -> None:
    entryway = pds.url.replace("127.0.0.1", "localhost")
    with PersistentSessionManager(tmp_path, entryway) as m:
        m.login("alice.test", "alice-pass")
        assert m.service_url == entryway
        assert m.pds_endpoint == pds.url


@pytest.mark.parametrize("kill", ["revoke", "takedown", "expire"])
def test_dead_refresh_token_expires_the_session(
    manager: PersistentSessionManager,
    pds: FakePds,
    alice: str,
    clock: ManualClock,
    session_dir: Path,
    events: Events,
    kill: str,
) -> None:
    manager.login("alice.test", "alice-pass")
    if kill == "revoke":
        pds.revoke_all(alice)
    elif kill == "takedown":
        pds.takedown(alice)
    else:
        clock.advance(91 * 86400)
    with pytest.raises(SessionExpiredError):
        manager.refresh_token()
    assert manager.session is None
    assert stored(session_dir, alice) is None
    assert kinds(events) == ["create", "expired"]
    assert events[1][1] is not None and events[1][1].did == alice


@pytest.mark.parametrize("fault", ["500", "502", "429", "drop"])
def test_transient_refresh_failures_keep_the_session(
    manager: PersistentSessionManager,
    pds: FakePds,
    alice: str,
    session_dir: Path,
    events: Events,
    fault: Any,
) -> None:
    session = manager.login("alice.test", "alice-pass")
    pds.set_fault(fault, count=1, nsids={REFRESH})
    with pytest.raises(SessionNetworkError) as info:
        manager.refresh_token()
    assert manager.session == session
    assert stored(session_dir, alice) == session.to_json_dict()
    assert kinds(events) == ["create", "network-error"]
    if fault == "429":
        assert info.value.retry_after == 2.0
    else:
        manager.refresh_token()
        assert kinds(events)[-1] == "update"


def test_retry_after_is_honoured_without_a_retry_loop(
    manager: PersistentSessionManager, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    manager.login("alice.test", "alice-pass")
    pds.set_fault("429", nsids={REFRESH})
    with pytest.raises(SessionNetworkError):
        manager.refresh_token()
    assert pds.counts[REFRESH] == 1
    pds.set_fault(None)
    with pytest.raises(SessionNetworkError) as info:
        manager.refresh_token()
    assert info.value.retry_after is not None and 0 < info.value.retry_after <= 2.0
    assert pds.counts[REFRESH] == 1  # not asked again before Retry-After passed
    clock.advance(2.5)
    manager.refresh_token()
    assert pds.counts[REFRESH] == 2


def test_failed_proactive_refresh_still_uses_a_token_that_has_not_expired(
    manager: PersistentSessionManager, pds: FakePds, alice: str, clock: ManualClock, events: Events
) -> None:
    manager.login("alice.test", "alice-pass")
    clock.advance(7200 - 60)
    pds.set_fault("502", count=1, nsids={REFRESH})
    assert manager.query(GET_SESSION)["did"] == alice
    assert kinds(events) == ["create", "network-error"]
    clock.advance(120)
    pds.set_fault("502", count=1, nsids={REFRESH})
    with pytest.raises(SessionNetworkError):
        manager.query(GET_SESSION)  # expired and not refreshable now: fail, keep the session
    assert manager.session is not None


def test_refresh_stays_bound_to_its_did_when_the_account_switches_mid_refresh(
    session_dir: Path, pds: FakePds, alice: str, bob: str, clock: ManualClock
) -> None:
    entered, go = threading.Event(), threading.Event()

    def hold_refresh(request: httpx.Request) -> None:
        if request.url.path.endswith(REFRESH):
            entered.set()
            go.wait(10)

    http = httpx.Client(event_hooks={"request": [hold_refresh]})
    with PersistentSessionManager(session_dir, pds.url, clock=clock, http=http) as m:
        bob_session = m.login("bob.test", "bob-pass")
        alice_before = m.login("alice.test", "alice-pass")
        results: list[AtpSessionData] = []
        worker = threading.Thread(target=lambda: results.append(m.refresh_token()))
        worker.start()
        assert entered.wait(10)
        assert m.load_session(bob) == bob_session  # switch while alice's refresh is in flight
        go.set()
        worker.join(10)
        assert results and results[0].did == alice
        assert m.session == bob_session
        assert stored(session_dir, bob) == bob_session.to_json_dict()
        alice_file = stored(session_dir, alice)
        assert alice_file is not None
        assert alice_file["refreshJwt"] == results[0].refresh_jwt != alice_before.refresh_jwt
    http.close()


class _ForeignRefresh(BaseHTTPRequestHandler):
    """Answers every refreshSession with a session of another account."""

    def do_POST(self) -> None:
        body = json.dumps(self.server.owner.answer).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ForeignPds(LoopbackServer):
    handler_class = _ForeignRefresh

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__()
        self.answer = answer


def test_refresh_answer_for_another_did_is_an_error_and_not_stored(
    session_dir: Path, pds: FakePds, alice: str, bob: str, clock: ManualClock
) -> None:
    with PersistentSessionManager(session_dir, pds.url, clock=clock) as m:
        bob_session = m.login("bob.test", "bob-pass")
        alice_session = m.login("alice.test", "alice-pass")
    with (
        ForeignPds(bob_session.to_json_dict()) as foreign,
        PersistentSessionManager(session_dir, foreign.url, clock=clock) as m,
    ):
        m.load_session(alice)
        with pytest.raises(SessionError, match="another account"):
            m.refresh_token()
        assert m.session == alice_session
    assert stored(session_dir, alice) == alice_session.to_json_dict()


# -- events ------------------------------------------------------------------------------


def test_several_callbacks_a_raising_one_is_logged_and_unsubscribe_works(
    manager: PersistentSessionManager, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    first: list[str] = []
    second: list[str] = []

    def broken(event: AtpSessionEvent, session: AtpSessionData | None) -> None:
        raise RuntimeError("listener bug")

    manager.on_session_event(lambda e, s: first.append(e.value))
    manager.on_session_event(broken)
    unsubscribe = manager.on_session_event(lambda e, s: second.append(e.value))
    with caplog.at_level(logging.ERROR):
        manager.login("alice.test", "alice-pass")
    assert first == ["create"] and second == ["create"]
    assert "listener bug" in caplog.text
    unsubscribe()
    manager.clear_session()
    assert first == ["create", "delete"] and second == ["create"]


# -- sharing -----------------------------------------------------------------------------


def test_threads_crossing_expiry_share_one_refresh(
    manager: PersistentSessionManager, pds: FakePds, alice: str, clock: ManualClock, events: Events
) -> None:
    manager.login("alice.test", "alice-pass")
    clock.advance(7201)
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def call() -> None:
        barrier.wait()
        try:
            manager.query(GET_SESSION)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert pds.counts[REFRESH] == 1
    assert kinds(events) == ["create", "update"]


def test_a_second_manager_adopts_the_pair_the_first_refreshed(
    session_dir: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    with (
        PersistentSessionManager(session_dir, pds.url, clock=clock) as first,
        PersistentSessionManager(session_dir, pds.url, clock=clock) as second,
    ):
        first.login("alice.test", "alice-pass")
        second.load_session(alice)
        seen: Events = []
        second.on_session_event(lambda e, s: seen.append((e, s)))
        clock.advance(7201)
        refreshed = first.refresh_token()
        assert second.query(GET_SESSION)["did"] == alice
        assert second.session == refreshed
        assert kinds(seen) == ["update"]
    assert pds.counts[REFRESH] == 1


def test_prune_removes_sessions_whose_refresh_token_expired(
    manager: PersistentSessionManager,
    pds: FakePds,
    alice: str,
    bob: str,
    clock: ManualClock,
    events: Events,
) -> None:
    manager.login("alice.test", "alice-pass")
    clock.advance(80 * 86400)
    manager.login("bob.test", "bob-pass")
    clock.advance(11 * 86400)
    assert [s.did for s in manager.sessions()] == sorted([alice, bob])
    assert manager.prune_expired_sessions() == [alice]
    assert manager.list_sessions() == [bob]
    assert [s.handle for s in manager.sessions()] == ["bob.test"]
    assert kinds(events)[-1] == "expired"


# -- httpx.Auth ----------------------------------------------------------------------------


def test_auth_signs_refreshes_and_retries_a_plain_httpx_client(
    session_dir: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    with PersistentSessionManager(session_dir, pds.url, clock=ManualClock(clock.time())) as m:
        m.login("alice.test", "alice-pass")
        with httpx.Client(base_url=pds.url, auth=m.auth) as client:
            assert client.get(f"/xrpc/{GET_SESSION}").json()["did"] == alice
            clock.advance(7201)  # the server now refuses the token
            response = client.post(
                "/xrpc/com.atproto.repo.createRecord",
                json={"repo": alice, "collection": "app.bsky.feed.post", "record": {"text": "x"}},
            )
            assert response.status_code == 200
    assert pds.counts[REFRESH] == 1
    assert pds.errors["com.atproto.repo.createRecord"] == 1


def test_auth_does_not_replay_a_streamed_body(
    session_dir: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    with PersistentSessionManager(session_dir, pds.url, clock=ManualClock(clock.time())) as m:
        m.login("alice.test", "alice-pass")
        clock.advance(7201)
        body = json.dumps({"repo": alice, "collection": "a.b.c", "record": {}}).encode()
        with httpx.Client(base_url=pds.url, auth=m.auth) as client:
            response = client.post(
                "/xrpc/com.atproto.repo.createRecord",
                content=iter([body]),
                headers={"Content-Type": "application/json"},
            )
    assert response.status_code == 400 and response.json()["error"] == "ExpiredToken"
    assert pds.counts["com.atproto.repo.createRecord"] == 1
    assert pds.counts[REFRESH] == 0
