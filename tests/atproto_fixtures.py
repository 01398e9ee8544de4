"""Fixtures the ATProto manager tests share: a manual clock and a strict fake PDS (grace 0)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sessionkeeper.clock import ManualClock
from sessionkeeper.stores import MemoryStore
from sessionkeeper.stores.errors import StoreUnavailableError
from sessionkeeper.testing.fake_pds import FakePds


class FlakyStore(MemoryStore):
    """A memory store whose writes fail while ``down`` is set (a Redis restart, a full disk)."""

    down = False

    def put(self, name: str, data: bytes) -> None:
        """Store, unless the store is ``down``."""
        if self.down:
            raise StoreUnavailableError("store is down")
        super().put(name, data)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def pds(clock: ManualClock) -> Iterator[FakePds]:
    with FakePds(clock=clock, grace_period=0) as fake:
        yield fake


@pytest.fixture
def alice(pds: FakePds) -> str:
    return pds.create_account("alice.test", "alice-pass", email="alice@example.com")


@pytest.fixture
def bob(pds: FakePds) -> str:
    return pds.create_account("bob.test", "bob-pass")
