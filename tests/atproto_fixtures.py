"""Fixtures the ATProto manager tests share: a manual clock and a strict fake PDS (grace 0)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sessionkeeper.clock import ManualClock
from sessionkeeper.testing.fake_pds import FakePds


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
