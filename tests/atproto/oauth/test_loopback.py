"""``login()``'s loopback receiver: only the awaited redirect ends a sign-in, on the host named.

Real HTTP on loopback against the shipped fake authorization server; the
"browser" is a thread that follows the fake's redirect with ``httpx``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from sessionkeeper.atproto import OAuthClient, OAuthError
from sessionkeeper.atproto.oauth.loopback import LoopbackReceiver
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        yield server


def browser_that(before: Callable[[str], None], pages: list[str]) -> Callable[[str], bool]:
    """A ``webbrowser.open`` that consents, calls ``before(redirect)``, then follows it."""

    def open_in_browser(url: str) -> bool:
        def visit() -> None:
            location = httpx.get(url).headers["location"]
            before(location)
            pages.append(httpx.get(location).text)

        threading.Thread(target=visit).start()
        return True

    return open_in_browser


def test_stray_requests_to_the_loopback_port_do_not_end_the_sign_in(
    fake: FakeOAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    strays: list[int] = []

    def stray_requests(redirect: str) -> None:
        # Another local process hits the callback path first: no state, a wrong state.
        base = redirect.split("?", 1)[0]
        for query in ("error=access_denied", "error=access_denied&state=forged-state-000000"):
            strays.append(httpx.get(f"{base}?{query}").status_code)
        state = dict(p.split("=", 1) for p in urlsplit(redirect).query.split("&"))["state"]
        # One character off the real state (never equal to it, whatever its last character).
        near = state[:-1] + ("y" if state.endswith("x") else "x")
        strays.append(httpx.get(f"{base}?code=stolen&state={near}").status_code)

    pages: list[str] = []
    monkeypatch.setattr("webbrowser.open", browser_that(stray_requests, pages))
    with OAuthClient(store=MemoryStore(), handle_resolver=fake.url, plc_directory=fake.url) as c:
        manager = c.login(DEFAULT_HANDLE, timeout=20)
        assert manager.query("com.atproto.server.getSession")["did"] == DEFAULT_DID
        manager.close()
    assert strays == [400, 400, 400]
    assert "You may close this window" in pages[0]


def test_a_redirect_uri_on_ipv6_loopback_listens_on_ipv6_loopback(
    fake: FakeOAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    pages: list[str] = []
    monkeypatch.setattr("webbrowser.open", browser_that(seen.append, pages))
    with OAuthClient(
        store=MemoryStore(),
        handle_resolver=fake.url,
        plc_directory=fake.url,
        redirect_uri="http://[::1]/oauth/back",
    ) as client:
        manager = client.login(DEFAULT_HANDLE, timeout=20)
        assert manager.session is not None and manager.session.did == DEFAULT_DID
        manager.close()
    (redirect,) = seen
    assert urlsplit(redirect).hostname == "::1" and urlsplit(redirect).path == "/oauth/back"
    assert "You may close this window" in pages[0]


def test_a_receiver_on_a_host_that_is_not_loopback_is_refused_by_name() -> None:
    with pytest.raises(OAuthError, match=r"127\.0\.0\.1 or ::1, not 'localhost'"):
        LoopbackReceiver("/callback", "localhost")


def test_before_its_state_is_known_the_receiver_takes_nothing() -> None:
    with LoopbackReceiver("/cb") as receiver:
        answer = httpx.get(f"{receiver.redirect_uri}?code=c&state=s" + "x" * 20)
        assert answer.status_code == 400
        receiver.expect("s" + "x" * 20)
        assert httpx.get(f"{receiver.redirect_uri}?code=c&state=s" + "x" * 20).status_code == 200
        assert receiver.wait(1)["code"] == "c"
