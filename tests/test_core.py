"""Core pieces: event bus, clocks, lock-then-re-read refresh, store URLs."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from sessionkeeper import ManualClock, SystemClock
from sessionkeeper.events import EventBus
from sessionkeeper.refresh import Outcome, refresh_under_lock
from sessionkeeper.stores import (
    DirectoryStore,
    MemoryStore,
    SqliteStore,
    StoreUrlError,
    open_store,
    resolve_store,
)


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


def _counter_refresh(store: DirectoryStore, produced: list[int]) -> Outcome:
    def produce(current: int | None) -> int:
        produced.append(1)
        return (current or 0) + 100

    result = refresh_under_lock(
        store,
        "token",
        decode=lambda raw: int(raw) if raw else None,
        is_usable=lambda value: value is not None and value >= 100,
        produce=produce,
        encode=lambda value: str(value).encode(),
    )
    return result.outcome


def test_refresh_under_lock_produces_once_among_many_threads(tmp_path: Path) -> None:
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


def test_refresh_under_lock_removes_a_dead_value_and_keeps_it_on_error() -> None:
    store = MemoryStore()
    store.put("s", b"old")

    def fail(current: bytes | None) -> bytes:
        raise ConnectionError("server down")

    with pytest.raises(ConnectionError):
        refresh_under_lock(
            store, "s", decode=lambda r: r, is_usable=lambda v: False, produce=fail, encode=bytes
        )
    assert store.get("s") == b"old"
    result = refresh_under_lock(
        store,
        "s",
        decode=lambda r: r,
        is_usable=lambda v: False,
        produce=lambda v: None,
        encode=bytes,
    )
    assert result.outcome is Outcome.REMOVED
    assert store.get("s") is None


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
