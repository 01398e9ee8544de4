"""When a session's access token, its refresh token and the session itself end.

Every session kind reports a `Lifetime` from what its server said (a
JWT's ``exp``, a token answer's ``expires_in`` and the provider's published
limits recorded at sign-in), so listings, ``keepalive`` and the ``expiring``
event read one shape, whatever the protocol.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lifetime:
    """Unix times a session's parts end; ``None`` where the server said nothing."""

    access_expires_at: float | None = None
    """When the access token stops working (a refresh renews it)."""
    refresh_expires_at: float | None = None
    """When the refresh token lapses unless it is used before then."""
    session_ends_at: float | None = None
    """The absolute end: no refresh extends it; only a new sign-in does."""

    @property
    def lapses_at(self) -> float | None:
        """When the session can no longer be refreshed: the earlier of the last two ends."""
        ends = [t for t in (self.refresh_expires_at, self.session_ends_at) if t is not None]
        return min(ends) if ends else None

    def as_json(self) -> dict[str, str | None]:
        """The three ends as ISO 8601 UTC strings (``None`` stays ``null``)."""
        return {
            "access_expires_at": iso(self.access_expires_at),
            "refresh_expires_at": iso(self.refresh_expires_at),
            "session_ends_at": iso(self.session_ends_at),
        }


def iso(moment: float | None) -> str | None:
    """``moment`` as an ISO 8601 UTC string, or ``None``."""
    if moment is None:
        return None
    return dt.datetime.fromtimestamp(moment, tz=dt.UTC).isoformat(timespec="seconds")
