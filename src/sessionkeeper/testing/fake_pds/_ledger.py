"""The refresh token ledger: rotation with a grace period, and revocation."""

from __future__ import annotations

from dataclasses import dataclass

from sessionkeeper.testing.fake_pds._tokens import SCOPE_ACCESS, new_jti


@dataclass
class RefreshRecord:
    """What the server remembers of one refresh token (by its ``jti``)."""

    did: str
    family: str
    scope: str = SCOPE_ACCESS  #: the access scope of the pairs it rotates into
    used_at: float | None = None
    next_jti: str | None = None


class RefreshLedger:
    """Which refresh tokens are still good, and what each one rotated into.

    Mirrors the reference PDS: the first use of a token ``R`` at time ``t``
    names its successor's ``jti``; until ``t + grace`` a reuse of ``R`` gets a
    pair with that same ``jti``; from then on ``R`` is revoked. All tokens
    descending from one login share a family, so a logout revokes the whole
    chain (a predecessor still inside its grace cannot bring the session back).

    Not thread-safe by itself: the fake calls it under its state lock, which
    makes each rotation atomic.
    """

    def __init__(self, grace_period: float) -> None:
        self._grace = grace_period
        self._records: dict[str, RefreshRecord] = {}

    @property
    def grace_period(self) -> float:
        """Seconds after its first use during which a refresh token may be reused."""
        return self._grace

    def add(self, jti: str, did: str, family: str, scope: str = SCOPE_ACCESS) -> None:
        """Remember a freshly issued refresh token whose pairs carry access ``scope``."""
        self._records[jti] = RefreshRecord(did=did, family=family, scope=scope)

    def scope(self, jti: str) -> str:
        """The access scope of the session ``jti`` belongs to (a login's scope lasts)."""
        record = self._records.get(jti)
        return record.scope if record is not None else SCOPE_ACCESS

    def rotate(self, jti: str, now: float) -> str | None:
        """Use token ``jti`` at ``now``: the successor's ``jti``, or ``None`` if revoked."""
        record = self._records.get(jti)
        if record is None:
            return None
        if record.used_at is not None:
            if now >= record.used_at + self._grace:
                return None
            return record.next_jti
        record.used_at = now
        record.next_jti = new_jti()
        self._records[record.next_jti] = RefreshRecord(
            did=record.did, family=record.family, scope=record.scope
        )
        return record.next_jti

    def revoke_family(self, jti: str) -> bool:
        """Revoke ``jti`` and every token of its rotation chain; ``False`` if unknown."""
        record = self._records.get(jti)
        if record is None:
            return False
        doomed = [key for key, rec in self._records.items() if rec.family == record.family]
        for key in doomed:
            del self._records[key]
        return True

    def revoke_did(self, did: str) -> int:
        """Revoke every refresh token of ``did``; return how many there were."""
        doomed = [key for key, rec in self._records.items() if rec.did == did]
        for key in doomed:
            del self._records[key]
        return len(doomed)

    def live_count(self, did: str) -> int:
        """How many refresh tokens of ``did`` the ledger still holds."""
        return sum(1 for rec in self._records.values() if rec.did == did)
