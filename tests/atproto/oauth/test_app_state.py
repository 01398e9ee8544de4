"""The app's own state travels with a sign-in, and sign-ins leave nothing behind in the store.

Against the shipped fake authorization server; the browser is ``httpx`` (the
fake's authorization page consents at once).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from sessionkeeper.atproto import AsyncOAuthClient, OAuthCallbackError, OAuthClient, OAuthError
from sessionkeeper.atproto.oauth.pending import PENDING_PREFIX
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        yield server


def client_for(fake: FakeOAuth, where: Path) -> OAuthClient:
    return OAuthClient(where, handle_resolver=fake.url, plc_directory=fake.url)


def consent(url: str) -> str:
    """The browser on the fake: its authorization page redirects at once."""
    answer = httpx.get(url)
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def test_the_app_state_comes_back_with_the_callback_and_never_reaches_the_server(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    app_state = "cookie-" + secrets.token_urlsafe(16)
    with client_for(fake, tmp_path / "s") as client:
        url = client.authorize(DEFAULT_HANDLE, state=app_state)
        redirect = consent(url)
        assert app_state not in url and app_state not in redirect  # ours only
        manager, state = client.callback_with_state(redirect)
        with manager:
            assert state == app_state
            assert manager.query("com.atproto.server.getSession")["did"] == DEFAULT_DID
        # Without an app state the callback hands back None, and callback() still a manager.
        with client.callback(consent(client.authorize(DEFAULT_HANDLE))) as plain:
            assert plain.session is not None and plain.session.did == DEFAULT_DID
        manager, state = client.callback_with_state(consent(client.authorize(DEFAULT_HANDLE)))
        manager.close()
        assert state is None


def test_the_async_client_hands_the_app_state_back_too(tmp_path: Path, fake: FakeOAuth) -> None:
    async def scenario() -> str | None:
        async with AsyncOAuthClient(
            tmp_path / "s", handle_resolver=fake.url, plc_directory=fake.url
        ) as client:
            url = await client.authorize(DEFAULT_HANDLE, state="browser-42")
            redirect = await asyncio.to_thread(consent, url)
            result = await client.callback_with_state(redirect)
            await result.manager.aclose()
            return result.state

    assert asyncio.run(scenario()) == "browser-42"


def test_an_unusable_app_state_is_refused_by_name_before_any_request(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    with client_for(fake, tmp_path / "s") as client:
        with pytest.raises(OAuthError, match="at most 2048"):
            client.authorize(DEFAULT_HANDLE, state="x" * 2049)
        with pytest.raises(OAuthError, match="state must be a str, not int"):
            client.authorize(DEFAULT_HANDLE, state=7)  # type: ignore[arg-type]
        assert client.store.names() == []


def test_the_attackers_redirect_in_the_victims_browser_carries_the_attackers_app_state(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    """Login CSRF: the app sees whose browser started the sign-in, so it can refuse."""
    with client_for(fake, tmp_path / "s") as client:
        attacker_cookie, victim_cookie = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        # The attacker starts a sign-in in their own browser and stops at the redirect.
        attackers_redirect = consent(client.authorize(DEFAULT_HANDLE, state=attacker_cookie))
        # The victim starts one too (or not); the attacker's redirect is replayed in their browser.
        client.authorize(DEFAULT_HANDLE, state=victim_cookie)
        manager, state = client.callback_with_state(attackers_redirect)
        manager.close()
        assert state == attacker_cookie != victim_cookie  # the app pattern refuses this


def test_sign_ins_leave_no_lock_files_behind(tmp_path: Path, fake: FakeOAuth) -> None:
    """A public sign-in route must not grow the session directory without bound."""
    where = tmp_path / "s"
    with client_for(fake, where) as client:
        redirects = [consent(client.authorize(DEFAULT_HANDLE)) for _ in range(5)]
        client.callback(redirects[0]).close()
        with pytest.raises(OAuthCallbackError, match="already used"):
            client.callback(redirects[0])
    left = sorted(p.name for p in where.iterdir())
    # One lock per account's session is kept by design; none per sign-in.
    assert [n for n in left if n.endswith(".lock") and PENDING_PREFIX in n] == []
    assert len([n for n in left if n.startswith(PENDING_PREFIX)]) == 4  # expire in 10 min


def test_one_state_is_taken_by_one_of_many_racing_callbacks(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    where = tmp_path / "s"
    with client_for(fake, where) as client:
        redirect = consent(client.authorize(DEFAULT_HANDLE))
    state = dict(p.split("=", 1) for p in urlsplit(redirect).query.split("&"))["state"]
    barrier, won, refused = threading.Barrier(6), [], []

    def take() -> None:
        with client_for(fake, where) as mine:
            barrier.wait()
            try:
                mine.callback(redirect).close()
                won.append(state)
            except OAuthCallbackError:
                refused.append(state)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(won), len(refused)) == (1, 5)
    assert fake.counts["exchange"] == 1


def test_a_refused_authorization_request_says_the_servers_reason(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    refused = pytest.raises(OAuthError, match=r"invalid_request: redirect_uri not registered")
    with client_for(fake, tmp_path / "s") as client, refused:
        client.authorize(DEFAULT_HANDLE, redirect_uri="http://127.0.0.1/elsewhere")
