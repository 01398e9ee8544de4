"""MarshalX ``atproto`` clients on sessionkeeper's persistence and exactly-once refresh.

A bot keeps its ``client.send_post(...)`` code and gets one login per fleet::

    manager = PersistentSessionManager(
        None, "https://bsky.social", refresh_margin=MARSHALX_REFRESH_MARGIN
    )
    client = persistent_client(manager, "bot.bsky.social", os.environ["APP_PASSWORD"])
    client.send_post("hello")

The client talks through a [`SessionTransport`][] (MarshalX documents the
``Request(transport=...)`` hook), which keeps only what is MarshalX's own and
leaves the rest to the manager:

* it answers MarshalX's ``refreshSession`` from the manager's single flight
  (lock, re-read, adopt or refresh), so one refresh serves every thread,
  process and machine on the store, and MarshalX installs the pair and fires
  its own ``REFRESH``;
* it stores a successful ``createSession`` and logs ``deleteSession`` out
  through `logout`;
* it sends every other call through the manager's call loop on the manager's
  bounded HTTP client: the newest token of the account the call's token names,
  and on 400 ExpiredToken or 401 one refresh and one replay (the reactive
  refresh MarshalX lacks), within one total deadline and a capped answer.

Each of these acts on the account whose token the request carries, never on
the manager's current session: two clients of two accounts on one manager
stay apart.

The store is the source of truth, not MarshalX's in-memory copy: after a
reactive refresh ``client.export_session_string()`` still shows the older
pair until MarshalX's next proactive refresh (answered from the store without
a server call); read ``manager.session`` for the current one.

``atproto`` is imported on first use only (``pip install 'sessionkeeper[marshalx]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sessionkeeper.atproto.errors import NoSessionError
from sessionkeeper.atproto.manager_base import DEFAULT_TIMEOUT
from sessionkeeper.atproto.marshalx.transport import AsyncSessionTransport, SessionTransport
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.http_limits import bounded_async_client, bounded_client

if TYPE_CHECKING:
    from sessionkeeper.atproto.password.async_manager import AsyncPersistentSessionManager
    from sessionkeeper.atproto.password.manager import PersistentSessionManager
    from sessionkeeper.stores.base import Store

__all__ = [
    "INNER_TRANSPORT_KWARGS",
    "MARSHALX_REFRESH_MARGIN",
    "AsyncSessionTransport",
    "SessionTransport",
    "async_persistent_client",
    "login_lock_name",
    "persistent_client",
]

logger = logging.getLogger(__name__)

#: MarshalX refreshes 15 minutes before the access token's exp (hardcoded). A manager
#: with this margin agrees with it about when a token is due.
MARSHALX_REFRESH_MARGIN = 15 * 60.0

#: ``persistent_client`` keywords that shape the inner (network) transport.
INNER_TRANSPORT_KWARGS = frozenset({"verify", "cert", "limits", "http1", "http2", "proxy"})

_INSTALL_HINT = "MarshalX atproto is not installed: pip install 'sessionkeeper[marshalx]'"


# --- finding or creating the session ------------------------------------------------------


def login_lock_name(identifier: str) -> str:
    """The store lock that makes N cold starts of one identifier log in once.

    A digest, so any handle, DID or e-mail makes a valid store name that tells
    nothing about the account.
    """
    digest = hashlib.sha256(identifier.strip().lower().encode("utf-8")).hexdigest()
    return f"login-{digest[:32]}"


def _matches(session: AtpSessionData, identifier: str) -> bool:
    wanted = identifier.strip().lower()
    return wanted in {session.did.lower(), session.handle.lower(), (session.email or "").lower()}


def _pick(
    stored: list[AtpSessionData], identifier: str | None, did: str | None, store: Store
) -> AtpSessionData | None:
    """The stored session to use: by DID, else by handle/DID/e-mail, else the only one."""
    if did is not None:
        return next((s for s in stored if s.did == did), None)
    if identifier is not None:
        return next((s for s in stored if _matches(s, identifier)), None)
    if len(stored) > 1:
        handles = ", ".join(sorted(s.handle for s in stored))
        raise ValueError(f"{store!r} holds several sessions ({handles}); pass identifier= or did=")
    return stored[0] if stored else None


def _need_login(identifier: str | None, password: str | None, did: str | None, store: Store) -> str:
    if identifier is None or password is None:
        who = identifier or did or "any account"
        raise NoSessionError(
            f"no stored session for {who} in {store!r}; pass identifier= and password= to log in"
        )
    return identifier


def _split_kwargs(
    kwargs: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], Any]:
    """(MarshalX ``Request`` kwargs, inner transport kwargs, an explicit inner transport)."""
    if "mounts" in kwargs:
        raise ValueError(
            "mounts= would send requests past the session transport (no refresh, no store); "
            "give proxies with proxy= or an inner transport with transport="
        )
    request_kwargs = {k: v for k, v in kwargs.items() if k not in INNER_TRANSPORT_KWARGS}
    inner_kwargs = {k: v for k, v in kwargs.items() if k in INNER_TRANSPORT_KWARGS}
    inner = request_kwargs.pop("transport", None)
    if inner is not None and inner_kwargs:
        raise ValueError(
            f"give either transport= or {', '.join(sorted(inner_kwargs))}=, not both: "
            "the transport is what those would configure"
        )
    if "trust_env" in request_kwargs:  # environment proxies are the inner client's business
        inner_kwargs["trust_env"] = request_kwargs["trust_env"]
    return request_kwargs, inner_kwargs, inner


def _check_margin(margin: float) -> None:
    if margin < MARSHALX_REFRESH_MARGIN:
        logger.info(
            "the manager's refresh_margin (%.0f s) is shorter than MarshalX's 15 minutes; "
            "refreshes follow MarshalX's schedule (pass refresh_margin=MARSHALX_REFRESH_MARGIN)",
            margin,
        )


def _import_atproto() -> Any:
    try:
        import atproto
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError(_INSTALL_HINT) from exc
    return atproto


def _resolve_session(
    manager: PersistentSessionManager, identifier: str | None, password: str | None, did: str | None
) -> AtpSessionData:
    found = _pick(manager.sessions(), identifier, did, manager.store)
    if found is None:
        who = _need_login(identifier, password, did, manager.store)
        # Cold starts of one account wait here; the first logs in, the rest find its session.
        with manager.store.lock(login_lock_name(who)):
            found = _pick(manager.sessions(), identifier, did, manager.store)
            if found is None:
                assert password is not None
                return manager.login(who, password)
    loaded = manager.load_session(found.did)
    if loaded is None:  # removed between the listing and the load
        raise NoSessionError(f"the session of {found.did} was removed meanwhile; try again")
    return loaded


def persistent_client(
    manager: PersistentSessionManager,
    identifier: str | None = None,
    password: str | None = None,
    *,
    did: str | None = None,
    **request_kwargs: Any,
) -> Any:
    """A logged-in MarshalX ``atproto.Client`` whose session lives in ``manager``'s store.

    Loads the stored session of ``did``, else of ``identifier`` (handle, DID or
    e-mail), else the store's only session; only when there is none does it log
    in with ``identifier``/``password``, under a per-identifier store lock, so N
    processes starting together make one createSession. ``request_kwargs`` go to
    MarshalX's ``Request`` (so to its ``httpx.Client``). Requests go out on the
    manager's bounded client; ``verify``, ``cert``, ``limits``, ``http1``,
    ``http2``, ``proxy`` and ``trust_env`` build a bounded client of their own
    (the managers' default limits), ``transport=`` an ``httpx.Client`` (used as
    it is) or a transport (bounded) replaces it, and ``mounts=`` is refused (it
    would bypass the session transport).
    """
    atproto = _import_atproto()
    kwargs, inner_kwargs, inner = _split_kwargs(request_kwargs)
    _check_margin(manager.refresh_margin)
    session = _resolve_session(manager, identifier, password, did)
    if inner is None and inner_kwargs:
        inner = bounded_client(DEFAULT_TIMEOUT, **inner_kwargs)
    transport = SessionTransport(manager, inner)
    endpoint = manager.pds_endpoint
    client = atproto.Client(
        base_url=endpoint, request=atproto.Request(transport=transport, **kwargs)
    )
    client.login(session_string=session.to_session_string(endpoint))
    return client


@contextlib.asynccontextmanager
async def _store_lock_held(store: Store, name: str) -> AsyncIterator[None]:
    """Hold a store lock from a coroutine: taken and released on one worker thread."""
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sessionkeeper-login")
    held = store.lock(name)
    entered = loop.run_in_executor(executor, held.__enter__)

    def release_when_taken(taken: asyncio.Future[Any]) -> None:
        if not taken.cancelled() and taken.exception() is None:
            executor.submit(held.__exit__, None, None, None)
        executor.shutdown(wait=False)

    try:
        await asyncio.shield(entered)
    except asyncio.CancelledError:
        # The wait was cancelled, but the lock may still be taken: release it then.
        entered.add_done_callback(release_when_taken)
        raise
    except BaseException:
        executor.shutdown(wait=False)
        raise
    try:
        yield
    finally:
        await asyncio.shield(loop.run_in_executor(executor, held.__exit__, None, None, None))
        executor.shutdown(wait=False)


async def _resolve_session_async(
    manager: AsyncPersistentSessionManager,
    identifier: str | None,
    password: str | None,
    did: str | None,
) -> AtpSessionData:
    found = _pick(await manager.sessions(), identifier, did, manager.store)
    if found is None:
        who = _need_login(identifier, password, did, manager.store)
        async with _store_lock_held(manager.store, login_lock_name(who)):
            found = _pick(await manager.sessions(), identifier, did, manager.store)
            if found is None:
                assert password is not None
                return await manager.login(who, password)
    loaded = await manager.load_session(found.did)
    if loaded is None:
        raise NoSessionError(f"the session of {found.did} was removed meanwhile; try again")
    return loaded


async def async_persistent_client(
    manager: AsyncPersistentSessionManager,
    identifier: str | None = None,
    password: str | None = None,
    *,
    did: str | None = None,
    **request_kwargs: Any,
) -> Any:
    """A logged-in MarshalX ``atproto.AsyncClient`` whose session lives in ``manager``'s store.

    The asyncio twin of [`persistent_client`][], with the same arguments.
    """
    atproto = _import_atproto()
    kwargs, inner_kwargs, inner = _split_kwargs(request_kwargs)
    _check_margin(manager.refresh_margin)
    session = await _resolve_session_async(manager, identifier, password, did)
    if inner is None and inner_kwargs:
        inner = bounded_async_client(DEFAULT_TIMEOUT, **inner_kwargs)
    transport = AsyncSessionTransport(manager, inner)
    endpoint = manager.pds_endpoint
    client = atproto.AsyncClient(
        base_url=endpoint, request=atproto.AsyncRequest(transport=transport, **kwargs)
    )
    await client.login(session_string=session.to_session_string(endpoint))
    return client
