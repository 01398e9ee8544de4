"""RedisStore: values in Redis, shared by every process and machine that reaches it.

Keys (``P`` is the prefix, ``sessionkeeper:`` by default), on one server or
through Sentinel:

- ``P v:NAME``     the value, written with one ``SET`` (atomic), optionally with a TTL;
- ``P lock:NAME``  the lock: a random token of its holder, set only when absent, with a lease;
- ``P wake:NAME``  a one-element list a release pushes to, so waiters wake at once.

On Redis Cluster every key of a name carries the same hash tag, so each script
touches one slot: ``P{TAG}v:NAME``, ``P{TAG}lock:NAME``, ``P{TAG}wake:NAME``,
where ``TAG`` is the first 16 hex digits of the SHA-256 of the name (a name may
hold braces itself). Moving from one server to a cluster is a copy:
``sessionkeeper store migrate --from redis://OLD --to redis+cluster://NEW``.

Why leases and renewal: a lease is what frees the lock of a holder that died
(SIGKILL, lost machine); while the holder lives, a background thread extends
the lease every third of it, so slow work under the lock is never cut short.

Why fencing, and why on the token: a holder that is stopped rather than dead
(SIGSTOP, a frozen VM, a long pause, a partition from Redis) stops renewing,
and another one may take the lock after the lease; the stopped one may then
resume. Redis itself may also forget the lock: a restart without persistence,
a failover to a replica that had not received it, an eviction. Every write
made under the lock therefore goes through a Lua script that checks, inside
Redis and atomically with the write, that the lock key still holds this
holder's own random token. Nothing else proves the lock is still ours: a
holder whose lock vanished is refused even when no one else took it, since a
server that forgot the lock cannot tell. A refused write raises
`LockLostError` and writes nothing.

Durability: a write is acknowledged once the master has it; Redis replicates
asynchronously, so a master crash may lose the last writes. ``replicas=N``
makes every write wait (Redis ``WAIT``) until N replicas confirmed it, and
fail with `StoreUnavailableError` if they did not in time.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, cast

try:
    import redis
    from redis.cluster import RedisCluster
    from redis.commands.core import Script
    from redis.exceptions import RedisClusterException
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "RedisStore needs the redis package: pip install 'sessionkeeper[redis]'"
    ) from exc

from sessionkeeper.stores.base import (
    DEFAULT_LOCK_TIMEOUT,
    check_value_size,
    checked_value,
    validate_name,
)
from sessionkeeper.stores.errors import (
    LockLostError,
    LockTimeoutError,
    StoreError,
    StoreUnavailableError,
    StoreUrlError,
)
from sessionkeeper.stores.redis.connect import connect
from sessionkeeper.stores.redis.keys import RedisKeys
from sessionkeeper.stores.redis.lock import GUARDED_WRITE, RELEASE, RENEW, LeaseRenewer
from sessionkeeper.stores.redis.url import RedisTarget, parse_redis_url, redact_url

if TYPE_CHECKING:
    from sessionkeeper.stores.redis.connect import RedisClient

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "sessionkeeper:"
DEFAULT_LEASE = 30.0
DEFAULT_REPLICAS_TIMEOUT = 2.0
#: Longest a lock waiter blocks before checking again whether a dead holder's lease ended.
WAKE_POLL = 0.1
#: Errors of redis-py that mean no server (or no master) can be reached now.
_UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.ReadOnlyError,
)


def _store_option(target: RedisTarget, key: str, given: Any, default: Any) -> Any:
    """A keyword left at its default takes the URL's value of the option."""
    return target.store[key] if given == default and key in target.store else given


def _replica_count(value: int | str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"replicas must be a whole number, not {value!r}") from None
    if count < 0:
        raise ValueError(f"replicas must be 0 or more, not {value!r}")
    return count


def _seconds(option: str, value: float | str) -> float:
    """A positive number of seconds, else ``ValueError`` naming the option."""
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{option} must be a number of seconds, not {value!r}") from None
    if not 0 < seconds < float("inf"):  # also refuses NaN
        raise ValueError(f"{option} must be a positive number of seconds, not {value!r}")
    return seconds


@dataclass
class _Held:
    token: str  # the random value stored in the lock key
    depth: int


class RedisStore:
    """A [`Store`][] on Redis: one server, Cluster or Sentinel.

    ``url``: a Redis store URL (see `sessionkeeper.stores.redis.url`) or
    an already parsed `RedisTarget`. ``lease``: seconds a lock lives
    without its holder (so a dead holder frees it). ``ttl``: seconds each
    value lives after its last write (``None``: forever). ``replicas``: how
    many replicas must confirm each write (Redis ``WAIT``) within
    ``replicas_timeout`` seconds before it counts as done. ``client``: an
    existing ``redis.Redis`` or ``RedisCluster`` (``decode_responses=False``)
    to use instead of connecting. ``renew``: extend the lease of a held lock
    while its holder lives (on by default; off, a holder that outlives its
    lease is fenced off). Query options ``prefix``, ``lease``, ``ttl``,
    ``replicas`` and ``replicas_timeout`` apply when the matching keyword is
    left at its default.
    """

    def __init__(
        self,
        url: str | RedisTarget,
        prefix: str = DEFAULT_PREFIX,
        *,
        lease: float | str = DEFAULT_LEASE,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        ttl: float | str | None = None,
        replicas: int | str = 0,
        replicas_timeout: float | str = DEFAULT_REPLICAS_TIMEOUT,
        client: RedisClient | None = None,
        renew: bool = True,
    ) -> None:
        target = parse_redis_url(url) if isinstance(url, str) else url
        self.url = target.safe_url  #: the URL without its password
        try:
            self.lease = _seconds("lease", _store_option(target, "lease", lease, DEFAULT_LEASE))
            chosen_ttl = _store_option(target, "ttl", ttl, None) or None
            self.ttl = _seconds("ttl", chosen_ttl) if chosen_ttl is not None else None
            self.replicas = _replica_count(_store_option(target, "replicas", replicas, 0))
            self.replicas_timeout = _seconds(
                "replicas_timeout",
                _store_option(
                    target, "replicas_timeout", replicas_timeout, DEFAULT_REPLICAS_TIMEOUT
                ),
            )
        except ValueError as exc:
            raise StoreUrlError(f"Redis store {self.url!r}: {exc}") from None
        self._lock_timeout = lock_timeout
        self.cluster = (
            target.kind == "cluster" if client is None else isinstance(client, RedisCluster)
        )
        if self.cluster and self.replicas:
            raise StoreUrlError(
                f"Redis store {self.url!r}: replicas= is not supported on Redis "
                "Cluster (WAIT confirms one node's replicas only)"
            )
        self._keys = RedisKeys(
            _store_option(target, "prefix", prefix, DEFAULT_PREFIX), tagged=self.cluster
        )
        self.prefix = self._keys.prefix
        if client is None:
            try:
                client = connect(target)  # RedisCluster asks a node for the slots at once
            except (redis.RedisError, RedisClusterException) as exc:
                self._fail(exc)
        self._client: RedisClient = client
        self._release = self._script(RELEASE)
        self._guarded_write = self._script(GUARDED_WRITE)
        self._lease_ms = max(1, round(self.lease * 1000))
        self._renewer = LeaseRenewer(self._script(RENEW), self._lease_ms) if renew else None
        self._local = threading.local()

    def _script(self, text: str) -> Script:
        # RedisCluster registers scripts too; the stubs only know redis.Redis's method.
        return Script(cast(Any, self._client), text)

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"

    # -- errors -----------------------------------------------------------
    def _fail(self, exc: Exception) -> NoReturn:
        if isinstance(exc, redis.AuthenticationError):
            raise StoreUnavailableError(
                f"Redis at {self.url} refused the credentials: {exc}"
            ) from exc
        if isinstance(exc, (*_UNAVAILABLE, RedisClusterException)):
            raise StoreUnavailableError(
                f"Redis at {self.url} is unavailable ({exc}); check that the "
                "server (or, with Sentinel, a master) runs and the URL is right"
            ) from exc
        if isinstance(exc, redis.exceptions.MovedError | redis.exceptions.AskError):
            raise StoreError(
                f"Redis at {self.url} is a Redis Cluster node that does not own this "
                "name's slot: open the cluster as redis+cluster://HOST:PORT[,HOST:PORT...]"
            ) from exc
        raise StoreError(f"Redis at {self.url} failed: {exc}") from exc

    def _call(self, command: str, *args: Any) -> Any:
        try:
            return self._client.execute_command(command, *args)
        except (redis.RedisError, RedisClusterException) as exc:
            self._fail(exc)

    def _write(self, send: Callable[[Any], Any]) -> Any:
        """Run one write through ``send(client)``; with ``replicas``, wait for them too."""
        try:
            if not self.replicas:
                return send(self._client)
            # WAIT counts the replicas that have this connection's writes, so the
            # write and the WAIT go down one connection, in one pipeline.
            pipe = self._client.pipeline(transaction=False)
            send(pipe)
            pipe.execute_command("WAIT", self.replicas, round(self.replicas_timeout * 1000))
            result, confirmed = pipe.execute()
        except (redis.RedisError, RedisClusterException) as exc:
            self._fail(exc)
        if int(confirmed) < self.replicas:
            raise StoreUnavailableError(
                f"Redis at {self.url}: the write reached the master but only "
                f"{int(confirmed)} of {self.replicas} replicas confirmed it within "
                f"{self.replicas_timeout:g} s; it may be lost if the master fails now"
            )
        return result

    # -- lock state of this thread ----------------------------------------
    def _held(self) -> dict[str, _Held]:
        held: dict[str, _Held] | None = getattr(self._local, "held", None)
        if held is None:
            held = {}
            self._local.held = held
        return held

    # -- Store protocol -----------------------------------------------------
    def get(self, name: str) -> bytes | None:
        """Return the value of ``name`` or ``None``."""
        validate_name(name)
        data = self._call("GET", self._keys.value(name))
        if data is None:
            return None
        return self._checked(name, data)

    @staticmethod
    def _checked(name: str, data: bytes | str) -> bytes:
        if isinstance(data, str):  # a client made with decode_responses=True
            data = data.encode("utf-8")
        check_value_size(name, len(data))
        return bytes(data)

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` with one atomic ``SET`` (fenced when this thread holds the lock)."""
        data = checked_value(name, data)
        held = self._held().get(name)
        ttl_ms = round(self.ttl * 1000) if self.ttl is not None else 0
        if held is not None:
            self._write_fenced(name, held, "set", data, ttl_ms)
            return
        expiry: tuple[Any, ...] = ("PX", ttl_ms) if ttl_ms else ()
        key = self._keys.value(name)
        self._write(lambda client: client.execute_command("SET", key, data, *expiry))

    def delete(self, name: str) -> bool:
        """Remove ``name``; return whether it existed (fenced under the lock)."""
        validate_name(name)
        held = self._held().get(name)
        if held is not None:
            return self._write_fenced(name, held, "del", b"", 0) > 0
        key = self._keys.value(name)
        return int(self._write(lambda client: client.execute_command("DEL", key))) > 0

    def _write_fenced(self, name: str, held: _Held, op: str, data: bytes, ttl_ms: int) -> int:
        keys = [self._keys.lock(name), self._keys.value(name)]
        args = [held.token, op, data, ttl_ms]
        result = int(
            self._write(lambda client: self._guarded_write(keys=keys, args=args, client=client))
        )
        if result < 0:
            raise LockLostError(
                f"lock of {name!r} is no longer held: its {self.lease:g} s lease ended or "
                "Redis lost it (a restart, a failover, an eviction), and another holder "
                "may have written since, so this write was refused (nothing was written)"
            )
        return result

    def names(self) -> list[str]:
        """Every stored name, found with ``SCAN`` on the prefix (every master of a cluster)."""
        found: set[str] = set()
        try:
            for key in self._client.scan_iter(match=self._keys.value_pattern(), count=500):
                text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
                found.add(self._keys.name_of(text))
        except (redis.RedisError, RedisClusterException) as exc:
            self._fail(exc)
        return sorted(found)

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, value)`` pairs, read in batches with ``MGET``."""
        names = self.names()
        for start in range(0, len(names), 200):
            batch = names[start : start + 200]
            keys = [self._keys.value(n) for n in batch]
            if isinstance(self._client, RedisCluster):
                try:
                    values = cast(Any, self._client).mget_nonatomic(keys)
                except (redis.RedisError, RedisClusterException) as exc:
                    self._fail(exc)
            else:
                values = self._call("MGET", *keys)
            for name, data in zip(batch, values, strict=True):
                if data is not None:
                    yield name, self._checked(name, data)

    def lock(self, name: str, timeout: float | None = None) -> AbstractContextManager[None]:
        """Hold the Redis lock of ``name``: cross-machine, leased, re-entrant per thread."""
        validate_name(name)
        return self._hold(name, self._lock_timeout if timeout is None else timeout)

    @contextmanager
    def _hold(self, name: str, timeout: float) -> Iterator[None]:
        held = self._held()
        mine = held.get(name)
        if mine is not None:
            mine.depth += 1
            try:
                yield
            finally:
                mine.depth -= 1
            return
        mine = self._take(name, timeout)
        held[name] = mine
        if self._renewer is not None:
            self._renewer.add(self._keys.lock(name), mine.token)
        try:
            yield
        finally:
            del held[name]
            if self._renewer is not None:
                self._renewer.remove(mine.token)
            self._give_back(name, mine)

    def _take(self, name: str, timeout: float) -> _Held:
        token = secrets.token_hex(16)
        lock_key = self._keys.lock(name)
        deadline = time.monotonic() + timeout
        while True:
            if self._call("SET", lock_key, token, "NX", "PX", self._lease_ms):
                logger.debug("lock of %r acquired", name)
                return _Held(token, 1)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                left = self._call("PTTL", lock_key)
                frees = f"; its lease ends in {int(left) / 1000:.1f} s" if int(left) > 0 else ""
                raise LockTimeoutError(
                    f"lock of {name!r} not acquired within {timeout:g} s; another holder has it"
                    f"{frees}"
                )
            # Block until a holder's release signals, or at most WAKE_POLL seconds:
            # a holder that died never signals, so its lease end is found by polling.
            wait = max(0.01, min(remaining, WAKE_POLL))
            self._call("BLPOP", self._keys.wake(name), f"{wait:.3f}")

    def _give_back(self, name: str, held: _Held) -> None:
        try:
            released = int(
                self._release(
                    keys=[self._keys.lock(name), self._keys.wake(name)],
                    args=[held.token, self._lease_ms],
                )
            )
        except (redis.RedisError, RedisClusterException) as exc:
            # The lease frees it anyway; raising here would mask the block's own outcome.
            logger.warning("lock of %r not released (%s); its lease will free it", name, exc)
            return
        if not released:
            logger.warning(
                "lock of %r was no longer held at release (its %g s lease ended, or Redis "
                "lost it); any write made under it after that was refused",
                name,
                self.lease,
            )

    # -- lifecycle ----------------------------------------------------------
    def ping(self) -> bool:
        """Return ``True`` when the server answers; raise StoreUnavailableError if not."""
        try:
            return bool(self._client.ping())
        except (redis.RedisError, RedisClusterException) as exc:
            self._fail(exc)

    def close(self) -> None:
        """Close the connections of this store's client."""
        with contextlib.suppress(redis.RedisError, RedisClusterException):
            self._client.close()


__all__ = ["DEFAULT_LEASE", "DEFAULT_PREFIX", "RedisStore", "RedisTarget", "redact_url"]
