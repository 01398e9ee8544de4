"""HacClient: the SAP Commerce HAC HTTP API with a persisted, self-healing session.

Session rules (why each request is there):

- Warm: a cached session is used as is, without a validation round trip;
  one operation is one request.
- Cold: under the session's cross-process lock, re-read the cache (another
  process may have logged in while we waited: adopt its session); otherwise
  log in (three requests, see `sessionkeeper.hac.login`) and save.
- Dead session (302 to the login page, 401/403/405, or the login page in a
  200 body): the request did not run on the server, so log in again once
  (same lock and re-read rule, adopting a session that differs from the dead
  one) and retry once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sessionkeeper.core.flow import BlockingDriver
from sessionkeeper.core.singleflight import Outcome, single_flight
from sessionkeeper.hac import operations as ops
from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.cookies import ROUTE_COOKIE, SESSION_COOKIE, CookieJar, route_cookie_string
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.log_redaction import install_cookie_redaction
from sessionkeeper.hac.login import LoginResult, form_login
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
    authenticated_headers,
    is_dead_session,
    session_cookies,
)
from sessionkeeper.hac.urls import HacUrls
from sessionkeeper.lifecycle import Closing
from sessionkeeper.redaction import without_userinfo
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.errors import StoreError

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

_FORM_FOR_JSON = {"Content-Type": FORM_CONTENT_TYPE, "Accept": "application/json"}
_FORM_FOR_HTML = {"Content-Type": FORM_CONTENT_TYPE, "Accept": "text/html"}
_JSON = {"Accept": "application/json"}


class HacClient(Closing):
    """HTTP client for SAP Commerce HAC: Groovy, FlexibleSearch, Impex and system update.

    Drop-in for hac-client-core's ``HacClient``; ``session_manager`` or
    ``store`` choose where sessions persist (default ``~/.cache/hac-client/``).
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
        self.session_info: SessionInfo | None = None
        self._last_used_at: float | None = None  # of the cached session, as last read or written
        self.session_manager: SessionManager | None
        if session_manager is not None:
            self.session_manager = session_manager
        elif not session_persistence:
            self.session_manager = None
        elif store is not None:
            self.session_manager = SessionManager(store=store)
        else:
            self.session_manager = SessionManager()
        self._transport = HacTransport(
            self.urls, auth_handler, timeout=timeout, ignore_ssl=ignore_ssl
        )
        #: The underlying ``httpx.Client`` (the original exposed its requests session here).
        self.http_session: httpx.Client = self._transport.http
        # Serialises session changes among threads sharing this client; the
        # session manager's lock does the same among processes.
        self._session_guard = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"HacClient({self.urls.root!r}, user={self.username!r}, "
            f"environment={self.environment!r}, "
            f"authenticated={bool(self.session_info and self.session_info.is_authenticated)})"
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
        """Run one authenticated request; on a dead session renew it and retry.

        A renewal adopts a session another process saved, or logs in; an adopted
        session can be dead too (the server restarted after it was saved), so the
        request gets another try after a login. It stops at the first dead answer
        to a session logged in for it: at most one login per call.
        """
        url = self.urls.url(path)
        info = self._ensure_session()
        fresh = False  # whether ``info`` comes from a login made for this call
        for attempt in (1, 2, 3):
            data = dict(form) if form is not None else None
            if data is not None and csrf_in_form:
                data["_csrf"] = info.csrf_token
            # One jar per request, filled from the session it uses: a thread whose
            # request met a dead session cannot disturb another thread's cookies.
            cookies = session_cookies(info)
            response = self._transport.send(
                method,
                url,
                operation,
                cookies,
                data=data,
                json_body=json_body,
                headers=authenticated_headers(info, headers or {}),
                params=params,
            )
            if not is_dead_session(response, result_marker):
                break
            if fresh or attempt == 3:
                raise HacAuthenticationError(
                    f"{operation}: HAC rejected a fresh session for user {self.username!r} "
                    f"at {self.urls.root} (HTTP {response.status_code}); "
                    "check the user's HAC permissions"
                )
            self._info(
                "HAC session of %r at %s is no longer valid (HTTP %d); logging in again",
                self.username,
                self.urls.root,
                response.status_code,
            )
            info, fresh = self._renew_session(stale=info)
        if response.status_code >= 400 or response.status_code in REDIRECTS:
            raise HacClientError(
                f"{operation}: HAC answered HTTP {response.status_code} "
                f"for {self.urls.web_root}{path}"
            )
        self._after_success(info, cookies)
        return response

    def _after_success(self, info: SessionInfo, cookies: CookieJar) -> None:
        """Persist cookie changes (a new ROUTE after fail-over) or just touch the session."""
        session_id = cookies.get(SESSION_COOKIE) or info.session_id
        route = cookies.get(ROUTE_COOKIE)
        route_cookie = route_cookie_string(route) if route is not None else info.route_cookie
        changed = session_id != info.session_id or route_cookie != info.route_cookie
        if changed:
            logger.info("HAC changed the session cookies of %r; saving them", self.username)
            with self._session_guard:
                info.session_id = session_id
                info.route_cookie = route_cookie
        if self.session_manager is None:
            return
        now = time.time()
        if changed:
            self.session_manager.save_session(
                *self._key(), info.session_id, info.csrf_token, info.route_cookie
            )
        elif self._last_used_at is None or now - self._last_used_at >= self.touch_interval:
            self.session_manager.touch_session(*self._key())
        else:
            return
        self._last_used_at = now

    # -- session lifecycle -----------------------------------------------------------

    def _key(self) -> tuple[str, str, str]:
        return self.base_url, self.username, self.environment

    def _adopt(self, session_id: str, csrf_token: str, route_cookie: str | None) -> SessionInfo:
        self.session_info = SessionInfo(
            session_id=session_id,
            csrf_token=csrf_token,
            route_cookie=route_cookie,
            is_authenticated=True,
        )
        return self.session_info

    def _adopt_cached(self, cached: SessionMetadata) -> SessionInfo:
        self._last_used_at = cached.last_used_at
        return self._adopt(cached.session_id, cached.csrf_token, cached.route_cookie)

    def use_session(self, cached: SessionMetadata) -> None:
        """Start from ``cached``, a session just read for this client's key, without reading
        it again (ours; the ``hac`` command finds a session before it builds its client)."""
        with self._session_guard:
            self._adopt_cached(cached)

    def _load_cached(self) -> SessionMetadata | None:
        if self.session_manager is None:
            return None
        return self.session_manager.load_session(*self._key())

    def _ensure_session(self) -> SessionInfo:
        """The session to use: in memory, else cached (no validation request), else a login."""
        with self._session_guard:
            if self.session_info is not None and self.session_info.is_authenticated:
                return self.session_info
            cached = self._load_cached()
            if cached is not None:
                self._info("Using cached HAC session of %r at %s", self.username, self.urls.root)
                return self._adopt_cached(cached)
            return self._renew_session(stale=None)[0]

    def _lock_timeout(self) -> float:
        # Long enough for another holder's full login (three requests) to finish.
        return max(60.0, 4.0 * float(self.timeout))

    def _renew_session(
        self, stale: SessionInfo | None, *, force: bool = False
    ) -> tuple[SessionInfo, bool]:
        """Log in, unless another thread or process already did since ``stale`` died.

        ``stale`` is the session that failed (``None`` on a cold start); a cached
        session that differs from it is adopted instead of logging in again.
        Returns the session and whether this call logged in for it.
        """
        with self._session_guard:
            current = self.session_info
            if (
                not force
                and stale is not None
                and current is not None
                and current.is_authenticated
                and current.session_id != stale.session_id
            ):
                return current, False  # another thread of this client renewed it meanwhile
            manager = self.session_manager
            if manager is None:
                return self._login_and_adopt(), True
            policy = HacRelogin(*self._key(), login=self._form_login, force=force)
            flow = single_flight(policy, self._dead(stale), lock_timeout=self._lock_timeout())
            try:
                result = BlockingDriver(manager.store, self.http_session).run(flow)
            except StoreError as exc:
                raise HacClientError(
                    f"session store failed while logging in {self.username!r}: {exc}"
                ) from exc
            if result.outcome is Outcome.REMOVED and result.failure is not None:
                raise result.failure
            if result.outcome is Outcome.ADOPTED:
                self._info("Adopted the HAC session another process opened for %r", self.username)
                return self._adopt_cached(result.session), False
            session = result.session
            self._last_used_at = session.last_used_at
            self._info("Authenticated to HAC at %s as %r", self.urls.root, self.username)
            return self._adopt(session.session_id, session.csrf_token, session.route_cookie), True

    def _dead(self, stale: SessionInfo | None) -> SessionMetadata | None:
        """The session that died, as the single flight compares it (by session id)."""
        if stale is None:
            return None
        base_url, username, environment = self._key()
        return SessionMetadata(
            session_id=stale.session_id,
            csrf_token=stale.csrf_token,
            route_cookie=stale.route_cookie,
            environment=environment,
            base_url=base_url,
            username=username,
            created_at=0.0,
            last_used_at=0.0,
        )

    def _form_login(self) -> LoginResult:
        self.session_info = None
        return form_login(self._transport, self.auth_handler.get_initial_credentials())

    def _login_and_adopt(self) -> SessionInfo:
        result = self._form_login()
        info = self._adopt(result.session_id, result.csrf_token, result.route_cookie)
        self._info("Authenticated to HAC at %s as %r", self.urls.root, self.username)
        return info

    # -- public session API ----------------------------------------------------------

    def login(self, *, force: bool = False) -> None:
        """Make sure a session exists: reuse the cached one, or log in.

        A cached session is trusted without a validation request; if it turns
        out dead, the first operation logs in again. ``force=True`` always
        performs a fresh login (and checks the credentials).
        """
        if force:
            with self._session_guard:
                self._renew_session(stale=self.session_info, force=True)
            return
        self._ensure_session()

    def logout(self) -> None:
        """End the session on the server (best effort) and forget it locally."""
        with self._session_guard:
            info = self.session_info
            if info is None:
                cached = self._load_cached()
                info = self._adopt_cached(cached) if cached is not None else None
            if info is not None:
                try:
                    response = self._transport.send(
                        "POST",
                        self.urls.url("/logout"),
                        "HAC logout",
                        session_cookies(info),
                        data={"_csrf": info.csrf_token},
                        headers={**_FORM_FOR_HTML, "X-CSRF-TOKEN": info.csrf_token},
                    )
                    logger.debug("HAC logout answered HTTP %d", response.status_code)
                except HacClientError as exc:
                    logger.warning(
                        "HAC logout request failed; forgetting the session anyway: %s", exc
                    )
            self.session_info = None
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
        """Validate Impex without importing it (same form as `import_impex`)."""
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
            params={"_": str(int(time.time() * 1000))},
            headers=_JSON,
        )
        body = ops.json_object(response, operation)
        return UpdateLog(log_html=str(body.get("log") or ""))


__all__ = ["HacClient"]
