"""The ATProto OAuth provider's published session limits, per client type.

A token answer carries ``expires_in`` for the access token only; when the
refresh token and the whole session end follow from the provider's rules
(``@atproto/oauth-provider``: ``REFRESH_LIFETIME``, ``SESSION_LIFETIME``), which
depend on how the client authenticates. They are recorded in the stored
session at sign-in and carried along every refresh, so a later process never
guesses them.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """How long a refresh token lives after its last use, and a session after sign-in."""

    refresh_lifetime: float
    session_lifetime: float


#: Public clients (no client authentication, e.g. loopback/native apps): the refresh
#: token lives 2 weeks from its last use, and the session ends 2 weeks after sign-in
#: however often it is refreshed.
PUBLIC_CLIENT = ProviderLimits(refresh_lifetime=14 * DAY, session_lifetime=14 * DAY)

#: Confidential clients (``private_key_jwt``): 3 months without a refresh, 2 years in all.
CONFIDENTIAL_CLIENT = ProviderLimits(refresh_lifetime=90 * DAY, session_lifetime=730 * DAY)


def limits_for(*, confidential: bool) -> ProviderLimits:
    """The provider's limits for a client that authenticates (``confidential``) or not."""
    return CONFIDENTIAL_CLIENT if confidential else PUBLIC_CLIENT


def refresh_end(
    now: float, refresh_lifetime: float | None, session_ends_at: float | None
) -> float | None:
    """When a refresh token issued at ``now`` lapses (never past the session's end)."""
    if refresh_lifetime is None:
        return None
    end = now + refresh_lifetime
    return min(end, session_ends_at) if session_ends_at is not None else end
