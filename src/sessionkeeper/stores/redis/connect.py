"""redis-py clients for a parsed Redis store URL: one server, a Cluster, or via Sentinel.

The clients are built from keyword arguments, never from the URL text, so no
redis-py error can ever repeat a password that was in the URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from sessionkeeper.stores.redis.url import RedisTarget

#: Seconds a command (or a connection attempt) may take before it counts as failed.
SOCKET_TIMEOUT = 5.0

if TYPE_CHECKING:
    #: Any client RedisStore can work with.
    RedisClient: TypeAlias = "redis.Redis[bytes] | RedisCluster[bytes]"


def _quick_retry() -> Retry:
    # One quick retry re-opens a pooled connection that a restart or a failover
    # closed (finding the new master, via Sentinel); more would only delay the
    # clear error.
    return Retry(ExponentialBackoff(cap=0.1, base=0.01), 1)


def _common(target: RedisTarget) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
    }
    options.update(target.connection)
    if target.username is not None:
        options["username"] = target.username
    if target.password is not None:
        options["password"] = target.password
    if target.tls:
        options["ssl"] = True
    return options


def connect(target: RedisTarget) -> RedisClient:
    """A client for ``target``: ``redis.Redis``, ``RedisCluster``, or a Sentinel master."""
    options = _common(target)
    if target.kind == "cluster":
        nodes = [ClusterNode(host, port) for host, port in target.nodes]
        return RedisCluster(startup_nodes=nodes, retry=_quick_retry(), **options)
    if target.kind == "sentinel":
        sentinel_options: dict[str, Any] = {
            "socket_timeout": options["socket_timeout"],
            "socket_connect_timeout": options["socket_connect_timeout"],
            # redis-py's default would retry each Sentinel 3 times with backoff (~7 s).
            "retry": _quick_retry(),
        }
        if target.tls:
            sentinel_options["ssl"] = True
        if "sentinel_username" in target.sentinel:
            sentinel_options["username"] = target.sentinel["sentinel_username"]
        if "sentinel_password" in target.sentinel:
            sentinel_options["password"] = target.sentinel["sentinel_password"]
        sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_options)
        assert target.service is not None  # the URL parser requires it
        master: redis.Redis[bytes] = sentinel.master_for(
            target.service, db=target.db, retry=_quick_retry(), **options
        )
        return master
    if target.kind == "unix":
        return redis.Redis(
            unix_socket_path=target.socket_path, db=target.db, retry=_quick_retry(), **options
        )
    host, port = target.nodes[0]
    return redis.Redis(host=host, port=port, db=target.db, retry=_quick_retry(), **options)


__all__ = ["SOCKET_TIMEOUT", "connect"]
