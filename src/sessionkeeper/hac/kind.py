"""The HAC session as the core's session state sees it: its identity and its errors."""

from __future__ import annotations

from sessionkeeper.core.state import StateErrors
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.session import SessionMetadata, session_key


def account_of(base_url: str, username: str, environment: str) -> str:
    """How logs and the state name one session key (quoted, so no two keys read alike)."""
    return f"{username!r} at {base_url!r} (environment {environment!r})"


class HacSessionKind:
    """One cached HAC session per key (base URL, user, environment)."""

    label = "HAC session"
    remedy = "log in again"

    def account(self, session: SessionMetadata) -> str:
        """The session's key, as `account_of` spells it."""
        return account_of(*session_key(session))

    def same(self, a: SessionMetadata, b: SessionMetadata) -> bool:
        """One server session: the same ``JSESSIONID`` (a new route cookie keeps it)."""
        return a.session_id == b.session_id

    def expires_at(self, session: SessionMetadata) -> float | None:
        """Unknown: HAC never says; a dead session shows itself as the login page."""
        return None


def _expired(message: str, /, *, error: str | None, status: int | None) -> Exception:
    return HacAuthenticationError(message)


def _network(message: str, /, *, status: int | None, retry_after: float | None) -> Exception:
    return HacClientError(message)


HAC_KIND = HacSessionKind()
HAC_ERRORS = StateErrors(no_session=HacClientError, expired=_expired, network=_network)

__all__ = ["HAC_ERRORS", "HAC_KIND", "HacSessionKind", "account_of"]
