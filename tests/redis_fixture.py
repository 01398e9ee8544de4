"""A real redis-server for the tests: one per session, skipped only outside CI.

``tests/conftest.py`` re-exports these fixtures with
``from tests.redis_fixture import redis_server, redis_store_factory  # noqa: F401``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest

from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.testing.redis_server import RedisServer
from tests.support import missing_component


def require_redis_server() -> None:
    """Skip the test when redis-server is missing, or fail in CI where it must be there."""
    if RedisServer.find_binary() is None:
        missing_component("redis-server is not installed (run `make redis-server`)")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server with appendonly on, on a free loopback port, for the whole session."""
    require_redis_server()
    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture
def redis_store_factory(
    redis_server: RedisServer,
) -> Iterator[Callable[..., RedisStore]]:
    """Make RedisStores on a prefix unique to the test (so tests never see each other)."""
    prefix = f"test-{secrets.token_hex(6)}:"
    made: list[RedisStore] = []

    def make(**options: object) -> RedisStore:
        options.setdefault("prefix", prefix)
        store = RedisStore(redis_server.url, **options)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()
