"""Every request ends within its timeout and every answer body is capped, against real
hostile servers on 127.0.0.1 (a 1 byte/s trickle of headers or body, a 300 MiB body)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionkeeper.hac.auth import BasicAuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.cookies import CookieJar
from sessionkeeper.hac.errors import HacClientError
from sessionkeeper.hac.transport import CONSOLE_RESULT_MAX_BODY, HacTransport, body_cap
from sessionkeeper.hac.urls import HacUrls
from sessionkeeper.http_limits import (
    DEFAULT_MAX_BODY,
    MIB,
    DeadlineExceededError,
    ResponseTooLargeError,
    bounded_async_client,
    bounded_client,
)
from sessionkeeper.testing.hostile_server import Behaviour, HostileServer

TIMEOUT = 2.0
#: How far past its deadline a request may end (scheduling on a loaded 2-core machine).
LATE = 3.0


@pytest.fixture
def hostile(request: pytest.FixtureRequest) -> Iterator[HostileServer]:
    behaviour: Behaviour = request.param
    with HostileServer(behaviour, size=300 * MIB) as server:
        yield server


def _hac_client(url: str, tmp_path: Path) -> HacClient:
    return HacClient(url, BasicAuthHandler("admin", "nimda"), timeout=2, session_persistence=False)


@pytest.mark.parametrize("hostile", ["trickle-headers", "trickle-body"], indirect=True)
def test_hac_login_gives_up_on_a_trickling_server_at_its_timeout(
    hostile: HostileServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    with _hac_client(hostile.url, tmp_path) as client, pytest.raises(HacClientError) as caught:
        client.login()
    elapsed = time.monotonic() - started
    assert TIMEOUT - 0.1 <= elapsed < TIMEOUT + LATE
    assert isinstance(caught.value.__cause__, DeadlineExceededError)
    assert "2 s deadline" in str(caught.value)


@pytest.mark.parametrize("hostile", ["trickle-headers", "trickle-body"], indirect=True)
def test_sync_and_async_clients_give_up_on_a_trickling_server_at_their_timeout(
    hostile: HostileServer,
) -> None:
    started = time.monotonic()
    with bounded_client(TIMEOUT) as client, pytest.raises(DeadlineExceededError):
        client.get(hostile.url)
    assert time.monotonic() - started < TIMEOUT + LATE

    async def fetch() -> None:
        async with bounded_async_client(TIMEOUT) as client:
            await client.post(hostile.url, json={"refreshJwt": "x"})

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        asyncio.run(fetch())
    assert time.monotonic() - started < TIMEOUT + LATE


@pytest.mark.parametrize("hostile", ["trickle-headers"], indirect=True)
def test_a_proxy_from_the_environment_is_bounded_too(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", hostile.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    started = time.monotonic()
    with bounded_client(TIMEOUT) as client, pytest.raises(DeadlineExceededError):
        client.get("http://pds.example.invalid/xrpc/com.atproto.server.getSession")
    assert time.monotonic() - started < TIMEOUT + LATE
    assert hostile.requests == 1  # it really went through the proxy


@pytest.mark.parametrize("hostile", ["huge-body", "huge-chunked"], indirect=True)
def test_an_oversized_answer_is_refused_with_a_named_error(hostile: HostileServer) -> None:
    with bounded_client(30) as client, pytest.raises(ResponseTooLargeError) as caught:
        client.get(hostile.url)
    assert f"more than {DEFAULT_MAX_BODY} bytes" in str(caught.value)
    assert isinstance(caught.value, httpx.TransportError)  # callers' network handling applies


def test_console_results_get_a_larger_documented_cap_than_pages(tmp_path: Path) -> None:
    assert body_cap("http://h/hac/console/flexsearch/execute") == CONSOLE_RESULT_MAX_BODY
    assert body_cap("http://h/hac/login") is None
    with HostileServer("huge-chunked", size=10 * MIB) as server:
        urls = HacUrls.parse(server.url + "/hac")
        transport = HacTransport(
            urls, BasicAuthHandler("admin", "nimda"), timeout=30, ignore_ssl=False
        )
        try:
            result = transport.send(
                "POST", urls.url("/console/flexsearch/execute"), "FlexibleSearch", CookieJar()
            )
            assert len(result.content) == 10 * MIB
            with pytest.raises(HacClientError) as caught:
                transport.send("GET", urls.url("/login"), "HAC login", CookieJar())
            assert isinstance(caught.value.__cause__, ResponseTooLargeError)
        finally:
            transport.close()


_MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys, time, tracemalloc
    from sessionkeeper.hac.auth import BasicAuthHandler
    from sessionkeeper.hac.client import HacClient
    tracemalloc.start()  # after the imports: the answer's cost, not the modules'
    started = time.monotonic()
    client = HacClient(sys.argv[1], BasicAuthHandler("admin", "nimda"), timeout=30,
                       session_persistence=False)
    try:
        client.login()
        error = None
    except Exception as exc:
        error = type(exc.__cause__ or exc).__name__
    finally:
        client.close()
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"error": error, "peak": peak, "seconds": time.monotonic() - started}))
    """
)


@pytest.mark.parametrize("hostile", ["huge-body", "huge-chunked"], indirect=True)
def test_a_300_mib_login_page_costs_the_hac_client_a_few_mib(hostile: HostileServer) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, hostile.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome = json.loads(probe.stdout)
    assert outcome["error"] == "ResponseTooLargeError"
    assert outcome["peak"] < 4 * DEFAULT_MAX_BODY, outcome
    assert hostile.bytes_sent < 100 * MIB  # it stopped reading, not drained the body


@pytest.mark.parametrize("hostile", ["trickle-headers"], indirect=True)
def test_an_atproto_refresh_on_bounded_clients_releases_the_lock_at_its_timeout(
    hostile: HostileServer, tmp_path: Path
) -> None:
    from sessionkeeper.atproto import (
        AsyncPersistentSessionManager,
        PersistentSessionManager,
        SessionNetworkError,
    )
    from sessionkeeper.atproto.codec import name_for_did
    from sessionkeeper.stores import DirectoryStore
    from sessionkeeper.testing.fake_pds import FakePds

    store = DirectoryStore(tmp_path / "sessions")
    with FakePds() as pds:
        pds.create_account("alice.test", "alice-pass")
        with PersistentSessionManager(None, pds.url, store=store) as manager:
            did = manager.login("alice.test", "alice-pass").did
    stored = store.get(name_for_did(did))

    with PersistentSessionManager(
        None, hostile.url, store=store, http=bounded_client(TIMEOUT)
    ) as manager:
        manager.load_session(did)
        started = time.monotonic()
        with pytest.raises(SessionNetworkError):
            manager.refresh_token()
        assert time.monotonic() - started < TIMEOUT + LATE

    async def refresh_async() -> None:
        manager = AsyncPersistentSessionManager(
            None, hostile.url, store=store, http=bounded_async_client(TIMEOUT)
        )
        try:
            await manager.load_session(did)
            await manager.refresh_token()
        finally:
            await manager.aclose()

    started = time.monotonic()
    with pytest.raises(SessionNetworkError):
        asyncio.run(refresh_async())
    assert time.monotonic() - started < TIMEOUT + LATE
    with store.lock(name_for_did(did), timeout=0.5):  # the lock was let go
        assert store.get(name_for_did(did)) == stored  # and the session kept


@pytest.mark.parametrize("hostile", ["gzip-bomb"], indirect=True)
def test_a_small_gzip_answer_that_decodes_to_300_mib_is_refused(hostile: HostileServer) -> None:
    with bounded_client(30) as client, pytest.raises(ResponseTooLargeError) as caught:
        client.get(hostile.url)
    assert f"more than {DEFAULT_MAX_BODY} bytes" in str(caught.value)
    assert hostile.bytes_sent < DEFAULT_MAX_BODY  # small on the wire, huge decoded


@pytest.mark.parametrize("hostile", ["gzip-gzip-bomb"], indirect=True)
def test_an_answer_encoded_twice_is_refused_before_it_decodes(hostile: HostileServer) -> None:
    with bounded_client(30) as client, pytest.raises(ResponseTooLargeError) as caught:
        client.get(hostile.url)
    assert "'gzip, gzip'" in str(caught.value)


def test_a_gzip_answer_within_the_cap_decodes_as_usual() -> None:
    with HostileServer("gzip-bomb", size=2 * MIB) as server, bounded_client(30) as client:
        assert client.get(server.url).content == bytes(2 * MIB)


@pytest.mark.parametrize("hostile", ["huge-body"], indirect=True)
def test_oauth_sign_in_on_its_default_client_refuses_an_oversized_answer(
    hostile: HostileServer, tmp_path: Path
) -> None:
    from sessionkeeper.atproto import AsyncOAuthClient, OAuthClient
    from sessionkeeper.atproto.errors import OAuthResolutionError

    with OAuthClient(tmp_path) as client, pytest.raises(OAuthResolutionError) as caught:
        client.authorize(hostile.url)
    assert "ResponseTooLargeError" in str(caught.value)

    async def authorize() -> None:
        async with AsyncOAuthClient(tmp_path) as client:
            await client.authorize(hostile.url)

    with pytest.raises(OAuthResolutionError) as caught:
        asyncio.run(authorize())
    assert "ResponseTooLargeError" in str(caught.value)
