"""HacClient: the SAP Commerce HAC HTTP API with a persisted, self-healing session.

Every console request goes through the core's call loop
(`sessionkeeper.core.call_loop`) with a `HacAuthorizer`, as the
ATProto managers' calls do; renewals are the core's single flight with the
`HacRelogin` policy, on the core's blocking
driver. Session rules (why each request is there):

- Warm: a cached session is used as is, without a validation round trip;
  one operation is one request.
- Cold: under the session's cross-process lock, re-read the cache (another
  process may have logged in while we waited: adopt its session); otherwise
  log in (three requests, see `sessionkeeper.hac.login`) and save.
- Dead session (302 to the login page, 401/403/405, or the login page in a
  200 body): the request did not run on the server, so renew it (same lock
  and re-read rule, adopting a session that differs from the dead one) and
  replay. An adopted session can be dead too (the server restarted after
  another process saved it), so a call may renew twice, but it logs in at
  most once for a refusal: a session logged in for the call that is refused
  again is an authentication error.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.core.flow import BlockingDriver
from sessionkeeper.core.lifetime import Lifetime
from sessionkeeper.core.singleflight import Outcome, single_flight
from sessionkeeper.core.state import SessionState
from sessionkeeper.events import SessionEvent
from sessionkeeper.hac import operations as ops
from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.cookies import ROUTE_COOKIE, SESSION_COOKIE, route_cookie_string
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.kind import HAC_ERRORS, HAC_KIND, account_of
from sessionkeeper.hac.log_redaction import install_cookie_redaction
from sessionkeeper.hac.models import (
    FlexibleSearchResult,
    GroovyScriptResult,
    ImpexResult,
    SessionInfo,
    UpdateData,
    UpdateLog,
    UpdateResult,
)
from sessionkeeper.hac.pages import parse_impex_import, parse_impex_validation
from sessionkeeper.hac.relogin import HacRelogin
from sessionkeeper.hac.session import SessionManager, SessionMetadata
from sessionkeeper.hac.transport import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    REDIRECTS,
    HacTransport,
    session_cookies,
    unreachable,
)
from sessionkeeper.hac.urls import HacUrls
from sessionkeeper.lifecycle import Closing
from sessionkeeper.redaction import redact_url, without_userinfo
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.errors import StoreError
from sessionkeeper.stores.memory import MemoryStore

if TYPE_CHECKING:
    import httpx

    from sessionkeeper.hac.authorizer import HacAuthorizer

logger = logging.getLogger(__name__)

_FORM_FOR_JSON = {"Content-Type": FORM_CONTENT_TYPE, "Accept": "application/json"}
_FORM_FOR_HTML = {"Content-Type": FORM_CONTENT_TYPE, "Accept": "text/html"}
_JSON = {"Accept": "application/json"}

#: Refresh-and-replay rounds of one call: an adopted session may be dead too.
RENEWALS_PER_CALL = 2


class _OneCall:
    """The client's session as one call's loop asks for it: one login for a refusal at most.

    A session adopted from the cache may be dead too, so the loop may ask
    twice; once this call has logged in, a refusal of that fresh session is
    final (the user lacks a permission, or something rewrites the CSRF token).
    """

    auto_refresh = True

    def __init__(self, client: HacClient) -> None:
        self._client = client
        self._logged_in = False

    def session_for_call(self) -> SessionMetadata:
        """The client's session, or a cached one, or a login."""
        return self._client._session_for_call()

    def refresh_rejected(self, used: SessionMetadata) -> SessionMetadata | None:
        """A renewed session after HAC refused ``used``; ``None`` after this call's login."""
        if self._logged_in:
            return None
        client = self._client
        client._info(
            "HAC session of %r at %s is no longer valid; renewing it",
            client.username,
            client.urls.root,
        )
        session, self._logged_in = client._renew(used)
        return session


class HacClient(Closing):
    """HTTP client for SAP Commerce HAC: Groovy, FlexibleSearch, Impex and system update.

    Drop-in for hac-client-core's ``HacClient``; ``session_manager`` or
    ``store`` choose where sessions persist (default ``~/.cache/hac-client/``);
    ``clock`` drives session timestamps and intervals (tests move it by hand).
    """

    #: Seconds between two touches of the cached session's ``last_used_at``. A
    #: touch is a durable write (fsync, ~10 ms on a disk); the timestamp serves
    #: idle listings and pruning at minute scale, against HAC's 120-minute
    #: timeout, so a run within this interval of the last one skips it. 0 touches
    #: after every operation, as the original did.
    touch_interval: float = 10.0

    def __init__(
        self,
        base_url: str,
        auth_handler: AuthHandler,
        environment: str = "local",
        timeout: int = 30,
        ignore_ssl: bool = False,
        session_persistence: bool = True,
        quiet: bool = False,
        *,
        session_manager: SessionManager | None = None,
        store: Store | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.urls = HacUrls.parse(base_url)
        install_cookie_redaction()
        #: The cache key's URL, exactly the original's, so caches interoperate.
        self.base_url = without_userinfo(base_url).rstrip("/")  # never a password in a file
        self.auth_handler = auth_handler
        self.environment = environment
        self.timeout = timeout
        self.ignore_ssl = ignore_ssl
        self.quiet = quiet
        self.session_manager: SessionManager | None
        if session_manager is not None:
            self.session_manager = session_manager
        elif not session_persistence:
            self.session_manager = None
        elif store is not None:
            self.session_manager = SessionManager(store=store, clock=clock)
        else:
            self.session_manager = SessionManager(clock=clock)
        #: The clock of session age and idle decisions (the session manager's, unless given).
        self.clock: Clock = clock or (
            self.session_manager.clock if self.session_manager is not None else SYSTEM_CLOCK
        )
        self._state: SessionState[SessionMetadata] = SessionState(
            HAC_KIND, refresh_margin=0.0, auto_refresh=True, clock=self.clock, errors=HAC_ERRORS
        )
        self._last_used_at: float | None = None  # of the cached session, as last read or written
        self._transport = HacTransport(
            self.urls, auth_handler, timeout=timeout, ignore_ssl=ignore_ssl
        )
        #: The underlying ``httpx.Client`` (the original exposed its requests session here).
        self.http_session: httpx.Client = self._transport.http
        # Renewals run on the cache's store, whose lock makes them single flight among
        # threads and processes; without persistence a private memory store does it
        # among this client's threads.
        store_of_sessions = (
            self.session_manager.store if self.session_manager is not None else MemoryStore()
        )
        self._driver = BlockingDriver(store_of_sessions, self.http_session)
        self._authorizer: HacAuthorizer | None = None  # built with the first call

    def __repr__(self) -> str:
        info = self.session_info
        return (
            f"HacClient({self.urls.root!r}, user={self.username!r}, "
            f"environment={self.environment!r}, "
            f"authenticated={bool(info and info.is_authenticated)})"
        )

    @property
    def username(self) -> str:
        """The login name the auth handler supplies (part of the cache key).

        A handler's ``username`` attribute is preferred, so a handler that fetches
        its password lazily (from a keyring or a prompt) is not asked for it on a
        warm run that needs no login.
        """
        username = getattr(self.auth_handler, "username", None)
        if isinstance(username, str):
            return username
        return self.auth_handler.get_initial_credentials().get("j_username", "")

    @property
    def lifetime(self) -> Lifetime | None:
        """When the live session lapses unless used (HAC's idle timeout); ``None`` without one."""
        session = self._state.session
        return HAC_KIND.lifetime(session) if session is not None else None

    @property
    def session_info(self) -> SessionInfo | None:
        """The live session (the original's attribute; assigning one makes it current)."""
        session = self._state.session
        if session is None:
            return None
        return SessionInfo(
            session_id=session.session_id,
            csrf_token=session.csrf_token,
            route_cookie=session.route_cookie,
            is_authenticated=session.is_authenticated,
        )

    @session_info.setter
    def session_info(self, info: SessionInfo | None) -> None:
        if info is None:
            self._state.forget(self._account())
            return
        now = self.clock.time()
        base_url, username, environment = self._key()
        self._state.become_current(
            SessionMetadata(
                session_id=info.session_id,
                csrf_token=info.csrf_token,
                route_cookie=info.route_cookie,
                environment=environment,
                base_url=base_url,
                username=username,
                created_at=now,
                last_used_at=now,
                is_authenticated=info.is_authenticated,
            )
        )

    def _info(self, message: str, *args: object) -> None:
        logger.log(logging.DEBUG if self.quiet else logging.INFO, message, *args)

    # -- one authenticated request ---------------------------------------------------

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        form: Mapping[str, str] | None = None,
        csrf_in_form: bool = False,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        result_marker: str | None = None,
    ) -> httpx.Response:
        """Run one authenticated request through the core's call loop (see the module doc)."""
        import httpx

        from sessionkeeper.core.call_loop import SessionAuth, ThreadedSource
        from sessionkeeper.hac.authorizer import CSRF_FORM, RESULT_MARKER, signed_with

        self._transport.check_open(operation)
        request = self._transport.build(
            method,
            self.urls.url(path),
            data=form,
            json_body=json_body,
            headers=headers,
            params=params,
        )
        if csrf_in_form and form is not None:
            request.extensions[CSRF_FORM] = dict(form)
        if result_marker is not None:
            request.extensions[RESULT_MARKER] = result_marker
        source = _OneCall(self)
        authorizer = self._session_authorizer()
        auth = SessionAuth(
            authorizer,
            sync_source=source,
            async_source=ThreadedSource(source),
            renewals=RENEWALS_PER_CALL,
        )
        try:
            response = self.http_session.send(request, auth=auth)
        except httpx.HTTPError as exc:
            raise unreachable(operation, self.urls.root, f"{type(exc).__name__}: {exc}") from exc
        logger.debug("%s %s -> %d", method, redact_url(path), response.status_code)
        if authorizer.rejected(response):
            raise HacAuthenticationError(
                f"{operation}: HAC rejected a fresh session for user {self.username!r} "
                f"at {self.urls.root} (HTTP {response.status_code}); "
                "check the user's HAC permissions"
            )
        if response.status_code >= 400 or response.status_code in REDIRECTS:
            raise HacClientError(
                f"{operation}: HAC answered HTTP {response.status_code} "
                f"for {self.urls.web_root}{path}"
            )
        self._after_success(signed_with(request), response)
        return response

    def _session_authorizer(self) -> HacAuthorizer:
        authorizer = self._authorizer
        if authorizer is None:
            from sessionkeeper.hac.authorizer import HacAuthorizer

            authorizer = self._authorizer = HacAuthorizer(self._transport.gate)
        return authorizer

    def _after_success(self, used: SessionMetadata, response: httpx.Response) -> None:
        """Persist cookie changes (a new ROUTE after fail-over) or just touch the session."""
        cookies = session_cookies(used)
        cookies.absorb(response.headers.get_list("set-cookie"))
        session_id = cookies.get(SESSION_COOKIE) or used.session_id
        route = cookies.get(ROUTE_COOKIE)
        route_cookie = route_cookie_string(route) if route is not None else used.route_cookie
        changed = session_id != used.session_id or route_cookie != used.route_cookie
        now = self.clock.time()
        if changed:
            logger.info("HAC changed the session cookies of %r; saving them", self.username)
            current = self._state.session
            # Only the session this call used takes the new cookies: another thread may
            # have renewed it meanwhile, and its session must not be replaced by ours.
            if current is not None and current.session_id == used.session_id:
                self._state.become_current(
                    dataclasses.replace(
                        used, session_id=session_id, route_cookie=route_cookie, last_used_at=now
                    )
                )
        if self.session_manager is None:
            return
        if changed:
            self.session_manager.save_session(
                *self._key(), session_id, used.csrf_token, route_cookie
            )
        elif self._last_used_at is None or now - self._last_used_at >= self.touch_interval:
            self.session_manager.touch_session(*self._key())
        else:
            return
        self._last_used_at = now

    # -- session lifecycle -----------------------------------------------------------

    def _key(self) -> tuple[str, str, str]:
        return self.base_url, self.username, self.environment

    def _account(self) -> str:
        return account_of(*self._key())

    def _use(self, session: SessionMetadata) -> SessionMetadata:
        self._last_used_at = session.last_used_at
        self._state.become_current(session)
        return session

    def use_session(self, cached: SessionMetadata) -> None:
        """Start from ``cached``, a session just read for this client's key, without reading
        it again (ours; the ``hac`` command finds a session before it builds its client)."""
        self._use(cached)

    def _load_cached(self) -> SessionMetadata | None:
        if self.session_manager is None:
            return None
        return self.session_manager.load_session(*self._key())

    def _session_for_call(self) -> SessionMetadata:
        """The session to use: in memory, else cached (no validation request), else a login."""
        session = self._state.session
        if session is not None and session.is_authenticated:
            return session
        cached = self._load_cached()
        if cached is not None:
            self._info("Using cached HAC session of %r at %s", self.username, self.urls.root)
            return self._use(cached)
        return self._renew(None)[0]

    def _lock_timeout(self) -> float:
        # Long enough for another holder's full login (three requests) to finish.
        return max(60.0, 4.0 * float(self.timeout))

    def _renew(
        self, known: SessionMetadata | None, *, force: bool = False
    ) -> tuple[SessionMetadata, bool]:
        """Adopt the session another thread or process opened since ``known`` died, or log in.

        ``known`` is the session HAC refused (``None`` on a cold start). Returns
        the session and whether this call logged in for it.
        """
        state = self._state
        if known is not None and not force:
            fresher = state.refreshed_meanwhile(known)
            if fresher is not None:
                return fresher, False
        policy = HacRelogin(
            *self._key(),
            urls=self.urls,
            credentials=self.auth_handler.get_initial_credentials,
            clock=self.clock,
            force=force,
        )
        flow = single_flight(policy, known, lock_timeout=self._lock_timeout())
        try:
            result = self._driver.run(flow)
        except StoreError as exc:
            raise HacClientError(
                f"session store failed while logging in {self.username!r}: {exc}"
            ) from exc
        if known is None:
            session = self._use(result.session)
            state.emit(SessionEvent.CREATE, session)
        else:
            session = state.apply(known, result)  # a refused login of a dead session raises
            self._last_used_at = session.last_used_at
        if result.outcome is Outcome.ADOPTED:
            self._info("Adopted the HAC session another process opened for %r", self.username)
            return session, False
        self._info("Authenticated to HAC at %s as %r", self.urls.root, self.username)
        return session, True

    # -- public session API ----------------------------------------------------------

    def login(self, *, force: bool = False) -> None:
        """Make sure a session exists: reuse the cached one, or log in.

        A cached session is trusted without a validation request; if it turns
        out dead, the first operation logs in again. ``force=True`` always
        performs a fresh login (and checks the credentials).
        """
        if force:
            self._renew(self._state.session, force=True)
            return
        self._session_for_call()

    def logout(self) -> None:
        """End the session on the server (best effort) and forget it locally."""
        session = self._state.session or self._load_cached()
        if session is not None:
            try:
                response = self._transport.send(
                    "POST",
                    self.urls.url("/logout"),
                    "HAC logout",
                    session_cookies(session),
                    data={"_csrf": session.csrf_token},
                    headers={**_FORM_FOR_HTML, "X-CSRF-TOKEN": session.csrf_token},
                )
                logger.debug("HAC logout answered HTTP %d", response.status_code)
            except HacClientError as exc:
                logger.warning("HAC logout request failed; forgetting the session anyway: %s", exc)
        self._state.forget(self._account())
        if self.session_manager is not None:
            try:
                self.session_manager.remove_session(*self._key())
            except (OSError, StoreError) as exc:
                raise HacClientError(
                    f"logged out, but the cached session of {self.username!r} "
                    f"could not be removed: {exc}"
                ) from exc

    def close(self) -> None:
        """Close the HTTP connections (the persisted session stays)."""
        self._transport.close()

    # -- operations ------------------------------------------------------------------

    def execute_groovy(
        self, script: str, commit: bool = False, script_type: str = "groovy"
    ) -> GroovyScriptResult:
        """Run a console script (groovy, beanshell or javascript); commit or roll back."""
        form = ops.groovy_form(script, commit, script_type)
        operation = "Groovy script"
        response = self._call(
            operation, "POST", "/console/scripting/execute", form=form, headers=_FORM_FOR_JSON
        )
        return ops.groovy_result(ops.json_object(response, operation), commit)

    def execute_flexiblesearch(
        self,
        query: str,
        max_count: int = 200,
        locale: str = "en",
        *,
        user: str | None = None,
        data_source: str = "master",
        raw_sql: bool = False,
    ) -> FlexibleSearchResult:
        """Run a FlexibleSearch query (or raw SQL with ``raw_sql=True``); never commits."""
        form = ops.flexsearch_form(query, max_count, locale, user, data_source, raw_sql)
        operation = "SQL query" if raw_sql else "FlexibleSearch query"
        response = self._call(
            operation, "POST", "/console/flexsearch/execute", form=form, headers=_FORM_FOR_JSON
        )
        return ops.flexsearch_result(ops.json_object(response, operation))

    def import_impex(
        self,
        impex_content: str,
        validation_mode: str = "import_strict",
        *,
        enable_code_execution: bool = False,
        legacy_mode: bool = False,
        max_threads: int = 1,
    ) -> ImpexResult:
        """Import Impex; ``validation_mode`` is import_strict/import_relaxed (or strict/relaxed)."""
        form = ops.impex_form(
            impex_content,
            validation_mode,
            enable_code_execution=enable_code_execution,
            legacy_mode=legacy_mode,
            max_threads=max_threads,
        )
        return parse_impex_import(self._impex_page(form, validate=False))

    def validate_impex(
        self,
        impex_content: str,
        validation_mode: str = "import_strict",
        *,
        enable_code_execution: bool = False,
        legacy_mode: bool = False,
        max_threads: int = 1,
    ) -> ImpexResult:
        """Validate Impex without importing it (same form as [`import_impex`][])."""
        form = ops.impex_form(
            impex_content,
            validation_mode,
            enable_code_execution=enable_code_execution,
            legacy_mode=legacy_mode,
            max_threads=max_threads,
        )
        return parse_impex_validation(self._impex_page(form, validate=True))

    def _impex_page(self, form: dict[str, str], *, validate: bool) -> str:
        """POST an Impex form (the CSRF token in the form too) and return the HTML answer."""
        response = self._call(
            "Impex validation" if validate else "Impex import",
            "POST",
            "/console/impex/import/validate" if validate else "/console/impex/import",
            form=form,
            csrf_in_form=True,
            headers=_FORM_FOR_HTML,
            # A string only a real result page holds (the page may echo the Impex).
            result_marker='id="validationResultMsg"' if validate else 'id="impexResult"',
        )
        return response.text

    def get_update_data(self) -> UpdateData:
        """What the system update page offers: extensions and their parameters."""
        operation = "update data"
        response = self._call(operation, "GET", "/platform/init/data", headers=_JSON)
        return ops.update_data(ops.json_object(response, operation))

    def get_pending_patches(self) -> dict[str, list[dict[str, Any]]]:
        """Pending system patches per category (``{"ext": [{hash, name, required, ...}]}``)."""
        operation = "pending patches"
        response = self._call(operation, "GET", "/platform/init/pendingPatches", headers=_JSON)
        return ops.pending_patches(ops.json_object(response, operation))

    def execute_update(
        self,
        patches: dict[str, str] | None = None,
        drop_tables: bool = False,
        clear_hmc: bool = False,
        create_essential_data: bool = False,
        create_project_data: bool = False,
        localize_types: bool = False,
        all_parameters: dict[str, Any] | None = None,
        include_pending_patches: bool = True,
    ) -> UpdateResult:
        """Run a system update (``initMethod: "UPDATE"``, so the schema DDL does run)."""
        parameters: dict[str, Any] = dict(all_parameters or {})
        for name, value in (patches or {}).items():
            parameters[name] = [value]
        pending: dict[str, list[str]] = {}
        if include_pending_patches:
            try:
                pending = ops.required_patch_hashes(self.get_pending_patches())
            except HacAuthenticationError:
                raise
            except HacClientError as exc:
                logger.warning("could not read pending patches; updating without them: %s", exc)
        payload = ops.update_payload(
            parameters=parameters,
            pending=pending,
            drop_tables=drop_tables,
            clear_hmc=clear_hmc,
            create_essential_data=create_essential_data,
            create_project_data=create_project_data,
            localize_types=localize_types,
        )
        operation = "system update"
        response = self._call(
            operation,
            "POST",
            "/platform/init/execute",
            json_body=payload,
            headers={"Content-Type": JSON_CONTENT_TYPE, **_JSON},
        )
        body = ops.json_object(response, operation)
        return UpdateResult(
            success=bool(body.get("success", False)), log_html=str(body.get("log") or "")
        )

    def get_update_log(self) -> UpdateLog:
        """The current update/initialization log (poll it while an update runs)."""
        operation = "update log"
        response = self._call(
            operation,
            "GET",
            "/initlog/log",
            params={"_": str(int(self.clock.time() * 1000))},
            headers=_JSON,
        )
        body = ops.json_object(response, operation)
        return UpdateLog(log_html=str(body.get("log") or ""))


__all__ = ["HacClient"]
