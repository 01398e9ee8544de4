"""ATProto OAuth sign-in against the shipped fake authorization server: every check named."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import (
    AsyncOAuthClient,
    NoSessionError,
    OAuthCallbackError,
    OAuthClient,
    OAuthError,
    OAuthResolutionError,
    OAuthTokenError,
    SessionError,
)
from sessionkeeper.atproto.oauth.dpop import generate_dpop_jwk
from sessionkeeper.atproto.oauth.pending import PENDING_PREFIX
from sessionkeeper.atproto.oauth.session import oauth_name_for_did
from sessionkeeper.clock import ManualClock
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth

pytestmark = pytest.mark.timeout(60)

GET_SESSION = "com.atproto.server.getSession"
BOB = "did:plc:oauthbob"


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        server.add_account(BOB, "bob.test")
        yield server


def client_for(fake: FakeOAuth, where: Path | None = None, **kw: Any) -> OAuthClient:
    store = None if where is not None else kw.pop("store", MemoryStore())
    return OAuthClient(where, store=store, handle_resolver=fake.url, plc_directory=fake.url, **kw)


def browser(url: str) -> str:
    """What the browser does on the fake: the authorization page redirects at once."""
    answer = httpx.get(url)
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def pending_names(client: OAuthClient) -> list[str]:
    return [n for n in client.store.names() if n.startswith(PENDING_PREFIX)]


def test_sign_in_stores_a_private_session_that_calls_the_pds(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    with client_for(fake, tmp_path) as client:
        url = client.authorize(DEFAULT_HANDLE)
        assert url.startswith(f"{fake.url}/oauth/authorize?client_id=http%3A%2F%2Flocalhost")
        assert len(pending_names(client)) == 1
        manager = client.callback(browser(url))
        session = manager.session
        assert session is not None and session.did == DEFAULT_DID
        assert session.handle == DEFAULT_HANDLE and session.issuer == fake.url
        assert manager.query(GET_SESSION)["did"] == DEFAULT_DID
        assert pending_names(client) == []  # used, so removed
    path = tmp_path / oauth_name_for_did(DEFAULT_DID)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert fake.counts["exchange"] == 1


def test_a_state_works_once(fake: FakeOAuth) -> None:
    with client_for(fake) as client:
        redirect = browser(client.authorize(DEFAULT_HANDLE))
        client.callback(redirect)
        with pytest.raises(OAuthCallbackError, match="unknown or already used state"):
            client.callback(redirect)
    assert fake.counts["exchange"] == 1


def test_a_pending_authorization_expires_after_ten_minutes(fake: FakeOAuth) -> None:
    clock = ManualClock()
    with client_for(fake, clock=clock) as client:
        redirect = browser(client.authorize(DEFAULT_HANDLE))
        clock.advance(601)
        with pytest.raises(OAuthCallbackError, match="expired"):
            client.callback(redirect)
        assert pending_names(client) == []
    assert fake.counts["token"] == 0


def test_abandoned_pending_authorizations_are_removed_by_the_next_one(fake: FakeOAuth) -> None:
    clock = ManualClock()
    with client_for(fake, clock=clock) as client:
        client.authorize(DEFAULT_HANDLE)
        first = pending_names(client)
        clock.advance(300)
        client.authorize(DEFAULT_HANDLE)
        assert len(pending_names(client)) == 2
        clock.advance(301)  # the first is now older than ten minutes
        client.authorize(DEFAULT_HANDLE)
        left = pending_names(client)
        assert len(left) == 2 and first[0] not in left


def test_a_redirect_from_another_issuer_is_refused(fake: FakeOAuth) -> None:
    with client_for(fake) as client:
        redirect = browser(client.authorize(DEFAULT_HANDLE))
        forged = redirect.replace("iss=http%3A%2F%2F127.0.0.1", "iss=https%3A%2F%2Fevil.example")
        assert forged != redirect
        with pytest.raises(OAuthCallbackError, match="mix-up"):
            client.callback(forged)
    assert fake.counts["token"] == 0


def test_a_declined_authorization_is_a_named_error(fake: FakeOAuth) -> None:
    fake.consent = "deny"
    with client_for(fake) as client:
        with pytest.raises(OAuthCallbackError, match="declined") as caught:
            client.callback(browser(client.authorize(DEFAULT_HANDLE)))
        assert caught.value.error == "access_denied"
        assert pending_names(client) == []


def test_tokens_for_another_account_are_refused(fake: FakeOAuth) -> None:
    fake.answer_sub = BOB
    with client_for(fake) as client:
        with pytest.raises(OAuthResolutionError, match=f"for {BOB}"):
            client.callback(browser(client.authorize(DEFAULT_HANDLE)))
        assert client.store.names() == []


def test_sub_whose_pds_names_another_issuer_is_refused(fake: FakeOAuth) -> None:
    with client_for(fake) as client:
        url = client.authorize(fake.url)  # a PDS URL: the account is known only from sub
        fake.named_issuer = "https://other-issuer.example"
        with pytest.raises(OAuthResolutionError, match="delegates to https://other-issuer"):
            client.callback(browser(url))
        assert client.store.names() == []


def test_refresh_reverifies_the_issuer_first_and_keeps_the_session(fake: FakeOAuth) -> None:
    with client_for(fake) as client:
        manager = client.callback(browser(client.authorize(DEFAULT_HANDLE)))
        before = manager.session
        fake.named_issuer = "https://other-issuer.example"  # the account moved away
        with pytest.raises(OAuthResolutionError, match="delegates to https://other-issuer"):
            manager.refresh_token()
        assert manager.session == before
        fake.named_issuer = None
        manager.refresh_token()
    assert fake.counts["refresh"] == 1  # the refused check sent no refresh token


def test_a_grant_without_the_atproto_scope_is_refused(fake: FakeOAuth) -> None:
    fake.granted_scope = "transition:generic"
    with client_for(fake) as client:
        redirect = browser(client.authorize(DEFAULT_HANDLE))
        with pytest.raises(OAuthTokenError, match="does not contain 'atproto'"):
            client.callback(redirect)


def test_sign_in_by_did_and_by_pds_url(fake: FakeOAuth) -> None:
    with client_for(fake) as client:
        by_did = client.callback(browser(client.authorize(BOB)))
        assert by_did.session is not None and by_did.session.handle == "bob.test"
        by_url = client.callback(browser(client.authorize(fake.url)))
        assert by_url.session is not None and by_url.session.did == DEFAULT_DID


def test_the_dpop_nonce_of_par_carries_over_to_the_code_exchange(fake: FakeOAuth) -> None:
    store = MemoryStore()
    with client_for(fake, store=store) as first:
        redirect = browser(first.authorize(DEFAULT_HANDLE))
    # Another client instance (another process) finishes: the nonce came with the state.
    with client_for(fake, store=store) as second:
        second.callback(redirect)
    assert fake.counts["par-nonce"] == 1 and fake.counts["token-nonce"] == 0


def test_restore_gives_the_stored_session_or_no_session_error(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    with client_for(fake, tmp_path) as client:
        client.callback(browser(client.authorize(DEFAULT_HANDLE)))
    with client_for(fake, tmp_path) as later:
        manager = later.restore(DEFAULT_DID)
        assert manager.query(GET_SESSION)["did"] == DEFAULT_DID
        with pytest.raises(NoSessionError):
            later.restore(BOB)


def test_a_new_process_signs_its_first_call_with_the_stored_nonce(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    with client_for(fake, tmp_path) as client:
        client.callback(browser(client.authorize(DEFAULT_HANDLE)))
    stored = json.loads((tmp_path / oauth_name_for_did(DEFAULT_DID)).read_text())
    assert stored["dpopNonces"] == {fake.url: fake.nonce}
    fake.reset_counts()
    with client_for(fake, tmp_path) as later, later.restore(DEFAULT_DID) as manager:
        assert manager.query(GET_SESSION)["did"] == DEFAULT_DID
    assert fake.counts["resource-nonce"] == 0 and fake.counts[f"/xrpc/{GET_SESSION}"] == 1


def test_a_confidential_client_signs_every_request_with_a_fresh_assertion(
    fake: FakeOAuth,
) -> None:
    key = {**generate_dpop_jwk(), "kid": "key-1"}
    client_id = "https://app.example/oauth-client-metadata.json"
    with client_for(
        fake, client_id=client_id, redirect_uri="https://app.example/callback", client_key=key
    ) as client:
        metadata = client.client_metadata
        assert metadata["token_endpoint_auth_method"] == "private_key_jwt"
        assert metadata["jwks"] == client.jwks and "d" not in client.jwks["keys"][0]
        fake.register_client(metadata)
        manager = client.callback(browser(client.authorize(DEFAULT_HANDLE)))
        assert manager.query(GET_SESSION)["did"] == DEFAULT_DID
        manager.refresh_token()  # refresh authenticates too
        assert manager.query(GET_SESSION)["did"] == DEFAULT_DID
    # The PAR nonce retry, the exchange and the refresh were each authenticated (the fake
    # checks the DPoP nonce first, and refuses a replayed assertion jti).
    assert fake.counts["assertion"] == 3 and fake.counts["exchange"] == 1
    assert fake.counts["refresh"] == 1


def test_a_client_without_its_key_is_refused_by_name(fake: FakeOAuth) -> None:
    key = {**generate_dpop_jwk(), "kid": "key-1"}
    client_id = "https://app.example/oauth-client-metadata.json"
    with client_for(
        fake, client_id=client_id, redirect_uri="https://app.example/callback", client_key=key
    ) as signed:
        fake.register_client(signed.client_metadata)
    with client_for(fake, client_id=client_id, redirect_uri="https://app.example/callback") as bare:
        with pytest.raises(OAuthTokenError, match="invalid_client") as caught:
            bare.authorize(DEFAULT_HANDLE)
        assert caught.value.status == 400


def test_loopback_clients_refuse_a_localhost_redirect() -> None:
    with pytest.raises(OAuthError, match="RFC 8252"):
        OAuthClient(store=MemoryStore(), redirect_uri="http://localhost/callback")


def test_an_unknown_handle_is_a_resolution_error(fake: FakeOAuth) -> None:
    with client_for(fake) as client, pytest.raises(OAuthResolutionError, match=r"nobody\.test"):
        client.authorize("nobody.test")


def test_login_waits_for_the_loopback_redirect(
    fake: FakeOAuth, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pages: list[str] = []

    def open_in_browser(url: str) -> bool:
        def visit() -> None:
            location = browser(url)
            assert location.startswith("http://127.0.0.1:")
            pages.append(httpx.get(location).text)

        threading.Thread(target=visit).start()
        return True

    monkeypatch.setattr("webbrowser.open", open_in_browser)
    with client_for(fake) as client:
        manager = client.login(DEFAULT_HANDLE, timeout=20)
        assert manager.query(GET_SESSION)["did"] == DEFAULT_DID
    assert "You may close this window" in pages[0]
    assert f"{fake.url}/oauth/authorize?" in capsys.readouterr().err


def test_login_times_out_with_a_clear_error(fake: FakeOAuth) -> None:
    with client_for(fake) as client:
        with pytest.raises(OAuthCallbackError, match=r"within 0 s|within 1 s"):
            client.login(DEFAULT_HANDLE, open_browser=False, timeout=0.3)
        assert len(pending_names(client)) == 1  # left to expire; never usable after


def test_async_client_signs_in_and_restores(tmp_path: Path, fake: FakeOAuth) -> None:
    async def scenario() -> None:
        async with AsyncOAuthClient(
            tmp_path, handle_resolver=fake.url, plc_directory=fake.url
        ) as client:
            url = await client.authorize(DEFAULT_HANDLE)
            redirect = await asyncio.to_thread(browser, url)
            manager = await client.callback(redirect)
            assert (await manager.query(GET_SESSION))["did"] == DEFAULT_DID
            await manager.aclose()
            restored = await client.restore(DEFAULT_DID)
            assert restored.session is not None and restored.session.did == DEFAULT_DID
            await restored.aclose()
            with pytest.raises(OAuthCallbackError):
                await client.callback(redirect)

    asyncio.run(scenario())


def test_the_fake_refuses_a_replayed_dpop_proof(fake: FakeOAuth) -> None:
    from sessionkeeper.atproto.oauth.dpop import DpopSigner

    signer = DpopSigner(generate_dpop_jwk())
    url = f"{fake.url}/oauth/par"
    proof = signer.proof("POST", url, nonce=fake.nonce)
    form = {"client_id": "http://localhost", "response_type": "code"}
    first = httpx.post(url, data=form, headers={"DPoP": proof})
    again = httpx.post(url, data=form, headers={"DPoP": proof})
    assert json.loads(first.content)["error"] == "invalid_request"  # no PKCE, proof fine
    assert json.loads(again.content)["error"] == "invalid_dpop_proof"


def test_oauth_errors_are_session_errors() -> None:
    for error in (OAuthResolutionError, OAuthCallbackError, OAuthTokenError):
        assert issubclass(error, OAuthError) and issubclass(error, SessionError)
