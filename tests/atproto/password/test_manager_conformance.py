"""The manager conformance suite, run against the sync, async and OAuth managers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sessionkeeper.atproto import (
    AsyncOAuthSessionManager,
    AsyncPersistentSessionManager,
    OAuthSessionManager,
    PersistentSessionManager,
)
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores.base import Store
from sessionkeeper.testing.fake_pds import FakePds
from tests.atproto.oauth.test_oauth import FakeOAuthPds, authorized
from tests.manager_conformance import Blocking, ManagerConformance

pytestmark = pytest.mark.timeout(60)

REFRESH = "com.atproto.server.refreshSession"


class PasswordHarness(ManagerConformance):
    """App-password managers against FakePds with grace 0."""

    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        self.clock = ManualClock()
        with FakePds(clock=self.clock, grace_period=0) as pds:
            self.pds = pds
            self.pds.create_account("alice.test", "alice-pass")
            yield

    def start(self, manager: Any) -> str:
        did: str = manager.login("alice.test", "alice-pass").did
        return did

    def expire_access(self) -> None:
        self.clock.advance(2 * 3600 + 1)

    def refreshes(self) -> int:
        return self.pds.counts[REFRESH] - self.pds.errors[REFRESH]

    def revoke(self, did: str) -> None:
        self.pds.revoke_all(did)

    def fail_refreshes(self) -> None:
        self.pds.set_fault("502", nsids={REFRESH})

    def heal(self) -> None:
        self.pds.set_fault(None)


class TestPersistentSessionManager(PasswordHarness):
    def manager(self, store: Store) -> Any:
        return PersistentSessionManager(None, self.pds.url, store=store, clock=self.clock)


class TestAsyncPersistentSessionManager(PasswordHarness):
    def manager(self, store: Store) -> Any:
        return Blocking(
            lambda: AsyncPersistentSessionManager(None, self.pds.url, store=store, clock=self.clock)
        )


class OAuthHarness(ManagerConformance):
    """OAuth managers against a fake authorization server and PDS (DPoP, single-use tokens)."""

    @pytest.fixture(autouse=True)
    def _server(self) -> Iterator[None]:
        self.clock = ManualClock()
        with FakeOAuthPds(self.clock) as server:
            self.server = server
            yield

    def start(self, manager: Any) -> str:
        session = authorized(self.server, self.clock)
        manager.store_session(session)
        return session.did

    def expire_access(self) -> None:
        self.clock.advance(3601)

    def refreshes(self) -> int:
        return self.server.counts["refresh"]

    def revoke(self, did: str) -> None:
        for grant in self.server.refresh.values():
            grant.used = True

    def fail_refreshes(self) -> None:
        self.server.fault = 503

    def heal(self) -> None:
        self.server.fault = None


class TestOAuthSessionManager(OAuthHarness):
    def manager(self, store: Store) -> Any:
        return OAuthSessionManager(None, store=store, clock=self.clock)


class TestAsyncOAuthSessionManager(OAuthHarness):
    def manager(self, store: Store) -> Any:
        return Blocking(lambda: AsyncOAuthSessionManager(None, store=store, clock=self.clock))
