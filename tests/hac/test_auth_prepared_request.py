"""A custom AuthHandler written for the original hac-client-core (``requests.PreparedRequest``)
runs unchanged on ours: its headers reach HAC, and it sees the URL and method as strings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests

from hac_client_core import AuthHandler, HacClient
from sessionkeeper.hac.auth import from_prepared_request, to_prepared_request
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.testing.fake_hac import FakeHac

pytestmark = pytest.mark.timeout(60)


class BearerTokenAuth(AuthHandler):
    """The original README's example, plus what such handlers read."""

    def __init__(self, token: str, username: str, password: str) -> None:
        self._token = token
        self._username = username
        self._password = password
        self.seen: list[tuple[str, str]] = []

    def apply_auth(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        assert isinstance(request, requests.PreparedRequest)
        assert isinstance(request.url, str) and request.url.startswith("http://127.0.0.1:")
        self.seen.append((str(request.method), request.url))
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def get_initial_credentials(self) -> dict[str, str]:
        return {"j_username": self._username, "j_password": self._password}


class Unannotated(AuthHandler):
    """No annotations: treated as the original's contract too."""

    def apply_auth(self, request):  # type: ignore[no-untyped-def]
        request.headers["X-Gateway"] = request.method.lower() + ":" + request.url.split("/")[-1]
        return request

    def get_initial_credentials(self) -> dict[str, str]:
        return {"j_username": "admin", "j_password": "nimda"}


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac() as server:
        yield server


def test_a_prepared_request_handler_decorates_every_request(fake: FakeHac, tmp_path: Path) -> None:
    auth = BearerTokenAuth("t0ken", "admin", "nimda")
    with HacClient(fake.url, auth, session_manager=SessionManager(tmp_path)) as client:
        assert client.execute_groovy("return 3").execution_result == "3"
    assert {method for method, _ in auth.seen} >= {"GET", "POST"}
    assert fake.recent_requests
    assert all(r.headers.get("authorization") == "Bearer t0ken" for r in fake.recent_requests)


def test_an_unannotated_handler_gets_the_prepared_request_view(
    fake: FakeHac, tmp_path: Path
) -> None:
    with HacClient(fake.url, Unannotated(), session_manager=SessionManager(tmp_path)) as client:
        client.execute_groovy("return 1")
    gateways = [r.headers.get("x-gateway") for r in fake.recent_requests]
    assert "post:execute" in gateways


def test_changes_to_url_method_and_body_are_copied_back() -> None:
    original = httpx.Request("POST", "http://h/hac/a", headers={"X-Drop": "1"}, content=b"x=1")
    prepared = to_prepared_request(original)
    assert (prepared.method, prepared.url, prepared.body) == ("POST", "http://h/hac/a", b"x=1")
    prepared.headers["X-New"] = "2"
    del prepared.headers["X-Drop"]
    prepared.url = "http://h/hac/b"
    same = from_prepared_request(prepared, original)
    assert same is original
    assert (str(same.url), same.headers.get("x-new"), "x-drop" in same.headers) == (
        "http://h/hac/b",
        "2",
        False,
    )
    prepared.body = "y=22"
    rebuilt = from_prepared_request(prepared, original)
    assert rebuilt.content == b"y=22"
    assert rebuilt.headers["content-length"] == "4"
    assert rebuilt.headers["x-new"] == "2"
