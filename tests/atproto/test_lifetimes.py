"""Every session kind knows when its access token, its refresh token and the session end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import (
    AtpSessionEvent,
    CorruptSessionError,
    OAuthClient,
    OAuthSessionManager,
    PersistentSessionManager,
)
from sessionkeeper.atproto.oauth.dpop import generate_dpop_jwk
from sessionkeeper.atproto.oauth.lifetimes import CONFIDENTIAL_CLIENT, DAY, PUBLIC_CLIENT
from sessionkeeper.atproto.oauth.session import decode_oauth, oauth_name_for_did
from sessionkeeper.clock import ManualClock
from sessionkeeper.core.lifetime import Lifetime
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth
from sessionkeeper.testing.fake_pds import FakePds

pytestmark = pytest.mark.timeout(60)

GET_SESSION = "com.atproto.server.getSession"


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeOAuth]:
    with FakeOAuth(clock) as server:
        yield server


def sign_in(fake: FakeOAuth, clock: ManualClock, store: MemoryStore, **kw: Any) -> OAuthClient:
    client = OAuthClient(
        store=store, handle_resolver=fake.url, plc_directory=fake.url, clock=clock, **kw
    )
    if "client_key" in kw:
        fake.register_client(client.client_metadata)
    url = client.authorize(DEFAULT_HANDLE)
    client.callback(httpx.get(url).headers["location"])
    return client


def test_app_password_lifetime_is_the_jwts_exp(
    pds: FakePds,
    alice: str,
    clock: ManualClock,
) -> None:
    with PersistentSessionManager(None, pds.url, store=MemoryStore(), clock=clock) as manager:
        assert [manager.lifetime] == [None]  # no session yet
        session = manager.login("alice.test", "alice-pass")
        now = clock.time()
        lifetime = manager.lifetime
        assert lifetime is not None
        assert lifetime == Lifetime(session.access_expires_at, session.refresh_expires_at, None)
        assert lifetime.access_expires_at == pytest.approx(now + 7200, abs=2)
        assert lifetime.refresh_expires_at == pytest.approx(now + 90 * DAY, abs=2)
        assert lifetime.lapses_at == lifetime.refresh_expires_at
        clock.advance(DAY)
        manager.refresh_token()  # every refresh token lives its full 90 days
        assert manager.lifetime is not None
        assert manager.lifetime.refresh_expires_at == pytest.approx(now + 91 * DAY, abs=2)


def test_a_public_client_session_ends_two_weeks_after_sign_in_however_refreshed(
    fake: FakeOAuth,
    clock: ManualClock,
) -> None:
    store = MemoryStore()
    signed_in = clock.time()
    with sign_in(fake, clock, store) as client, client.restore(DEFAULT_DID) as manager:
        assert manager.lifetime == Lifetime(
            signed_in + 3600, signed_in + 14 * DAY, signed_in + PUBLIC_CLIENT.session_lifetime
        )
        clock.advance(3 * DAY)
        manager.refresh_token()
        lifetime = manager.lifetime
        assert lifetime is not None
        assert lifetime.access_expires_at == signed_in + 3 * DAY + 3600
        # The refresh token would live 2 weeks from now, but the session ends sooner.
        assert lifetime.refresh_expires_at == lifetime.session_ends_at == signed_in + 14 * DAY
    # Recorded in the stored document, so another process reads the same ends.
    stored = decode_oauth(store.get(oauth_name_for_did(DEFAULT_DID)) or b"", name="x")
    assert stored.lifetime == lifetime


def test_a_confidential_client_refresh_token_lives_three_months_from_its_last_use(
    fake: FakeOAuth,
    clock: ManualClock,
) -> None:
    store = MemoryStore()
    signed_in = clock.time()
    key = {**generate_dpop_jwk(), "kid": "key-1"}
    with sign_in(
        fake,
        clock,
        store,
        client_id="https://app.example/client-metadata.json",
        redirect_uri="https://app.example/callback",
        client_key=key,
    ) as client:
        manager = client.restore(DEFAULT_DID)
        assert manager.lifetime is not None
        assert manager.lifetime.refresh_expires_at == signed_in + 90 * DAY
        assert manager.lifetime.session_ends_at == signed_in + 730 * DAY
        clock.advance(10 * DAY)
        manager.refresh_token()
        assert manager.lifetime == Lifetime(
            signed_in + 10 * DAY + 3600,
            signed_in + 10 * DAY + CONFIDENTIAL_CLIENT.refresh_lifetime,
            signed_in + 730 * DAY,
        )
        manager.close()


def test_an_oauth_document_stored_before_lifetimes_loads_with_them_unknown(
    fake: FakeOAuth,
    clock: ManualClock,
) -> None:
    store = MemoryStore()
    name = oauth_name_for_did(DEFAULT_DID)
    sign_in(fake, clock, store).close()
    document = json.loads(store.get(name) or b"")
    for key in ("refreshLifetime", "refreshExpiresAt", "sessionEndsAt"):
        del document[key]
    store.put(name, json.dumps(document).encode())
    with OAuthClient(store=store, handle_resolver=fake.url, plc_directory=fake.url) as client:
        manager = client.restore(DEFAULT_DID)
        lifetime = manager.lifetime
        assert lifetime is not None and lifetime.access_expires_at is not None
        assert (lifetime.refresh_expires_at, lifetime.session_ends_at) == (None, None)
        assert lifetime.lapses_at is None
        manager.close()


def test_a_stored_lifetime_that_is_not_a_number_is_named(
    fake: FakeOAuth,
    clock: ManualClock,
) -> None:
    store = MemoryStore()
    name = oauth_name_for_did(DEFAULT_DID)
    sign_in(fake, clock, store).close()
    document = json.loads(store.get(name) or b"")
    document["sessionEndsAt"] = "soon"
    with pytest.raises(CorruptSessionError, match="sessionEndsAt is not a number"):
        decode_oauth(json.dumps(document).encode(), name=name)


def test_lifetime_as_json_is_iso_8601() -> None:
    lifetime = Lifetime(0.0, 86400.0, None)
    assert lifetime.as_json() == {
        "access_expires_at": "1970-01-01T00:00:00+00:00",
        "refresh_expires_at": "1970-01-02T00:00:00+00:00",
        "session_ends_at": None,
    }


def test_expiring_is_emitted_once_when_the_session_end_comes_within_the_window(
    fake: FakeOAuth, clock: ManualClock
) -> None:
    store = MemoryStore()
    signed_in = clock.time()
    events: list[tuple[AtpSessionEvent, str | None]] = []
    with sign_in(fake, clock, store) as client, client.restore(DEFAULT_DID) as manager:
        manager.on_session_event(lambda event, s: events.append((event, s.did if s else None)))
        manager.expiring_within = 2 * DAY
        clock.advance(11 * DAY)  # 3 days before the end: outside the window
        manager.query(GET_SESSION)
        assert AtpSessionEvent.EXPIRING not in [event for event, _ in events]
        clock.advance(1.5 * DAY)
        manager.query(GET_SESSION)
        manager.query(GET_SESSION)  # warned once per end, not on every call
        assert [e for e in events if e[0] is AtpSessionEvent.EXPIRING] == [
            (AtpSessionEvent.EXPIRING, DEFAULT_DID)
        ]
        assert manager.lifetime is not None
        assert manager.lifetime.session_ends_at == signed_in + 14 * DAY
        with pytest.raises(ValueError, match="expiring_within"):
            manager.expiring_within = -1
    # A new process warns as soon as it loads a session that ends soon.
    loaded: list[AtpSessionEvent] = []
    with OAuthSessionManager(None, store=store, clock=clock) as again:
        again.on_session_event(lambda event, _s: loaded.append(event))
        again.load_session(DEFAULT_DID)
    assert loaded == [AtpSessionEvent.CREATE, AtpSessionEvent.EXPIRING]


def test_app_password_sessions_never_warn_of_an_end(
    pds: FakePds, alice: str, clock: ManualClock
) -> None:
    events: list[AtpSessionEvent] = []
    with PersistentSessionManager(None, pds.url, store=MemoryStore(), clock=clock) as manager:
        manager.on_session_event(lambda event, _s: events.append(event))
        manager.expiring_within = 365 * DAY
        manager.login("alice.test", "alice-pass")
        manager.query(GET_SESSION)
    assert AtpSessionEvent.EXPIRING not in events


def test_an_oauth_session_past_its_recorded_end_is_pruned(
    fake: FakeOAuth, clock: ManualClock
) -> None:
    store = MemoryStore()
    sign_in(fake, clock, store).close()
    with OAuthSessionManager(None, store=store, clock=clock) as manager:
        clock.advance(13 * DAY)
        assert manager.prune_expired_sessions() == []
        clock.advance(1 * DAY)  # two weeks after sign-in: a public client's session ended
        assert manager.prune_expired_sessions() == [DEFAULT_DID]
    assert store.get(oauth_name_for_did(DEFAULT_DID)) is None
