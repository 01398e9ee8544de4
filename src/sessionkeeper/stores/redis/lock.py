"""The Redis lock's Lua scripts, and the thread that renews the leases of held locks.

The lock key holds its holder's random token; every script checks that token,
so a holder whose lock ended (lease, restart, failover, eviction) can neither
write, renew nor release what is now someone else's lock.
"""

from __future__ import annotations

import logging
import threading

import redis
from redis.commands.core import Script

logger = logging.getLogger("sessionkeeper.stores.redis.store")

# Delete the lock only if it is still ours (a lease may have handed it on), and
# wake one waiter: a one-element list that waiters block on with BLPOP. The
# list is capped at one element and expires, so signals nobody took cost a
# single spurious retry at most.
RELEASE = """
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
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# A write under the lock: refused unless the lock key still holds our token.
# KEYS: lock, value. ARGV: our token, op ('set'|'del'), data, ttl ms.
GUARDED_WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if ARGV[2] == 'del' then return redis.call('DEL', KEYS[2]) end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[2], ARGV[3])
end
return 1
"""


class LeaseRenewer:
    """Extends the leases of the locks this process holds, every third of a lease.

    A live holder keeps its lock however long its work takes; a dead one (or a
    stopped one: SIGSTOP, a frozen VM) stops renewing, so its lease runs out
    and fencing refuses whatever it writes afterwards. One daemon thread per
    store, started on demand and gone when no lock is held.
    """

    def __init__(self, renew: Script, lease_ms: int) -> None:
        """Renew with the ``renew`` script, by ``lease_ms`` each time."""
        self._renew = renew
        self._lease_ms = lease_ms
        self._interval = lease_ms / 3000
        self._held: dict[str, str] = {}  # lock token -> lock key
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
            self.renew_all(snapshot)

    def renew_all(self, snapshot: list[tuple[str, str]]) -> None:
        """Renew each ``(token, lock key)`` of ``snapshot``; warn of locks found lost."""
        for value, lock_key in snapshot:
            try:
                renewed = int(self._renew(keys=[lock_key], args=[value, self._lease_ms]))
            except redis.RedisError as exc:
                logger.debug("lease of %s not renewed: %s", lock_key, exc)
                continue
            if not renewed:
                # A holder stops our renewing before it releases, so a lock that
                # left the table since the snapshot was released, not lost. With
                # many locks taken and given back, that race is common.
                with self._guard:
                    released = value not in self._held
                if not released:
                    logger.warning(
                        "lock %s is no longer held by its holder (its lease ended, or "
                        "Redis lost it: a restart, a failover, an eviction); every write "
                        "its holder makes under it from now on is refused",
                        lock_key,
                    )
                    self.remove(value)


__all__ = ["GUARDED_WRITE", "RELEASE", "RENEW", "LeaseRenewer"]
