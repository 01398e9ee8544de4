"""Fixtures shared across the suite: the real redis-server, the reference PDS, and the
ATProto tests' manual clock and strict fake PDS (a test module may define its own)."""

import pytest

from tests.atproto_fixtures import alice, bob, clock, pds
from tests.redis_fixture import redis_server, redis_store_factory
from tests.reference_pds_fixture import reference_pds

# The shipped Store suite lives in the package; rewrite its asserts as pytest does a test's.
pytest.register_assert_rewrite("sessionkeeper.testing.store_conformance")

__all__ = ["alice", "bob", "clock", "pds", "redis_server", "redis_store_factory", "reference_pds"]
