"""Permission sets (``include:``) are asked for, and the server's expansion is understood."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from sessionkeeper.atproto import OAuthClient, OAuthError, OAuthTokenError
from sessionkeeper.atproto.oauth.scopes import covered
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.fake_oauth import DEFAULT_HANDLE, FakeOAuth

pytestmark = pytest.mark.timeout(60)

SET = "include:app.example.authFull?aud=did:web:api.example%23svc"
EXPANSION = [
    "repo?collection=app.example.post&collection=app.example.like",
    "rpc:app.example.getFeed?aud=did:web:api.example%23svc",
]


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        server.permission_sets["app.example.authFull"] = EXPANSION
        yield server


def sign_in(fake: FakeOAuth, scope: str) -> str:
    store = MemoryStore()
    with OAuthClient(
        store=store, handle_resolver=fake.url, plc_directory=fake.url, scope=scope
    ) as client:
        manager = client.callback(httpx.get(client.authorize(DEFAULT_HANDLE)).headers["location"])
        assert manager.session is not None
        return manager.session.scope


def test_a_permission_set_is_granted_as_the_server_expands_it(
    fake: FakeOAuth, caplog: pytest.LogCaptureFixture
) -> None:
    granted = sign_in(fake, f"atproto {SET}")
    assert granted.split() == ["atproto", *EXPANSION]  # the include: entry itself is gone
    assert "include:" not in granted and "no permission of" not in caplog.text


def test_a_permission_set_expanded_to_nothing_is_logged_not_refused(
    fake: FakeOAuth, caplog: pytest.LogCaptureFixture
) -> None:
    fake.permission_sets["app.empty.authNone"] = []
    with caplog.at_level(logging.WARNING):
        assert sign_in(fake, "atproto include:app.empty.authNone") == "atproto"
    assert "the grant holds no permission of include:app.empty.authNone" in caplog.text


def test_a_grant_narrower_than_asked_is_refused_naming_what_is_missing(fake: FakeOAuth) -> None:
    fake.granted_scope = "atproto"
    with pytest.raises(OAuthTokenError, match="lacks transition:generic"):
        sign_in(fake, "atproto transition:generic")


def test_a_malformed_permission_set_is_a_named_error_before_any_request() -> None:
    for scope in ("atproto include:notansid", "atproto include:app.example.x?scope=all"):
        with pytest.raises(OAuthError, match="include:"):
            OAuthClient(store=MemoryStore(), scope=scope)


def test_a_permission_set_covers_repo_and_rpc_permissions_of_its_namespace_only() -> None:
    entry = "include:app.example.authFull"
    assert covered(entry, {"repo:app.example.post?action=create"})
    assert covered(entry, {"rpc?lxm=app.example.getFeed&aud=*"})
    assert not covered(entry, {"repo:app.other.post"})
    assert not covered(entry, {"blob:*/*", "account:email"})
    assert not covered("transition:generic", {"atproto"})
