"""A server's ``Retry-After`` is obeyed up to an hour, never for the life of the process."""

from __future__ import annotations

import httpx
import pytest

from sessionkeeper.atproto.errors import XrpcError
from sessionkeeper.atproto.xrpc import raise_for_error, retry_after
from sessionkeeper.core.state import MAX_RETRY_AFTER

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "1e9"},
        {"Retry-After": "inf"},
        {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
        {"RateLimit-Reset": str(int(NOW) + 10**9)},
    ],
)
def test_a_huge_retry_after_is_capped_at_an_hour(headers: dict[str, str]) -> None:
    assert retry_after(httpx.Headers(headers), NOW) == MAX_RETRY_AFTER == 3600.0


@pytest.mark.parametrize("value", ["nan", "-5", "soon", "Mon, 99 Foo 0000 99:99:99 GMT"])
def test_a_nonsense_retry_after_means_no_wait_or_none(value: str) -> None:
    wait = retry_after(httpx.Headers({"Retry-After": value}), NOW)
    assert wait is None or wait == 0.0


def test_a_429_carries_the_capped_wait() -> None:
    response = httpx.Response(
        429, json={"error": "RateLimitExceeded"}, headers={"Retry-After": "1000000000"}
    )
    with pytest.raises(XrpcError) as caught:
        raise_for_error(response, "com.atproto.server.refreshSession", now=NOW)
    assert caught.value.retry_after == MAX_RETRY_AFTER
