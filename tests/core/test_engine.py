"""Core pieces: event bus, clocks, lock-then-re-read refresh, store URLs."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from sessionkeeper import ManualClock, SystemClock
from sessionkeeper.core.flow import BlockingDriver, Flow
from sessionkeeper.core.singleflight import Outcome, Produced, Verdict, single_flight
from sessionkeeper.events import EventBus
from sessionkeeper.stores import (
    DirectoryStore,
    MemoryStore,
    SqliteStore,
    StoreUrlError,
    open_store,
    resolve_store,
)
from sessionkeeper.stores.errors import StoreError as StoreWriteError


def test_event_bus_calls_every_callback_and_survives_a_raising_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus: EventBus[str, int] = EventBus()
    seen: list[tuple[str, str, int]] = []

    def broken(event: str, payload: int) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(lambda e, p: seen.append(("first", e, p)))
    bus.subscribe(broken)
    unsubscribe = bus.subscribe(lambda e, p: seen.append(("third", e, p)))
    with caplog.at_level(logging.ERROR):
        bus.emit("update", 7)
    assert seen == [("first", "update", 7), ("third", "update", 7)]
    assert "listener bug" in caplog.text
    unsubscribe()
    unsubscribe()  # idempotent
    bus.emit("delete", 8)
    assert seen[-1] == ("first", "delete", 8)
    assert len(bus) == 2


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(1000.0)
    assert clock.time() == 1000.0
    clock.advance(5)
    clock.sleep(2.5)
    assert clock.time() == 1007.5
    clock.set(10.0)
    assert clock.time() == 10.0
    assert abs(SystemClock().time() - __import__("time").time()) < 5


class CounterPolicy:
    """A single-flight policy over a number: values of 100 or more are fresh."""

    name = "token"

    def __init__(self, produce: Callable[[int | None], Produced[int]]) -> None:
        self._produce = produce

    def decode(self, raw: bytes | None) -> int | None:
        return int(raw) if raw else None

    def encode(self, value: int) -> bytes:
        return str(value).encode()

    def adoptable(self, stored: int, known: int | None) -> bool:
        return stored >= 100

    def base(self, stored: int | None, known: int | None) -> int | None:
        return stored if stored is not None else known

    def produce(self, base: int | None) -> Flow[Produced[int]]:
        answer = self._produce(base)
        yield from ()
        return answer


def _counter_refresh(store: DirectoryStore, produced: list[int]) -> Outcome:
    def produce(current: int | None) -> Produced[int]:
        produced.append(1)
        return Produced(Verdict.FRESH, (current or 0) + 100)

    flow = single_flight(CounterPolicy(produce), None)
    return BlockingDriver(store, httpx.Client()).run(flow).outcome


def test_single_flight_produces_once_among_many_threads(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path)
    store.put("token", b"1")
    produced: list[int] = []
    outcomes: list[Outcome] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(_counter_refresh(store, produced)))
        for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(produced) == 1
    assert outcomes.count(Outcome.REFRESHED) == 1
    assert outcomes.count(Outcome.ADOPTED) == 15
    assert store.get("token") == b"101"


def test_single_flight_removes_a_dead_value_and_keeps_it_on_error() -> None:
    store = MemoryStore()
    store.put("token", b"1")
    driver = BlockingDriver(store, httpx.Client())

    def fail(current: int | None) -> Produced[int]:
        raise ConnectionError("server down")

    with pytest.raises(ConnectionError):
        driver.run(single_flight(CounterPolicy(fail), 1))
    assert store.get("token") == b"1"
    unavailable = driver.run(
        single_flight(CounterPolicy(lambda v: Produced(Verdict.UNAVAILABLE, retry_after=3)), 1)
    )
    assert (unavailable.outcome, unavailable.retry_after) == (Outcome.UNAVAILABLE, 3)
    assert store.get("token") == b"1"
    dead = driver.run(single_flight(CounterPolicy(lambda v: Produced(Verdict.DEAD)), 1))
    assert dead.outcome is Outcome.REMOVED
    assert store.get("token") is None


def test_single_flight_keeps_a_new_value_the_store_cannot_take() -> None:
    class FullStore(MemoryStore):
        def put(self, name: str, data: bytes) -> None:
            raise StoreWriteError(f"cannot write {name}: no space left on device")

    store = FullStore()
    flow = single_flight(CounterPolicy(lambda v: Produced(Verdict.FRESH, 500)), None)
    result = BlockingDriver(store, httpx.Client()).run(flow)
    assert (result.outcome, result.session, result.stored) == (Outcome.REFRESHED, 500, False)


def test_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(open_store(f"dir:{tmp_path / 'd'}"), DirectoryStore)
    assert isinstance(open_store(f"sqlite:{tmp_path / 's.db'}"), SqliteStore)
    assert open_store("memory:shared") is open_store("memory:shared")
    for bad, message in [
        ("", "empty"),
        ("nowhere", "no scheme"),
        ("ftp://x", "unknown"),
        # A misspelt option must not quietly give an unencrypted store.
        (f"dir:{tmp_path / 'd'}?encrypted=1", "'encrypted'"),
        (f"sqlite:{tmp_path / 's.db'}?encrypt=1&mode=ro", "'mode'"),
        ("memory:?ttl=5", "'ttl'"),
    ]:
        with pytest.raises(StoreUrlError, match=message):
            open_store(bad)
    monkeypatch.setenv("SESSIONKEEPER_STORE", f"dir:{tmp_path / 'env'}")
    chosen = resolve_store(None, MemoryStore)
    assert isinstance(chosen, DirectoryStore) and chosen.path == tmp_path / "env"
    monkeypatch.delenv("SESSIONKEEPER_STORE")
    assert isinstance(resolve_store(None, MemoryStore), MemoryStore)
