"""The MarshalX tests' manager: a directory store refreshing at MarshalX's margin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessionkeeper.atproto import PersistentSessionManager
from sessionkeeper.atproto.marshalx import MARSHALX_REFRESH_MARGIN
from sessionkeeper.clock import ManualClock
from sessionkeeper.testing.fake_pds import FakePds


@pytest.fixture
def manager(tmp_path: Path, pds: FakePds, clock: ManualClock) -> Iterator[PersistentSessionManager]:
    with PersistentSessionManager(
        tmp_path / "sessions", pds.url, clock=clock, refresh_margin=MARSHALX_REFRESH_MARGIN
    ) as m:
        yield m
