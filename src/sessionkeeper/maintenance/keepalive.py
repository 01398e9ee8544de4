"""Keep every stored session alive: refresh what would lapse soon, name what needs a person.

A bot that runs monthly, or a fleet paused for a holiday, finds its refresh
token lapsed. `keepalive` (run from cron or a systemd timer by
``sessionkeeper keepalive``) reads the
`sessionkeeper.core.lifetime.Lifetime` of each stored session (ATProto
app-password and OAuth; HAC, whose "refresh" is one request that restarts the
server's idle timer, never a login) and:

- leaves a session whose refresh token outlives the window alone (no request);
- refreshes one whose refresh token lapses within the window, through its
  manager's single flight, so a bot crossing its own expiry at the same moment
  causes no second refresh (whoever takes the lock second adopts the first's
  pair);
- reports as needing a sign-in a session whose absolute end falls inside the
  window (no refresh extends it), one already lapsed, and one the server
  declares dead when asked.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.core.lifetime import Lifetime, iso
from sessionkeeper.errors import SessionkeeperError
from sessionkeeper.stores.base import Store, readable_items
from sessionkeeper.stores.errors import StoreError

if TYPE_CHECKING:  # the HTTP stack loads only when a session is due
    import httpx

    from sessionkeeper.atproto.kinds import AtprotoKind
    from sessionkeeper.atproto.manager_base import BlockingManager
    from sessionkeeper.atproto.oauth.client import OAuthClient
    from sessionkeeper.atproto.oauth.session import OAuthSession
    from sessionkeeper.atproto.types import AtpSessionData
    from sessionkeeper.hac.session import SessionMetadata

logger = logging.getLogger(__name__)

S = TypeVar("S")

#: The default window: refresh what would lapse within a week (a weekly timer keeps all).
DEFAULT_WITHIN = 7 * 86400.0


class Action(enum.Enum):
    """What keepalive did with one session."""

    REFRESHED = "refreshed"  #: it was due and is renewed (here, or by another holder meanwhile)
    FINE = "fine"  #: it outlives the window; nothing was sent
    NEEDS_SIGN_IN = "needs-sign-in"  #: it ends inside the window or is dead: a person signs in
    FAILED = "failed"  #: it was due but could not be refreshed now (network, store); kept


@dataclass(frozen=True, slots=True)
class KeptAlive:
    """One session's line in a keepalive report."""

    kind: str  #: ``password`` or ``oauth``
    account: str  #: the DID
    handle: str | None
    action: Action
    lifetime: Lifetime
    detail: str = ""

    def as_json(self) -> dict[str, Any]:
        """The report object: kind, account, action and the ends as ISO 8601 (or null)."""
        return {
            "kind": self.kind,
            "account": self.account,
            "handle": self.handle,
            "action": self.action.value,
            **self.lifetime.as_json(),
            "detail": self.detail,
        }


def judge(lifetime: Lifetime, now: float, within: float) -> Action | None:
    """``None`` when the session is due for a refresh now, else what keepalive reports.

    The absolute end decides first: a refresh cannot move it, so a session that
    ends inside the window needs a sign-in whatever its refresh token says. A
    session whose ends are unknown (stored before they were recorded) is left alone.
    """
    end = lifetime.session_ends_at
    if end is not None and end - now <= within:
        return Action.NEEDS_SIGN_IN
    lapses = lifetime.refresh_expires_at
    if lapses is None:
        return Action.FINE
    if lapses <= now:
        return Action.NEEDS_SIGN_IN
    return None if lapses - now <= within else Action.FINE


def keepalive(
    store: Store,
    *,
    within: float = DEFAULT_WITHIN,
    service: str | None = None,
    services: Mapping[str, str] | None = None,
    oauth_client: OAuthClient | None = None,
    clock: Clock | None = None,
    http: httpx.Client | None = None,
) -> list[KeptAlive]:
    """Refresh every stored session that would lapse within ``within`` seconds; report all.

    App-password sessions are refreshed with the service that issued them
    (``services[did]``, else the issuer recorded at login, else ``service``, which
    the caller names for sessions whose issuer is not otherwise known); OAuth
    sessions through ``oauth_client`` (default: a loopback public client on
    ``store``; a confidential app passes its own, which holds its key).
    """
    if within < 0:
        raise ValueError(f"within must be >= 0 seconds, not {within}")
    from sessionkeeper.hac.kind import HAC_KIND

    clock = clock or SYSTEM_CLOCK
    services = services or {}
    passwords, oauths, hacs = _read_every_session(store)
    report: list[KeptAlive] = []
    with _Refresher(store, clock, http, oauth_client) as refresher:
        for password in passwords:
            row = KeptAlive(
                "password", password.did, password.handle, Action.FINE, password.lifetime
            )
            # The issuer is read only for a session that is due: one read per fine
            # session more would double the cost of a scan of a large store.
            issuer = partial(_issuer, store, password.did, services, service)
            refresh = partial(refresher.password, password, issuer)
            report.append(_keep(row, clock.time(), within, refresh))
        for oauth in oauths:
            row = KeptAlive("oauth", oauth.did, oauth.handle, Action.FINE, oauth.lifetime)
            report.append(_keep(row, clock.time(), within, partial(refresher.oauth, oauth)))
        for hac in hacs:
            account = f"{hac.username}@{hac.environment}"
            row = KeptAlive("hac", account, None, Action.FINE, HAC_KIND.lifetime(hac))
            report.append(_keep(row, clock.time(), within, partial(refresher.hac, hac)))
    return report


def _read_every_session(
    store: Store,
) -> tuple[list[AtpSessionData], list[OAuthSession], list[SessionMetadata]]:
    """Every stored session of each kind, from one read of the store.

    A listing per kind would read every value of the store once per kind (a
    store's bulk read does not filter by name), three times in all.
    """
    from sessionkeeper.atproto.codec import is_session_name, load_named_session
    from sessionkeeper.atproto.listing import by_did, decoded
    from sessionkeeper.atproto.oauth.session import is_oauth_name, load_named_oauth
    from sessionkeeper.hac.session import is_session_name as is_hac_name
    from sessionkeeper.hac.session import most_recent_first, parsed_session

    def wanted(name: str) -> bool:
        return is_session_name(name) or is_oauth_name(name) or is_hac_name(name)

    # Decoded as they are read: the store's values are never all held at once.
    passwords: list[AtpSessionData | None] = []
    oauths: list[OAuthSession | None] = []
    hacs: list[SessionMetadata | None] = []
    for name, raw in readable_items(store, wanted, what="session"):
        if is_session_name(name):
            passwords.append(decoded(name, raw, load_named_session))
        if is_oauth_name(name):
            oauths.append(decoded(name, raw, load_named_oauth))
        if is_hac_name(name):
            hacs.append(parsed_session(name, raw))
    return by_did(passwords), by_did(oauths), most_recent_first(hacs)


def _issuer(store: Store, did: str, services: Mapping[str, str], service: str | None) -> str | None:
    """The service to refresh ``did``'s session with: named for it, recorded, else the default."""
    return services.get(did) or recorded_issuer(store, did) or service


def recorded_issuer(store: Store, did: str) -> str | None:
    """The service the login of ``did``'s app-password session recorded, if any."""
    from sessionkeeper.atproto.issuer import decode_issuer, issuer_name

    return decode_issuer(store.get(issuer_name(did)))


def _keep(
    row: KeptAlive, now: float, within: float, refresh: Callable[[], Lifetime | None]
) -> KeptAlive:
    """Judge ``row``; when due, refresh and turn every outcome into the row's action."""
    from sessionkeeper.atproto.errors import SessionExpiredError

    verdict = judge(row.lifetime, now, within)
    if verdict is not None:
        detail = "" if verdict is Action.FINE else _why(row, now)
        return _with(row, verdict, row.lifetime, detail)
    logger.info(
        "refreshing the %s session of %s: its refresh token lapses at %s",
        row.kind,
        row.account,
        iso(row.lifetime.refresh_expires_at),
    )
    try:
        renewed = refresh()
    except (SessionExpiredError, NotAcceptedError) as exc:  # the server's verdict
        return _with(row, Action.NEEDS_SIGN_IN, row.lifetime, str(exc))
    except (SessionkeeperError, StoreError, OSError) as exc:
        logger.warning("keepalive could not refresh %s: %s", row.account, exc)
        return _with(row, Action.FAILED, row.lifetime, str(exc))
    if renewed is None:
        return _with(row, Action.NEEDS_SIGN_IN, row.lifetime, "removed from the store meanwhile")
    return _with(row, Action.REFRESHED, renewed)


def _with(row: KeptAlive, action: Action, lifetime: Lifetime, detail: str = "") -> KeptAlive:
    return KeptAlive(row.kind, row.account, row.handle, action, lifetime, detail)


def _why(row: KeptAlive, now: float) -> str:
    lifetime = row.lifetime
    if row.kind == "hac":
        return (
            f"HAC dropped it at {iso(lifetime.refresh_expires_at)} (idle too long); "
            "the next hac command with credentials logs in again"
        )
    end = lifetime.session_ends_at
    if end is not None and (
        lifetime.refresh_expires_at is None or end <= lifetime.refresh_expires_at
    ):
        verb = "ended" if end <= now else "ends"
        return f"the session {verb} at {iso(end)}; no refresh extends it: sign in again"
    return f"the refresh token lapsed at {iso(lifetime.refresh_expires_at)}: sign in again"


class NotAcceptedError(SessionkeeperError):
    """The server no longer takes a session that keepalive cannot renew by itself."""


class _Refresher:
    """Opens managers for due sessions only, sharing one HTTP client and one OAuth client."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        http: httpx.Client | None,
        oauth_client: OAuthClient | None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._http = http
        self._owns_http = False
        self._oauth_client = oauth_client
        self._owns_oauth = False

    def __enter__(self) -> _Refresher:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owns_oauth and self._oauth_client is not None:
            self._oauth_client.close()
        if self._owns_http and self._http is not None:
            self._http.close()

    def _client(self) -> httpx.Client:
        if self._http is None:
            from sessionkeeper.atproto.manager_base import DEFAULT_TIMEOUT
            from sessionkeeper.http_limits import bounded_client

            self._http, self._owns_http = bounded_client(DEFAULT_TIMEOUT), True
        return self._http

    def password(self, listed: AtpSessionData, issuer: Callable[[], str | None]) -> Lifetime | None:
        """Refresh the ``listed`` app-password session with its ``issuer()``; its new lifetime."""
        from sessionkeeper.atproto.errors import SessionError
        from sessionkeeper.atproto.password.kind import PASSWORD
        from sessionkeeper.atproto.password.manager import PersistentSessionManager

        did = listed.did
        service = issuer()
        if service is None:
            raise SessionError(
                f"no service is known for {did}: name the PDS that issued it (--service URL)"
            )
        manager = PersistentSessionManager(
            None, service, store=self._store, clock=self._clock, http=self._client()
        )
        with manager:
            return _renew(manager, PASSWORD, manager.load_session(did), listed)

    def oauth(self, listed: OAuthSession) -> Lifetime | None:
        """Refresh the ``listed`` OAuth session through the OAuth client; its new lifetime."""
        from sessionkeeper.atproto.errors import NoSessionError
        from sessionkeeper.atproto.oauth.kind import OAUTH

        if self._oauth_client is None:
            from sessionkeeper.atproto.oauth.client import OAuthClient

            self._oauth_client = OAuthClient(store=self._store, clock=self._clock)
            self._owns_oauth = True
        _check_client(listed, self._oauth_client.client_metadata)
        try:
            manager = self._oauth_client.restore(listed.did)
        except NoSessionError:
            return None
        with manager:
            return _renew(manager, OAUTH, manager.session, listed)

    def hac(self, listed: SessionMetadata) -> Lifetime | None:
        """Keep a HAC session alive: one read-only request with it, never a login.

        HAC restarts a session's idle timer on every request it takes, so that is
        its "refresh"; a session HAC dropped needs a login, which needs credentials
        that keepalive does not hold (the next ``hac`` command has them).
        """
        from sessionkeeper.hac.client import HacClient
        from sessionkeeper.hac.kind import HAC_KIND
        from sessionkeeper.hac.probe import NoLoginAuth, still_accepted
        from sessionkeeper.hac.session import SessionManager

        manager = SessionManager(store=self._store, clock=self._clock)
        key = (listed.base_url, listed.username, listed.environment)
        with HacClient(
            listed.base_url,
            NoLoginAuth(listed.username),
            environment=listed.environment,
            session_manager=manager,
            clock=self._clock,
            quiet=True,
        ) as client:
            client.use_session(listed)
            if not still_accepted(client):
                raise NotAcceptedError(
                    "HAC no longer accepts the session; the next hac command with "
                    "credentials logs in again"
                )
        manager.touch_session(*key)  # the server's idle timer restarted just now
        fresh = manager.load_session(*key)
        return HAC_KIND.lifetime(fresh) if fresh is not None else None


def _check_client(session: OAuthSession, metadata: dict[str, Any]) -> None:
    """Refuse to refresh a confidential client's session with another client.

    A loopback (public) session needs no client authentication, so any loopback
    client refreshes it with the session's own client_id and key. A confidential
    one must be refreshed by its app, which signs the client assertion: sent by
    another client, the refresh would be refused, and a refusal may end the session.
    """
    from sessionkeeper.atproto.errors import SessionError

    public = session.client_id.startswith("http://localhost")
    ours = metadata.get("client_id")
    if not (public and str(ours).startswith("http://localhost")) and ours != session.client_id:
        raise SessionError(
            f"the OAuth session of {session.did} belongs to the client {session.client_id}; "
            "refresh it with that app's OAuthClient (keepalive(..., oauth_client=...))"
        )


def _renew(
    manager: BlockingManager[S], kind: AtprotoKind[S], loaded: S | None, listed: S
) -> Lifetime | None:
    """Refresh ``listed`` through ``manager``'s single flight; the lifetime it leaves.

    A pair other than the one judged due was written meanwhile (a bot crossed its
    expiry between the listing and now): it is taken as is, with no request. Later
    on, the single flight does the same under the DID's lock.
    """
    if loaded is None:
        return None
    if kind.same(loaded, listed):
        manager.refresh_token()
    return manager.lifetime


def exit_code(report: list[KeptAlive]) -> int:
    """0 when every session is alive, 3 when any needs a sign-in, else 1 on failures."""
    actions = {row.action for row in report}
    if Action.NEEDS_SIGN_IN in actions:
        return 3
    return 1 if Action.FAILED in actions else 0
