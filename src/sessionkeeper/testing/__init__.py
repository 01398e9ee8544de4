"""Real servers for testing code that uses sessions: fakes on 127.0.0.1, and harnesses
that start the reference ATProto PDS and a real redis-server."""

from sessionkeeper.testing.fake_hac import FakeHac
from sessionkeeper.testing.fake_oauth import FakeOAuth
from sessionkeeper.testing.fake_pds import FakePds
from sessionkeeper.testing.redis_server import RedisServer, RedisServerError
from sessionkeeper.testing.reference_pds import (
    ReferencePds,
    ReferencePdsError,
    ReferencePdsUnavailable,
)

__all__ = [
    "FakeHac",
    "FakeOAuth",
    "FakePds",
    "RedisServer",
    "RedisServerError",
    "ReferencePds",
    "ReferencePdsError",
    "ReferencePdsUnavailable",
]
