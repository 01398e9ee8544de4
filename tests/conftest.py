"""Fixtures shared across the suite: the real redis-server, the reference PDS, and the
ATProto tests' manual clock and strict fake PDS (a test module may define its own)."""

from tests.atproto_fixtures import alice, bob, clock, pds
from tests.redis_fixture import redis_server, redis_store_factory
from tests.reference_pds_fixture import reference_pds

__all__ = ["alice", "bob", "clock", "pds", "redis_server", "redis_store_factory", "reference_pds"]
