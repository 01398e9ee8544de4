"""AsyncPersistentSessionManager: the same essentials as the blocking manager, on asyncio."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import (
    AsyncPersistentSessionManager,
    AtpSessionData,
    AtpSessionEvent,
    NoSessionError,
    PersistentSessionManager,
    SessionExpiredError,
    SessionNetworkError,
    XrpcError,
    name_for_did,
)
from sessionkeeper.clock import ManualClock
from sessionkeeper.testing.fake_pds import FakePds

pytestmark = pytest.mark.timeout(60)

REFRESH = "com.atproto.server.refreshSession"
GET_SESSION = "com.atproto.server.getSession"


def recorder(
    manager: AsyncPersistentSessionManager,
) -> list[tuple[AtpSessionEvent, AtpSessionData | None]]:
    seen: list[tuple[AtpSessionEvent, AtpSessionData | None]] = []
    manager.on_session_event(lambda e, s: seen.append((e, s)))
    return seen


def test_async_lifecycle_login_load_list_refresh_clear(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock) as m:
            seen = recorder(m)
            session = await m.login("alice.test", "alice-pass")
            assert m.session == session and m.pds_endpoint == pds.url
            assert await m.list_sessions() == [alice]
            refreshed = await m.refresh_token()
            assert refreshed.refresh_jwt != session.refresh_jwt
            await m.clear_session()
            assert m.session is None and await m.list_sessions() == []
            await m.store_session(refreshed)
            assert await m.load_session(alice) == refreshed
            assert [e.value for e, _ in seen] == ["create", "update", "delete", "create", "create"]
            file = json.loads((tmp_path / name_for_did(alice)).read_text())
            assert file == refreshed.to_json_dict()

    asyncio.run(scenario())


def test_async_prune_and_sessions(
    tmp_path: Path, pds: FakePds, alice: str, bob: str, clock: ManualClock
) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock) as m:
            seen = recorder(m)
            await m.login("alice.test", "alice-pass")
            clock.advance(80 * 86400)
            await m.login("bob.test", "bob-pass")
            clock.advance(11 * 86400)
            assert [s.did for s in await m.sessions()] == sorted([alice, bob])
            assert await m.prune_expired_sessions() == [alice]
            assert await m.list_sessions() == [bob]
            assert seen[-1][0] is AtpSessionEvent.EXPIRED
            assert m.session is not None and m.session.did == bob

    asyncio.run(scenario())


def test_async_login_failure_emits_create_failed(tmp_path: Path, pds: FakePds, alice: str) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url) as m:
            seen = recorder(m)
            with pytest.raises(XrpcError):
                await m.login("alice.test", "nope")
            assert [e.value for e, _ in seen] == ["create-failed"]
            with pytest.raises(NoSessionError):
                await m.query(GET_SESSION)

    asyncio.run(scenario())


def test_async_proactive_and_reactive_refresh(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    async def scenario() -> None:
        own_clock = ManualClock(clock.time())
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=own_clock) as m:
            await m.login("alice.test", "alice-pass")
            clock.advance(7201)  # only the server's clock: the token is refused
            assert (await m.query(GET_SESSION))["did"] == alice  # reactive
            assert pds.counts[REFRESH] == 1 and pds.errors[GET_SESSION] == 1
            own_clock.set(clock.time() + 7200 - 60)
            assert m.needs_refresh()
            clock.set(own_clock.time())
            assert (await m.query(GET_SESSION))["did"] == alice  # proactive
            assert pds.counts[REFRESH] == 2 and pds.errors[GET_SESSION] == 1
            assert not m.needs_refresh()

    asyncio.run(scenario())


def test_async_coroutines_crossing_expiry_share_one_refresh(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock) as m:
            seen = recorder(m)
            await m.login("alice.test", "alice-pass")
            clock.advance(7201)
            results = await asyncio.gather(*(m.query(GET_SESSION) for _ in range(20)))
            assert all(r["did"] == alice for r in results)
            assert [e.value for e, _ in seen] == ["create", "update"]
        assert pds.counts[REFRESH] == 1

    asyncio.run(scenario())


def test_async_and_blocking_managers_share_one_refresh(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    with PersistentSessionManager(tmp_path, pds.url, clock=clock) as blocking:
        blocking.login("alice.test", "alice-pass")
        clock.advance(7201)
        refreshed = blocking.refresh_token()

    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock) as m:
            loaded = await m.load_session(alice)
            assert loaded == refreshed
            await m.query(GET_SESSION)

    asyncio.run(scenario())
    assert pds.counts[REFRESH] == 1


@pytest.mark.parametrize("fault", ["500", "429", "drop"])
def test_async_transient_failure_keeps_the_session(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock, fault: Any
) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock) as m:
            seen = recorder(m)
            session = await m.login("alice.test", "alice-pass")
            pds.set_fault(fault, count=1, nsids={REFRESH})
            with pytest.raises(SessionNetworkError) as info:
                await m.refresh_token()
            assert m.session == session
            assert await m.list_sessions() == [alice]
            assert [e for e, _ in seen][-1:] == [AtpSessionEvent.NETWORK_ERROR]
            if fault == "429":
                assert info.value.retry_after == 2.0
                with pytest.raises(SessionNetworkError):
                    await m.refresh_token()
                assert pds.counts[REFRESH] == 1
                clock.advance(3)
            await m.refresh_token()
            assert [e for e, _ in seen][-1:] == [AtpSessionEvent.UPDATE]

    asyncio.run(scenario())


def test_async_revoked_session_expires(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock) as m:
            seen = recorder(m)
            await m.login("alice.test", "alice-pass")
            pds.revoke_all(alice)
            with pytest.raises(SessionExpiredError):
                await m.refresh_token()
            assert m.session is None and await m.list_sessions() == []
            assert seen[-1][0] is AtpSessionEvent.EXPIRED

    asyncio.run(scenario())


def test_async_logout_revokes_and_clears(tmp_path: Path, pds: FakePds, alice: str) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url) as m:
            seen = recorder(m)
            await m.login("alice.test", "alice-pass")
            await m.logout()
            assert m.session is None and await m.list_sessions() == []
            assert [e.value for e, _ in seen] == ["create", "delete"]
        assert pds.counts["com.atproto.server.deleteSession"] == 1

    asyncio.run(scenario())


def test_async_refresh_stays_bound_to_its_did(
    tmp_path: Path, pds: FakePds, alice: str, bob: str, clock: ManualClock
) -> None:
    async def scenario() -> None:
        entered, go = asyncio.Event(), asyncio.Event()

        async def hold(request: httpx.Request) -> None:
            if request.url.path.endswith(REFRESH):
                entered.set()
                await go.wait()

        http = httpx.AsyncClient(event_hooks={"request": [hold]})
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock, http=http) as m:
            bob_session = await m.login("bob.test", "bob-pass")
            before = await m.login("alice.test", "alice-pass")
            task = asyncio.create_task(m.refresh_token())
            await entered.wait()
            await m.load_session(bob)
            go.set()
            refreshed = await task
            assert refreshed.did == alice and m.session == bob_session
            alice_file = json.loads((tmp_path / name_for_did(alice)).read_text())
            assert alice_file["refreshJwt"] == refreshed.refresh_jwt != before.refresh_jwt
        await http.aclose()

    asyncio.run(scenario())


def test_async_auth_with_an_async_client(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    async def scenario() -> None:
        async with AsyncPersistentSessionManager(
            tmp_path, pds.url, clock=ManualClock(clock.time())
        ) as m:
            await m.login("alice.test", "alice-pass")
            clock.advance(7201)
            async with httpx.AsyncClient(base_url=pds.url, auth=m.auth) as client:
                response = await client.get(f"/xrpc/{GET_SESSION}")
                assert response.status_code == 200 and response.json()["did"] == alice
            with httpx.Client(base_url=pds.url, auth=m.auth) as client, pytest.raises(TypeError):
                client.get(f"/xrpc/{GET_SESSION}")
        assert pds.counts[REFRESH] == 1

    asyncio.run(scenario())


def test_blocking_manager_auth_works_with_an_async_client(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    with PersistentSessionManager(tmp_path, pds.url, clock=ManualClock(clock.time())) as m:
        m.login("alice.test", "alice-pass")
        clock.advance(7201)

        async def scenario() -> int:
            async with httpx.AsyncClient(base_url=pds.url, auth=m.auth) as client:
                return (await client.get(f"/xrpc/{GET_SESSION}")).status_code

        assert asyncio.run(scenario()) == 200
    assert pds.counts[REFRESH] == 1


def test_async_event_loop_is_not_blocked_while_another_process_holds_the_lock(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    with PersistentSessionManager(tmp_path, pds.url, clock=clock) as blocking:
        blocking.login("alice.test", "alice-pass")
    clock.advance(7201)
    store_lock_holder = PersistentSessionManager(tmp_path, pds.url, clock=clock)

    async def scenario() -> None:
        async with AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock) as m:
            await m.load_session(alice)
            ticks = 0
            with store_lock_holder.store.lock(name_for_did(alice)):
                task = asyncio.create_task(m.query(GET_SESSION))
                for _ in range(5):
                    await asyncio.sleep(0.01)
                    ticks += 1
                assert not task.done()
            assert ticks == 5
            await task

    asyncio.run(scenario())
    store_lock_holder.close()
    assert pds.counts[REFRESH] == 1


class _HoldRefreshAnswer(httpx.AsyncBaseTransport):
    """A real transport that, once, holds a refreshSession answer it already received."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.answered = asyncio.Event()
        self.held = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path.endswith(REFRESH) and not self.held:
            self.held = True
            await response.aread()
            self.answered.set()  # the server has rotated the pair; its answer is on the way
            await asyncio.sleep(0.2)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def test_a_refresh_cancelled_after_the_server_rotated_still_stores_the_new_pair(
    tmp_path: Path, pds: FakePds, alice: str, clock: ManualClock
) -> None:
    """A caller's timeout must not drop a rotated pair: with single-use refresh tokens
    (grace 0) the old pair is dead on the server, so losing the new one loses the session."""

    async def scenario() -> None:
        transport = _HoldRefreshAnswer()
        async with (
            httpx.AsyncClient(transport=transport) as http,
            AsyncPersistentSessionManager(tmp_path, pds.url, clock=clock, http=http) as m,
        ):
            seen = recorder(m)
            first = await m.login("alice.test", "alice-pass")
            task = asyncio.create_task(m.refresh_token())
            await transport.answered.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The next refresh waits for the cancelled one, which stored its pair: adopted.
            again = await m.refresh_token()
            assert again.refresh_jwt != first.refresh_jwt
            assert m.session == again
            stored = json.loads((tmp_path / name_for_did(alice)).read_text())
            assert stored["refreshJwt"] == again.refresh_jwt
            assert pds.counts[REFRESH] == 1
            third = await m.refresh_token()  # and the session lives on
            assert third.refresh_jwt != again.refresh_jwt and pds.counts[REFRESH] == 2
            assert [e.value for e, _ in seen] == ["create", "update", "update"]

    asyncio.run(scenario())
