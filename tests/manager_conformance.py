"""One conformance suite for every session manager: the same guarantees, proven once each.

A test class inherits :class:`ManagerConformance` and supplies a harness: how to
build a manager on a store (blocking or asyncio, password or OAuth), how to
start a session on its fake server, and how to make that server expire,
revoke or fail. Each test then holds for the sync, the async and the OAuth
managers alike.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sessionkeeper.atproto import (
    AtpSessionEvent,
    NoSessionError,
    SessionExpiredError,
    SessionNetworkError,
)
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.memory import MemoryStore


class Blocking:
    """Runs an asyncio manager's coroutines on a loop of its own, callable from any thread."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.inner = self._call(self._build(make))

    @staticmethod
    async def _build(make: Callable[[], Any]) -> Any:
        return make()  # an httpx.AsyncClient must be made on the loop that uses it

    def _call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not asyncio.iscoroutinefunction(attribute):
            return attribute
        return lambda *args, **kwargs: self._call(attribute(*args, **kwargs))

    def close(self) -> None:
        """Close the manager and stop the loop."""
        self._call(self.inner.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class ManagerConformance:
    """The guarantees every manager keeps; subclasses implement the harness methods."""

    # -- the harness ----------------------------------------------------------------------

    def manager(self, store: Store) -> Any:
        """A manager on ``store`` with blocking methods (``close()`` ends it)."""
        raise NotImplementedError

    def start(self, manager: Any) -> str:
        """Create a session on the fake server, store it through ``manager``; its DID."""
        raise NotImplementedError

    def expire_access(self) -> None:
        """Move the clock past the access token's expiry."""
        raise NotImplementedError

    def refreshes(self) -> int:
        """How many successful refreshes the server has made."""
        raise NotImplementedError

    def revoke(self, did: str) -> None:
        """Make the server treat every refresh token of ``did`` as dead."""
        raise NotImplementedError

    def fail_refreshes(self) -> None:
        """Make the server answer refreshes with a 5xx until told otherwise."""
        raise NotImplementedError

    def heal(self) -> None:
        """Stop failing refreshes."""
        raise NotImplementedError

    # -- the suite -------------------------------------------------------------------------

    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()

    @pytest.fixture
    def opened(self, store: MemoryStore) -> Iterator[Any]:
        managers: list[Any] = []

        def open_manager() -> Any:
            manager = self.manager(store)
            managers.append(manager)
            return manager

        yield open_manager
        for manager in managers:
            manager.close()

    def test_a_stored_session_loads_in_another_manager_and_calls_work(self, opened: Any) -> None:
        first = opened()
        did = self.start(first)
        second = opened()
        assert second.list_sessions() == [did]
        assert second.load_session(did) is not None
        assert second.query("com.atproto.server.getSession")["did"] == did

    def test_an_expired_access_token_is_refreshed_once_before_the_call(self, opened: Any) -> None:
        manager = opened()
        did = self.start(manager)
        self.expire_access()
        assert manager.needs_refresh()
        assert manager.query("com.atproto.server.getSession")["did"] == did
        assert self.refreshes() == 1
        assert not manager.needs_refresh()

    def test_holders_sharing_a_store_refresh_once(self, opened: Any) -> None:
        did = self.start(opened())
        managers = [opened() for _ in range(3)]
        for manager in managers:
            manager.load_session(did)
        self.expire_access()
        call = "com.atproto.server.getSession"
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(lambda m: m.query(call), managers * 2))
        assert self.refreshes() == 1
        assert [answer["did"] for answer in answers] == [did] * 6
        assert all(manager.session == managers[0].session for manager in managers)

    def test_a_dead_grant_removes_the_session_and_says_expired(self, opened: Any) -> None:
        manager = opened()
        did = self.start(manager)
        events: list[AtpSessionEvent] = []
        manager.on_session_event(lambda event, _: events.append(event))
        self.revoke(did)
        with pytest.raises(SessionExpiredError):
            manager.refresh_token()
        assert events == [AtpSessionEvent.EXPIRED]
        assert manager.session is None and manager.list_sessions() == []
        with pytest.raises(NoSessionError):
            manager.query("com.atproto.server.getSession")

    def test_a_server_error_keeps_the_session_and_says_network_error(self, opened: Any) -> None:
        manager = opened()
        did = self.start(manager)
        events: list[AtpSessionEvent] = []
        manager.on_session_event(lambda event, _: events.append(event))
        self.fail_refreshes()
        with pytest.raises(SessionNetworkError):
            manager.refresh_token()
        assert events == [AtpSessionEvent.NETWORK_ERROR]
        assert manager.list_sessions() == [did]
        self.heal()
        manager.refresh_token()
        assert self.refreshes() == 1

    def test_a_corrupt_entry_is_skipped_by_listings(self, opened: Any, store: MemoryStore) -> None:
        manager = opened()
        did = self.start(manager)
        name = next(iter(store.names()))
        store.put(name.replace(".json", "zz.json"), b"{not json")
        assert manager.list_sessions() == [did]

    def test_clear_session_removes_it_everywhere(self, opened: Any) -> None:
        manager = opened()
        self.start(manager)
        events: list[AtpSessionEvent] = []
        manager.on_session_event(lambda event, _: events.append(event))
        manager.clear_session()
        assert events == [AtpSessionEvent.DELETE]
        assert manager.session is None and opened().list_sessions() == []
