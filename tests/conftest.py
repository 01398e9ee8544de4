"""Fixtures shared across the suite: the real redis-server and the reference PDS."""

from tests.redis_fixture import redis_server, redis_store_factory
from tests.reference_pds_fixture import reference_pds

__all__ = ["redis_server", "redis_store_factory", "reference_pds"]
