"""A login's write waits for the DID's lock, so it can never interleave with a refresh."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.atproto import (
    AsyncPersistentSessionManager,
    PersistentSessionManager,
    name_for_did,
)
from sessionkeeper.stores import DirectoryStore
from sessionkeeper.testing.fake_pds import FakePds

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def pds() -> Iterator[FakePds]:
    with FakePds() as fake:
        yield fake


def test_login_waits_for_a_refresh_holding_the_lock(pds: FakePds, tmp_path: Path) -> None:
    did = pds.create_account("alice.test", "alice-pass")
    store = DirectoryStore(tmp_path)
    name = name_for_did(did)
    holding, release, done = threading.Event(), threading.Event(), threading.Event()

    def refresher() -> None:
        with store.lock(name):
            holding.set()
            release.wait(20)

    thread = threading.Thread(target=refresher)
    thread.start()
    holding.wait(5)
    manager = PersistentSessionManager(tmp_path, pds.url)

    def log_in() -> None:
        manager.login("alice.test", "alice-pass")
        done.set()

    login = threading.Thread(target=log_in)
    login.start()
    try:
        assert not done.wait(1.0), "login wrote while another holder had the lock"
        assert store.get(name) is None
    finally:
        release.set()
        thread.join()
    login.join(10)
    assert done.is_set()
    assert store.get(name) is not None
    manager.close()


def test_async_login_waits_for_the_lock_too(pds: FakePds, tmp_path: Path) -> None:
    did = pds.create_account("alice.test", "alice-pass")
    store = DirectoryStore(tmp_path)
    name = name_for_did(did)
    holding, release = threading.Event(), threading.Event()

    def refresher() -> None:
        with store.lock(name):
            holding.set()
            release.wait(20)

    thread = threading.Thread(target=refresher)
    thread.start()
    holding.wait(5)

    async def scenario() -> None:
        manager = AsyncPersistentSessionManager(tmp_path, pds.url)
        login = asyncio.create_task(manager.login("alice.test", "alice-pass"))
        await asyncio.sleep(1.0)
        assert not login.done(), "async login wrote while another holder had the lock"
        release.set()
        await asyncio.wait_for(login, 10)
        await manager.aclose()

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        thread.join()
    assert store.get(name) is not None
