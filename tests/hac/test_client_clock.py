"""The HAC client's session times come from its injectable clock, so tests move time by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.clock import ManualClock
from sessionkeeper.hac.auth import BasicAuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.session import SessionManager, SessionMetadata
from sessionkeeper.testing.fake_hac import FakeHac

pytestmark = pytest.mark.timeout(60)

T0 = 1_000_000.0
TWO_HOURS = 2 * 3600.0


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac() as server:
        yield server


def _cached(manager: SessionManager, fake: FakeHac) -> SessionMetadata:
    session = manager.load_session(fake.url, "admin", "local")
    assert session is not None
    return session


def test_a_manual_clock_drives_session_age_idle_and_touches_without_sleeping(
    fake: FakeHac, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    manager = SessionManager(tmp_path, clock=clock)
    with HacClient(
        fake.url, BasicAuthHandler("admin", "nimda"), session_manager=manager, clock=clock
    ) as client:
        client.execute_groovy("return 1")  # a cold start: the login is stamped T0
        first = _cached(manager, fake)
        assert (first.created_at, first.last_used_at) == (T0, T0)

        clock.advance(client.touch_interval / 2)
        client.execute_groovy("return 2")
        assert _cached(manager, fake).last_used_at == T0  # used moments ago: no durable write

        clock.advance(client.touch_interval)
        client.execute_groovy("return 3")
        touched = _cached(manager, fake)
        assert touched.last_used_at == T0 + 1.5 * client.touch_interval
        assert touched.idle_at(clock.time()) == 0.0
        assert touched.age_at(clock.time()) == 1.5 * client.touch_interval

        clock.advance(TWO_HOURS)
        assert touched.idle_at(clock.time()) == TWO_HOURS
        fake.kill_all_sessions()  # HAC ended the idle session
        client.execute_groovy("return 4")
        renewed = _cached(manager, fake)
    assert renewed.session_id != first.session_id
    assert renewed.created_at == T0  # the key's session history began then
    assert renewed.last_used_at == clock.time()
    assert fake.logins == 2
    assert [run.script for run in fake.groovy_runs] == [f"return {n}" for n in range(1, 5)]


def test_a_client_without_a_clock_uses_its_session_managers(fake: FakeHac, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    manager = SessionManager(tmp_path, clock=clock)
    with HacClient(fake.url, BasicAuthHandler("admin", "nimda"), session_manager=manager) as client:
        assert client.clock is clock
        client.login()
    assert _cached(manager, fake).created_at == T0


def test_a_store_given_to_the_client_is_stamped_by_the_clients_clock(
    fake: FakeHac, tmp_path: Path
) -> None:
    from sessionkeeper.stores.memory import MemoryStore

    clock = ManualClock(T0)
    store = MemoryStore()
    with HacClient(
        fake.url, BasicAuthHandler("admin", "nimda"), store=store, clock=clock
    ) as client:
        client.login()
        assert client.session_manager is not None
        client.session_manager.save_session(fake.url, "admin", "local", "id", "csrf")
        saved = _cached(client.session_manager, fake)
    assert (saved.created_at, saved.last_used_at) == (T0, T0)
