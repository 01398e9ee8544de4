"""MarshalX ``atproto`` clients on sessionkeeper's persistence and exactly-once refresh.

A bot keeps its ``client.send_post(...)`` code and gets one login per fleet::

    manager = PersistentSessionManager(
        None, "https://bsky.social", refresh_margin=MARSHALX_REFRESH_MARGIN
    )
    client = persistent_client(manager, "bot.bsky.social", os.environ["APP_PASSWORD"])
    client.send_post("hello")

The client talks through a :class:`SessionTransport` (MarshalX documents the
``Request(transport=...)`` hook), which

* answers MarshalX's ``refreshSession`` from the manager: lock, re-read,
  adopt or refresh, so one refresh serves every thread, process and machine
  on the store, and MarshalX installs the pair and fires its own ``REFRESH``;
* stores a successful ``createSession`` and sends ``deleteSession`` through
  :meth:`~sessionkeeper.atproto.PersistentSessionManager.logout`;
* puts the manager's newer access token on a call that carries an older one
  of the same account, and adds the reactive refresh MarshalX lacks: a call
  refused with 400 ExpiredToken or 401 is refreshed once and replayed once
  (when its body can be sent again).

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
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import httpx

from sessionkeeper.atproto.errors import (
    MalformedTokenError,
    NoSessionError,
    SessionError,
    SessionExpiredError,
    SessionNetworkError,
    XrpcError,
)
from sessionkeeper.atproto.jwt import decode_claims
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.atproto.xrpc import (
    CREATE_SESSION,
    DELETE_SESSION,
    REFRESH_SESSION,
    is_rejected_access,
)

if TYPE_CHECKING:
    from sessionkeeper.atproto.async_manager import AsyncPersistentSessionManager
    from sessionkeeper.atproto.manager import PersistentSessionManager
    from sessionkeeper.stores.base import Store

logger = logging.getLogger(__name__)

#: MarshalX refreshes 15 minutes before the access token's exp (hardcoded). A manager
#: with this margin agrees with it about when a token is due.
MARSHALX_REFRESH_MARGIN = 15 * 60.0

#: ``persistent_client`` keywords that shape the inner (network) transport.
INNER_TRANSPORT_KWARGS = frozenset({"verify", "cert", "limits", "http1", "http2", "proxy"})

_XRPC = "/xrpc/"
_INSTALL_HINT = "MarshalX atproto is not installed: pip install 'sessionkeeper[marshalx]'"


# --- decisions shared by both transports -------------------------------------------------


def _nsid(request: httpx.Request) -> str | None:
    path = request.url.path
    index = path.find(_XRPC)
    return path[index + len(_XRPC) :] if index >= 0 else None


def _bearer_of(request: httpx.Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _set_bearer(request: httpx.Request, token: str) -> None:
    request.headers["Authorization"] = f"Bearer {token}"


def _subject(token: str) -> str | None:
    """The ``sub`` claim (the account's DID) of a session token, read without verifying."""
    try:
        sub = decode_claims(token).get("sub")
    except MalformedTokenError:
        return None
    return sub if isinstance(sub, str) else None


def _same_account(token: str | None, session: AtpSessionData | None) -> bool:
    return token is not None and session is not None and _subject(token) == session.did


def _replayable(request: httpx.Request) -> bool:
    """Whether the body is in memory (MarshalX sends bytes), so it can be sent again."""
    return isinstance(request.stream, httpx.ByteStream)


def _json_answer(request: httpx.Request, status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8", **headers},
        request=request,
    )


def _session_answer(request: httpx.Request, session: AtpSessionData) -> httpx.Response:
    """A refreshSession answer carrying ``session``: MarshalX installs it as the new pair."""
    return _json_answer(request, 200, session.to_json_dict())


def _failure_answer(request: httpx.Request, exc: SessionError) -> httpx.Response:
    """The XRPC error answer a failed refresh means to MarshalX (it raises its own error)."""
    if isinstance(exc, SessionExpiredError):
        body = {"error": exc.error or "ExpiredToken", "message": str(exc)}
        return _json_answer(request, exc.status or 400, body)
    if isinstance(exc, SessionNetworkError):
        if exc.status is None:
            raise httpx.ConnectError(str(exc), request=request) from exc
        wait = {"Retry-After": str(round(exc.retry_after))} if exc.retry_after else {}
        return _json_answer(
            request, exc.status, {"error": "Unavailable", "message": str(exc)}, **wait
        )
    if isinstance(exc, XrpcError):
        body = {"error": exc.error or "Failed", "message": exc.message or str(exc)}
        return _json_answer(request, exc.status, body)
    return _json_answer(request, 400, {"error": "SessionError", "message": str(exc)})


def _answered_session(response: httpx.Response) -> AtpSessionData | None:
    """The session a successful createSession/refreshSession answer carries, if any."""
    if not response.is_success:
        return None
    try:
        body = json.loads(response.content)
        document = {key: value for key, value in body.items() if key != "didDoc"}
        return AtpSessionData.from_json_dict(document, where=CREATE_SESSION)
    except (ValueError, AttributeError, SessionError):
        logger.warning("%s answered without a session document; not stored", CREATE_SESSION)
        return None


_SYNC_LOCKS: weakref.WeakKeyDictionary[object, threading.Lock] = weakref.WeakKeyDictionary()
_ASYNC_LOCKS: weakref.WeakKeyDictionary[object, asyncio.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _sync_lock(manager: object) -> threading.Lock:
    """One lock per manager in this process: "is the token still the one refused?" and the
    refresh happen together, so two threads refused with one token refresh once."""
    with _LOCKS_GUARD:
        return _SYNC_LOCKS.setdefault(manager, threading.Lock())


def _async_lock(manager: object) -> asyncio.Lock:
    """The asyncio twin of :func:`_sync_lock`, for the coroutines of one event loop."""
    with _LOCKS_GUARD:
        return _ASYNC_LOCKS.setdefault(manager, asyncio.Lock())


def _inner_client(inner: httpx.BaseTransport | httpx.Client | None) -> httpx.Client:
    if isinstance(inner, httpx.Client):
        return inner
    return httpx.Client(transport=inner) if inner is not None else httpx.Client()


def _inner_async_client(
    inner: httpx.AsyncBaseTransport | httpx.AsyncClient | None,
) -> httpx.AsyncClient:
    if isinstance(inner, httpx.AsyncClient):
        return inner
    return httpx.AsyncClient(transport=inner) if inner is not None else httpx.AsyncClient()


# --- the transports ----------------------------------------------------------------------


class SessionTransport(httpx.BaseTransport):
    """An httpx transport that routes a MarshalX ``Client``'s session through ``manager``.

    ``inner`` sends to the network: an ``httpx.Client`` (it applies its own
    proxies, including the environment's), a transport, or ``None`` for a
    default client. Every client and clone using this transport shares it:
    closing one of them leaves the inner connections open for the others.
    """

    def __init__(
        self,
        manager: PersistentSessionManager,
        inner: httpx.BaseTransport | httpx.Client | None = None,
    ) -> None:
        self.manager = manager
        self._inner = _inner_client(inner)
        self._lock = _sync_lock(manager)

    def __repr__(self) -> str:
        return f"SessionTransport({self.manager!r})"

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Answer refresh and logout from the manager; send the rest with a current token."""
        nsid = _nsid(request)
        if nsid == REFRESH_SESSION:
            return self._answer_refresh(request)
        if nsid == DELETE_SESSION and self.manager.session is not None:
            self.manager.logout()
            return httpx.Response(200, request=request)
        if nsid == CREATE_SESSION:
            response = self._send(request)
            created = _answered_session(response)
            if created is not None:
                self.manager.store_session(created)
            return response
        return self._call(request)

    def close(self) -> None:
        """Nothing to close per client: the inner connections serve every clone."""

    def _send(self, request: httpx.Request) -> httpx.Response:
        return self._inner.send(request)

    def _call(self, request: httpx.Request) -> httpx.Response:
        session = self.manager.session
        token = _bearer_of(request)
        if session is None or not _same_account(token, session):
            return self._send(request)
        if token != session.access_jwt:
            _set_bearer(request, session.access_jwt)  # the manager holds a newer one
        response = self._send(request)
        if not is_rejected_access(response) or not _replayable(request):
            return response
        try:
            fresh = self._fresh_after(session.access_jwt)
        except SessionError as exc:
            logger.warning("%s was refused and the refresh failed: %s", _nsid(request), exc)
            return response
        response.close()
        _set_bearer(request, fresh.access_jwt)
        return self._send(request)

    def _fresh_after(self, refused: str) -> AtpSessionData:
        with self._lock:
            current = self.manager.session
            if current is not None and current.access_jwt != refused:
                return current  # another thread refreshed meanwhile
            return self.manager.refresh_token()

    def _answer_refresh(self, request: httpx.Request) -> httpx.Response:
        presented = _bearer_of(request)
        with self._lock:
            current = self.manager.session
            if not _same_account(presented, current):
                did = _subject(presented) if presented else None
                current = self.manager.load_session(did) if did else None
                if current is None:
                    return self._forward_refresh(request)
            assert current is not None
            if presented != current.refresh_jwt:
                return _session_answer(request, current)  # MarshalX is behind: hand it ours
            try:
                return _session_answer(request, self.manager.refresh_token())
            except SessionError as exc:
                return _failure_answer(request, exc)

    def _forward_refresh(self, request: httpx.Request) -> httpx.Response:
        # A session the store never had (imported by hand): refresh it, then keep it.
        response = self._send(request)
        created = _answered_session(response)
        if created is not None:
            self.manager.store_session(created)
        return response


class AsyncSessionTransport(httpx.AsyncBaseTransport):
    """The asyncio twin of :class:`SessionTransport`, for MarshalX's ``AsyncClient``."""

    def __init__(
        self,
        manager: AsyncPersistentSessionManager,
        inner: httpx.AsyncBaseTransport | httpx.AsyncClient | None = None,
    ) -> None:
        self.manager = manager
        self._inner = _inner_async_client(inner)
        self._lock = _async_lock(manager)

    def __repr__(self) -> str:
        return f"AsyncSessionTransport({self.manager!r})"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer refresh and logout from the manager; send the rest with a current token."""
        nsid = _nsid(request)
        if nsid == REFRESH_SESSION:
            return await self._answer_refresh(request)
        if nsid == DELETE_SESSION and self.manager.session is not None:
            await self.manager.logout()
            return httpx.Response(200, request=request)
        if nsid == CREATE_SESSION:
            response = await self._send(request)
            created = _answered_session(response)
            if created is not None:
                await self.manager.store_session(created)
            return response
        return await self._call(request)

    async def aclose(self) -> None:
        """Nothing to close per client: the inner connections serve every clone."""

    async def _send(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.send(request)

    async def _call(self, request: httpx.Request) -> httpx.Response:
        session = self.manager.session
        token = _bearer_of(request)
        if session is None or not _same_account(token, session):
            return await self._send(request)
        if token != session.access_jwt:
            _set_bearer(request, session.access_jwt)
        response = await self._send(request)
        if not is_rejected_access(response) or not _replayable(request):
            return response
        try:
            fresh = await self._fresh_after(session.access_jwt)
        except SessionError as exc:
            logger.warning("%s was refused and the refresh failed: %s", _nsid(request), exc)
            return response
        await response.aclose()
        _set_bearer(request, fresh.access_jwt)
        return await self._send(request)

    async def _fresh_after(self, refused: str) -> AtpSessionData:
        async with self._lock:
            current = self.manager.session
            if current is not None and current.access_jwt != refused:
                return current
            return await self.manager.refresh_token()

    async def _answer_refresh(self, request: httpx.Request) -> httpx.Response:
        presented = _bearer_of(request)
        async with self._lock:
            current = self.manager.session
            if not _same_account(presented, current):
                did = _subject(presented) if presented else None
                current = await self.manager.load_session(did) if did else None
                if current is None:
                    return await self._forward_refresh(request)
            assert current is not None
            if presented != current.refresh_jwt:
                return _session_answer(request, current)
            try:
                return _session_answer(request, await self.manager.refresh_token())
            except SessionError as exc:
                return _failure_answer(request, exc)

    async def _forward_refresh(self, request: httpx.Request) -> httpx.Response:
        response = await self._send(request)
        created = _answered_session(response)
        if created is not None:
            await self.manager.store_session(created)
        return response


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
    MarshalX's ``Request`` (so to ``httpx.Client``): ``verify``, ``cert``,
    ``limits``, ``http1``, ``http2`` and ``proxy`` configure the inner network
    transport, ``transport=`` replaces it, and ``mounts=`` is refused (it would
    bypass the session transport).
    """
    atproto = _import_atproto()
    kwargs, inner_kwargs, inner = _split_kwargs(request_kwargs)
    _check_margin(manager.refresh_margin)
    transport = SessionTransport(manager, inner or httpx.Client(**inner_kwargs))
    session = _resolve_session(manager, identifier, password, did)
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
    try:
        await asyncio.shield(entered)
    except asyncio.CancelledError:
        # The wait was cancelled; the lock may still be taken later: release it then.
        entered.add_done_callback(lambda _: executor.submit(held.__exit__, None, None, None))
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

    The asyncio twin of :func:`persistent_client`, with the same arguments.
    """
    atproto = _import_atproto()
    kwargs, inner_kwargs, inner = _split_kwargs(request_kwargs)
    _check_margin(manager.refresh_margin)
    transport = AsyncSessionTransport(manager, inner or httpx.AsyncClient(**inner_kwargs))
    session = await _resolve_session_async(manager, identifier, password, did)
    endpoint = manager.pds_endpoint
    client = atproto.AsyncClient(
        base_url=endpoint, request=atproto.AsyncRequest(transport=transport, **kwargs)
    )
    await client.login(session_string=session.to_session_string(endpoint))
    return client
