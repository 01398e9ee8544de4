"""RedisStore: values in Redis, shared by every process and machine that reaches it.

Keys (``P`` is the prefix, ``sessionkeeper:`` by default):

- ``P v:NAME``     the value, written with one ``SET`` (atomic), optionally with a TTL;
- ``P lock:NAME``  the lock: ``TOKEN:FENCE``, set only when absent, with a lease;
- ``P fence:NAME`` a counter, incremented by every acquisition of the lock;
- ``P wake:NAME``  a one-element list a release pushes to, so waiters wake at once.

Why leases and renewal: a lease is what frees the lock of a holder that died
(SIGKILL, lost machine); while the holder lives, a background thread extends
the lease every third of it, so slow work under the lock is never cut short.

Why fencing: a holder that is stopped rather than dead (SIGSTOP, a frozen VM,
a long pause, a network partition from Redis) stops renewing, and another one
may take the lock after the lease; the stopped one may then resume. Every write
made under the lock therefore goes through a Lua script that checks, inside
Redis and atomically with the write, that no one acquired the lock since we
did (the fence counter is still ours and the lock key holds our value, or
nothing). If someone did, the write is refused and :class:`LockLostError`
raised: the newer holder's value is never overwritten by the older one.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

try:
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.commands.core import Script
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "RedisStore needs the redis package: pip install 'sessionkeeper[redis]'"
    ) from exc

from sessionkeeper.stores.base import (
    DEFAULT_LOCK_TIMEOUT,
    check_value_size,
    check_value_type,
    validate_name,
)
from sessionkeeper.stores.errors import (
    LockLostError,
    LockTimeoutError,
    StoreError,
    StoreUnavailableError,
)
from sessionkeeper.stores.url import redact_url

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "sessionkeeper:"
DEFAULT_LEASE = 30.0
#: Longest a lock waiter blocks before checking again whether a dead holder's lease ended.
WAKE_POLL = 0.1
#: Query parameters of a store URL that configure the store, not the connection.
STORE_PARAMS = ("prefix", "lease", "ttl")

# Take the lock only when it is free, and count the acquisition in the fence:
# one script, so no two holders can ever get the same fence number.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. fence, 'PX', ARGV[2])
return fence
"""

# Delete the lock only if it is still ours (a lease may have handed it on), and
# wake one waiter: a one-element list that waiters block on with BLPOP. The
# list is capped at one element and expires, so signals nobody took cost a
# single spurious retry at most.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('RPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, 0)
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

# Extend our lease, only while the lock is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# A write under the lock: refused unless no one acquired the lock after us.
# KEYS: lock, fence, value. ARGV: our lock value, our fence, op ('set'|'del'), data, ttl ms.
_GUARDED_WRITE = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
if ARGV[3] == 'del' then return redis.call('DEL', KEYS[3]) end
if tonumber(ARGV[5]) > 0 then
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
else
  redis.call('SET', KEYS[3], ARGV[4])
end
return 1
"""


def split_store_params(url: str) -> tuple[str, dict[str, str]]:
    """Split ``prefix``/``lease``/``ttl`` off a URL's query; return the rest and them."""
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    kept: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in STORE_PARAMS:
            ours[key] = value
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), ours


def _seconds(option: str, value: float | str) -> float:
    """A positive number of seconds, else ``ValueError`` naming the option."""
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{option} must be a number of seconds, not {value!r}") from None
    if not 0 < seconds < float("inf"):  # also refuses NaN
        raise ValueError(f"{option} must be a positive number of seconds, not {value!r}")
    return seconds


def _escape_glob(text: str) -> str:
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class _LeaseRenewer:
    """Extends the leases of the locks this process holds, every third of a lease.

    A live holder keeps its lock however long its work takes; a dead one (or a
    stopped one: SIGSTOP, a frozen VM) stops renewing, so its lease runs out
    and fencing refuses whatever it writes afterwards. One daemon thread per
    store, started on demand and gone when no lock is held.
    """

    def __init__(self, renew: Script, lease_ms: int) -> None:
        self._renew = renew
        self._lease_ms = lease_ms
        self._interval = lease_ms / 3000
        self._held: dict[str, str] = {}  # lock value -> lock key
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, lock_key: str, value: str) -> None:
        """Keep renewing ``lock_key`` while it holds ``value``."""
        with self._guard:
            self._held[value] = lock_key
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="redis-lease-renewer", daemon=True
                )
                self._thread.start()

    def remove(self, value: str) -> None:
        """Stop renewing the lock held as ``value``."""
        with self._guard:
            self._held.pop(value, None)

    def _run(self) -> None:
        pause = threading.Event()
        while True:
            pause.wait(self._interval)
            with self._guard:
                if not self._held:
                    self._thread = None
                    return
                snapshot = list(self._held.items())
            for value, lock_key in snapshot:
                try:
                    renewed = int(self._renew(keys=[lock_key], args=[value, self._lease_ms]))
                except redis.RedisError as exc:
                    logger.debug("lease of %s not renewed: %s", lock_key, exc)
                    continue
                if not renewed:
                    logger.warning(
                        "lock %s expired before its holder finished; writes under it "
                        "will be refused",
                        lock_key,
                    )
                    self.remove(value)


@dataclass
class _Held:
    value: str  # "TOKEN:FENCE" as stored in the lock key
    fence: str
    depth: int


class RedisStore:
    """A :class:`~sessionkeeper.stores.base.Store` on a Redis server.

    ``lease``: seconds a lock lives without its holder (so a dead holder
    frees it). ``ttl``: seconds each value lives after its last write
    (``None``: forever). ``client``: an existing ``redis.Redis`` (with
    ``decode_responses=False``) to use instead of connecting to ``url``.
    ``renew``: extend the lease of a held lock while its holder lives (on by
    default; off, a holder that outlives its lease is fenced off).
    Query parameters ``prefix``, ``lease`` and ``ttl`` in ``url`` apply when
    the matching keyword is left at its default.
    """

    def __init__(
        self,
        url: str,
        prefix: str = DEFAULT_PREFIX,
        *,
        lease: float | str = DEFAULT_LEASE,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        ttl: float | str | None = None,
        client: redis.Redis[bytes] | None = None,
        renew: bool = True,
    ) -> None:
        url, params = split_store_params(url)
        if prefix == DEFAULT_PREFIX and "prefix" in params:
            prefix = params["prefix"]
        if lease == DEFAULT_LEASE and "lease" in params:
            lease = params["lease"]
        if ttl is None and params.get("ttl"):
            ttl = params["ttl"]
        self.url = url
        self.prefix = prefix
        self.lease = _seconds("lease", lease)
        self.ttl = _seconds("ttl", ttl) if ttl is not None else None
        self._lock_timeout = lock_timeout
        self._safe_url = redact_url(url)
        if client is None:
            try:
                client = redis.Redis.from_url(
                    url,
                    socket_timeout=5.0,
                    socket_connect_timeout=5.0,
                    # One quick retry re-opens a pooled connection that a server
                    # restart closed; more would only delay the clear error.
                    retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 1),
                )
            except ValueError as exc:
                raise StoreUnavailableError(f"invalid Redis URL {self._safe_url!r}: {exc}") from exc
        self._client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._guarded_write = client.register_script(_GUARDED_WRITE)
        lease_ms = max(1, round(self.lease * 1000))
        self._renewer = _LeaseRenewer(client.register_script(_RENEW), lease_ms) if renew else None
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"RedisStore({self._safe_url!r}, prefix={self.prefix!r})"

    # -- keys -------------------------------------------------------------
    def _value_key(self, name: str) -> str:
        return f"{self.prefix}v:{name}"

    def _lock_key(self, name: str) -> str:
        return f"{self.prefix}lock:{name}"

    def _fence_key(self, name: str) -> str:
        return f"{self.prefix}fence:{name}"

    def _wake_key(self, name: str) -> str:
        return f"{self.prefix}wake:{name}"

    # -- errors -----------------------------------------------------------
    def _fail(self, exc: redis.RedisError) -> NoReturn:
        if isinstance(exc, redis.AuthenticationError):
            raise StoreUnavailableError(
                f"Redis at {self._safe_url} refused the credentials: {exc}"
            ) from exc
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            raise StoreUnavailableError(
                f"Redis at {self._safe_url} is unavailable ({exc}); check that the "
                "server runs and the URL is right"
            ) from exc
        raise StoreError(f"Redis at {self._safe_url} failed: {exc}") from exc

    def _call(self, command: str, *args: Any) -> Any:
        try:
            return self._client.execute_command(command, *args)
        except redis.RedisError as exc:
            self._fail(exc)

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
        data = self._call("GET", self._value_key(name))
        if data is None:
            return None
        if isinstance(data, str):  # a client made with decode_responses=True
            data = data.encode("utf-8")
        check_value_size(name, len(data))
        return bytes(data)

    def put(self, name: str, data: bytes) -> None:
        """Store ``data`` with one atomic ``SET`` (fenced when this thread holds the lock)."""
        validate_name(name)
        data = check_value_type(data)
        check_value_size(name, len(data))
        held = self._held().get(name)
        ttl_ms = round(self.ttl * 1000) if self.ttl is not None else 0
        if held is not None:
            self._write_fenced(name, held, "set", data, ttl_ms)
        elif ttl_ms:
            self._call("SET", self._value_key(name), data, "PX", ttl_ms)
        else:
            self._call("SET", self._value_key(name), data)

    def delete(self, name: str) -> bool:
        """Remove ``name``; return whether it existed (fenced under the lock)."""
        validate_name(name)
        held = self._held().get(name)
        if held is not None:
            return self._write_fenced(name, held, "del", b"", 0) > 0
        return int(self._call("DEL", self._value_key(name))) > 0

    def _write_fenced(self, name: str, held: _Held, op: str, data: bytes, ttl_ms: int) -> int:
        keys = [self._lock_key(name), self._fence_key(name), self._value_key(name)]
        try:
            result = int(
                self._guarded_write(keys=keys, args=[held.value, held.fence, op, data, ttl_ms])
            )
        except redis.RedisError as exc:
            self._fail(exc)
        if result < 0:
            raise LockLostError(
                f"lock of {name!r} was lost: its {self.lease:g} s lease expired and another "
                "holder took it, so this write was refused (nothing was written)"
            )
        return result

    def names(self) -> list[str]:
        """Every stored name, found with ``SCAN`` on the prefix, sorted."""
        head = f"{self.prefix}v:"
        pattern = _escape_glob(head) + "*"
        found: set[str] = set()
        try:
            for key in self._client.scan_iter(match=pattern, count=500):
                text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
                found.add(text[len(head) :])
        except redis.RedisError as exc:
            self._fail(exc)
        return sorted(found)

    def items(self) -> Iterator[tuple[str, bytes]]:
        """Yield ``(name, value)`` pairs, read in batches with ``MGET``."""
        names = self.names()
        for start in range(0, len(names), 200):
            batch = names[start : start + 200]
            values = self._call("MGET", *[self._value_key(n) for n in batch])
            for name, data in zip(batch, values, strict=True):
                if data is not None:
                    check_value_size(name, len(data))
                    yield name, data.encode("utf-8") if isinstance(data, str) else bytes(data)

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
            self._renewer.add(self._lock_key(name), mine.value)
        try:
            yield
        finally:
            del held[name]
            if self._renewer is not None:
                self._renewer.remove(mine.value)
            self._give_back(name, mine)

    def _take(self, name: str, timeout: float) -> _Held:
        token = secrets.token_hex(16)
        lease_ms = max(1, round(self.lease * 1000))
        keys = [self._lock_key(name), self._fence_key(name)]
        deadline = time.monotonic() + timeout
        while True:
            try:
                fence = int(self._acquire(keys=keys, args=[token, lease_ms]))
            except redis.RedisError as exc:
                self._fail(exc)
            if fence > 0:
                logger.debug("lock of %r acquired (fence %d)", name, fence)
                return _Held(f"{token}:{fence}", str(fence), 1)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                left = self._call("PTTL", keys[0])
                frees = f"; its lease ends in {int(left) / 1000:.1f} s" if int(left) > 0 else ""
                raise LockTimeoutError(
                    f"lock of {name!r} not acquired within {timeout:g} s; another holder has it"
                    f"{frees}"
                )
            # Block until a holder's release signals, or at most WAKE_POLL seconds:
            # a holder that died never signals, so its lease end is found by polling.
            wait = max(0.01, min(remaining, WAKE_POLL))
            self._call("BLPOP", self._wake_key(name), f"{wait:.3f}")

    def _give_back(self, name: str, held: _Held) -> None:
        try:
            released = int(
                self._release(
                    keys=[self._lock_key(name), self._wake_key(name)],
                    args=[held.value, max(1, round(self.lease * 1000))],
                )
            )
        except redis.RedisError as exc:
            # The lease frees it anyway; raising here would mask the block's own outcome.
            logger.warning("lock of %r not released (%s); its lease will free it", name, exc)
            return
        if not released:
            logger.warning(
                "lock of %r had expired before release (lease %g s); writes after that "
                "were refused",
                name,
                self.lease,
            )

    # -- lifecycle ----------------------------------------------------------
    def ping(self) -> bool:
        """Return ``True`` when the server answers; raise StoreUnavailableError if not."""
        return bool(self._call("PING"))

    def close(self) -> None:
        """Close the connections of this store's client."""
        with contextlib.suppress(redis.RedisError):
            self._client.close()


__all__ = ["DEFAULT_LEASE", "DEFAULT_PREFIX", "RedisStore", "redact_url", "split_store_params"]
