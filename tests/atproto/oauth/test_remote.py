"""``login_remote``: the browser is elsewhere, and the user pastes the redirect address back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionkeeper.atproto import AsyncOAuthClient, OAuthCallbackError, OAuthClient, OAuthTokenError
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        yield server


def consent(url: str) -> str:
    """The browser on another machine: signs in; the address it could not load is returned."""
    return str(httpx.get(url).headers["location"])


def test_remote_sign_in_completes_from_the_pasted_address(tmp_path: Path, fake: FakeOAuth) -> None:
    with OAuthClient(tmp_path, handle_resolver=fake.url, plc_directory=fake.url) as client:
        shown: list[str] = []

        def paste(url: str) -> str:
            shown.append(url)
            return f"\n  {consent(url)}  \n"  # pasted with stray whitespace

        with client.login_remote(DEFAULT_HANDLE, paste) as manager:
            assert manager.query("com.atproto.server.getSession")["did"] == DEFAULT_DID
        assert shown[0].startswith(f"{fake.url}/oauth/authorize?")


@pytest.mark.parametrize("wrap", ["'{}'", '"{}"', "<{}>"])
def test_an_address_pasted_in_quotes_or_angle_brackets_is_taken(
    tmp_path: Path, fake: FakeOAuth, wrap: str
) -> None:
    with (
        OAuthClient(tmp_path, handle_resolver=fake.url, plc_directory=fake.url) as client,
        client.login_remote(DEFAULT_HANDLE, lambda url: wrap.format(consent(url))) as manager,
    ):
        assert manager.query("com.atproto.server.getSession")["did"] == DEFAULT_DID


def test_pasted_text_that_is_no_address_is_refused_by_name(tmp_path: Path, fake: FakeOAuth) -> None:
    with (
        OAuthClient(tmp_path, handle_resolver=fake.url, plc_directory=fake.url) as client,
        pytest.raises(OAuthCallbackError, match=r"\(not a URL\) is not a redirect to"),
    ):
        client.login_remote(DEFAULT_HANDLE, lambda url: "code=abc")
    assert fake.counts["exchange"] == 0


def test_an_address_cut_short_is_refused_with_what_to_do(tmp_path: Path, fake: FakeOAuth) -> None:
    with (
        OAuthClient(tmp_path, handle_resolver=fake.url, plc_directory=fake.url) as client,
        pytest.raises(OAuthTokenError, match="cut short"),
    ):
        client.login_remote(DEFAULT_HANDLE, lambda url: consent(url)[:-6])


def test_another_sign_ins_address_is_refused_and_that_sign_in_still_works(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    with OAuthClient(tmp_path, handle_resolver=fake.url, plc_directory=fake.url) as client:
        others = consent(client.authorize(DEFAULT_HANDLE))
        with pytest.raises(OAuthCallbackError, match="its state differs"):
            client.login_remote(DEFAULT_HANDLE, lambda url: others)
        assert fake.counts["exchange"] == 0
        with client.callback(others) as manager:  # untouched by the refused paste
            assert manager.session is not None and manager.session.did == DEFAULT_DID


def test_the_async_client_signs_in_remotely_too(tmp_path: Path, fake: FakeOAuth) -> None:
    async def scenario() -> str:
        async with AsyncOAuthClient(
            tmp_path, handle_resolver=fake.url, plc_directory=fake.url
        ) as client:
            manager = await client.login_remote(DEFAULT_HANDLE, consent)
            answer = await manager.query("com.atproto.server.getSession")
            await manager.aclose()
            return str(answer["did"])

    assert asyncio.run(scenario()) == DEFAULT_DID
