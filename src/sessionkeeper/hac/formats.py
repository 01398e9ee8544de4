"""The HAC session format, registered with the core: the loader's own rules, the idle limit."""

from __future__ import annotations

from sessionkeeper.hac.session import (
    SessionFileError,
    SessionMetadata,
    is_session_name,
    parse_session,
)
from sessionkeeper.maintenance.formats import (
    ExpiryPolicy,
    FormatError,
    PruneReason,
    SessionFormat,
    hours,
    register,
)


def _load(name: str, data: bytes) -> SessionMetadata:
    try:
        # Any valid file counts, whatever its name, as the original lists them: the
        # session manager checks a loaded file's key against the one it was asked for.
        return parse_session(data)
    except SessionFileError as exc:
        raise FormatError(f"it {exc}") from None


def _dead(session: SessionMetadata, now: float, policy: ExpiryPolicy) -> str | None:
    # HAC ends a session after this long without a request (web.xml's session timeout).
    idle_for = session.idle_at(now)
    if idle_for > policy.idle:
        return f"idle for {hours(idle_for)} (limit {hours(policy.idle)})"
    return None


HAC_SESSION = register(
    SessionFormat(
        name="hac",
        label="hac session",
        matches=is_session_name,
        load=_load,
        dead=_dead,
        prune_reason=PruneReason.HAC_IDLE,
    )
)

__all__ = ["HAC_SESSION"]
