"""HacClient: the SAP Commerce HAC HTTP API with a persisted, self-healing session.

Session rules (why each request is there):

- Warm: a cached session is used as is, without a validation round trip;
  one operation is one request.
- Cold: under the session's cross-process lock, re-read the cache (another
  process may have logged in while we waited: adopt its session); otherwise
  GET the login page, POST the form, GET the redirect target for the NEW
  CSRF token (Spring renews both the session id and the token on login).
- Dead session (302 to the login page, 401/403/405, or the login page in a
  200 body): the request did not run on the server, so log in again once
  (same lock and re-read rule, adopting a session that differs from the dead
  one) and retry once.
"""

from __future__ import annotations

import functools
import html
import logging
import ssl
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpcore  # noqa: F401  (httpx imports it lazily on the first client; load it with ours)
import httpx

from sessionkeeper.hac.auth import AuthHandler
from sessionkeeper.hac.cookies import (
    ROUTE_COOKIE,
    SESSION_COOKIE,
    CookieJar,
    route_cookie_string,
    split_route_cookie,
)
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.log_redaction import install_cookie_redaction
from sessionkeeper.hac.models import (
    FlexibleSearchResult,
    GroovyScriptResult,
    ImpexResult,
    ProjectData,
    SessionInfo,
    UpdateData,
    UpdateLog,
    UpdateParameter,
    UpdateResult,
)
from sessionkeeper.hac.pages import (
    extract_csrf_token,
    is_login_page,
    login_error_text,
    parse_impex_import,
    parse_impex_validation,
)
from sessionkeeper.hac.session import SessionManager, SessionMetadata
from sessionkeeper.hac.urls import HacUrls
from sessionkeeper.stores.base import Store
from sessionkeeper.stores.errors import StoreError

logger = logging.getLogger(__name__)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
JSON_CONTENT_TYPE = "application/json; charset=UTF-8"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Answers HAC gives to a request whose session (or CSRF token) is dead.
DEAD_SESSION_STATUSES = frozenset({401, 403, 405})
SCRIPT_TYPES = ("groovy", "beanshell", "javascript")
VALIDATION_MODES = {
    "import_strict": "IMPORT_STRICT",
    "import_relaxed": "IMPORT_RELAXED",
    "strict": "IMPORT_STRICT",
    "relaxed": "IMPORT_RELAXED",
}
MAX_LOGIN_PAGE_REDIRECTS = 3


def _validation_enum(mode: str) -> str:
    try:
        return VALIDATION_MODES[mode.strip().lower()]
    except KeyError:
        raise ValueError(
            f"validation mode {mode!r} is not one of {', '.join(VALIDATION_MODES)}"
        ) from None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return None
    return None


def _exception_message(value: object) -> str | None:
    """FlexibleSearch's ``exception`` is an object ``{message, ...}``; keep its message."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        for key in ("message", "localizedMessage"):
            text = value.get(key)
            if isinstance(text, str) and text:
                return text
        return "FlexibleSearch query failed (HAC gave no message)"
    return str(value)


def _cell(value: object) -> str:
    if value is None:
        return ""
    return html.unescape(value) if isinstance(value, str) else str(value)


def _session_cookies(info: SessionInfo) -> CookieJar:
    """The cookies that carry ``info``: ``JSESSIONID`` and the load balancer's route."""
    cookies = CookieJar()
    cookies.put(SESSION_COOKIE, info.session_id)
    route = split_route_cookie(info.route_cookie)
    if route is not None:
        cookies.put(*route)
    return cookies


@functools.cache
def _verifying_ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~150 ms; one context serves every client of the process.
    return httpx.create_ssl_context()


def _tls_verification(origin: str, ignore_ssl: bool) -> ssl.SSLContext | bool:
    """What to hand httpx as ``verify``.

    Plain ``http://`` never performs a TLS handshake (every request goes to this
    origin; redirects are resolved against it), so it needs no CA bundle.
    """
    if ignore_ssl or origin.startswith("http://"):
        return False
    return _verifying_ssl_context()


class HacClient:
    """HTTP client for SAP Commerce HAC: Groovy, FlexibleSearch, Impex and system update.

    Drop-in for hac-client-core's ``HacClient``; ``session_manager`` or
    ``store`` choose where sessions persist (default ``~/.cache/hac-client/``).
    """

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
        self.base_url = base_url.rstrip("/")
        self.auth_handler = auth_handler
        self.environment = environment
        self.timeout = timeout
        self.ignore_ssl = ignore_ssl
        self.quiet = quiet
        self.session_info: SessionInfo | None = None
        self.session_manager: SessionManager | None
        if session_manager is not None:
            self.session_manager = session_manager
        elif not session_persistence:
            self.session_manager = None
        elif store is not None:
            self.session_manager = SessionManager(store=store)
        else:
            self.session_manager = SessionManager()
        self.http_session = httpx.Client(
            verify=_tls_verification(self.urls.origin, ignore_ssl),
            timeout=timeout,
            follow_redirects=False,
            headers={"User-Agent": "sessionkeeper-hac"},
        )
        # Serialises session changes among threads sharing this client; the
        # session manager's lock does the same among processes.
        self._session_guard = threading.RLock()

    def __repr__(self) -> str:
        return (
            f"HacClient({self.urls.root!r}, user={self.username!r}, "
            f"environment={self.environment!r}, "
            f"authenticated={bool(self.session_info and self.session_info.is_authenticated)})"
        )

    # -- identity -----------------------------------------------------------------

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

    # -- low-level HTTP ---------------------------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        operation: str,
        cookies: CookieJar,
        *,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        if self.http_session.is_closed:
            raise HacClientError(f"{operation}: this HacClient was closed; create a new one")
        request = self.http_session.build_request(
            method, url, data=data, json=json_body, headers=headers, params=params
        )
        cookie = cookies.header()
        if cookie:
            request.headers["Cookie"] = cookie
        request = self.auth_handler.apply_auth(request)
        try:
            response = self.http_session.send(request)
        except httpx.HTTPError as exc:
            raise HacClientError(
                f"{operation}: cannot reach HAC at {self.urls.root} ({type(exc).__name__}: {exc})"
            ) from exc
        finally:
            # httpx's own jar scopes cookies by domain; ours does not (see cookies.py).
            self.http_session.cookies.clear()
        cookies.absorb(response.headers.get_list("set-cookie"))
        logger.debug("%s %s -> %d", method, request.url.path, response.status_code)
        return response

    def _authenticated_headers(self, info: SessionInfo, extra: Mapping[str, str]) -> dict[str, str]:
        return {
            "X-CSRF-TOKEN": info.csrf_token,
            "X-Requested-With": "XMLHttpRequest",
            **extra,
        }

    def _is_dead(self, response: httpx.Response, result_marker: str | None) -> bool:
        status = response.status_code
        if status in DEAD_SESSION_STATUSES:
            return True
        if status in REDIRECTS:
            return "login" in response.headers.get("location", "")
        if status != 200 or "json" in response.headers.get("content-type", ""):
            # A JSON body is an answer, even one that mentions the login form.
            return False
        body = response.text
        if result_marker is not None and result_marker in body:
            return False
        return is_login_page(body)

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
        """Run one authenticated request; on a dead session re-login once and retry once."""
        url = self.urls.url(path)
        info = self._ensure_session()
        for attempt in (1, 2):
            data = dict(form) if form is not None else None
            if data is not None and csrf_in_form:
                data["_csrf"] = info.csrf_token
            # One jar per request, filled from the session it uses: a thread whose
            # request met a dead session cannot disturb another thread's cookies.
            cookies = _session_cookies(info)
            response = self._send(
                method,
                url,
                operation,
                cookies,
                data=data,
                json_body=json_body,
                headers=self._authenticated_headers(info, headers or {}),
                params=params,
            )
            if not self._is_dead(response, result_marker):
                break
            if attempt == 2:
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
            info = self._renew_session(stale=info)
        if response.status_code >= 400 or response.status_code in REDIRECTS:
            raise HacClientError(
                f"{operation}: HAC answered HTTP {response.status_code} "
                f"for {self.urls.web_root}{path}"
            )
        self._after_success(info, cookies)
        return response

    def _json(self, response: httpx.Response, operation: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise HacClientError(
                f"{operation}: HAC answered with something that is not JSON "
                f"(HTTP {response.status_code}, {response.headers.get('content-type', '?')})"
            ) from None
        if not isinstance(body, dict):
            raise HacClientError(f"{operation}: HAC answered JSON that is not an object")
        return body

    # -- session lifecycle ---------------------------------------------------------

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
        return self._adopt(cached.session_id, cached.csrf_token, cached.route_cookie)

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
            return self._renew_session(stale=None)

    def _lock_timeout(self) -> float:
        # Long enough for another holder's full login (three requests) to finish.
        return max(60.0, 4.0 * float(self.timeout))

    def _renew_session(self, stale: SessionInfo | None, *, force: bool = False) -> SessionInfo:
        """Log in, unless another thread or process already did since ``stale`` died.

        ``stale`` is the session that failed (``None`` on a cold start); a cached
        session that differs from it is adopted instead of logging in again.
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
                return current  # another thread of this client renewed it meanwhile
            manager = self.session_manager
            if manager is None:
                return self._login_and_adopt()
            try:
                with manager.lock(*self._key(), timeout=self._lock_timeout()):
                    # Re-read under the lock: whoever held it before us may have logged in.
                    cached = manager.load_session(*self._key())
                    if (
                        not force
                        and cached is not None
                        and (stale is None or cached.session_id != stale.session_id)
                    ):
                        self._info(
                            "Adopted the HAC session another process opened for %r", self.username
                        )
                        return self._adopt_cached(cached)
                    try:
                        info = self._login_and_adopt()
                    except HacAuthenticationError:
                        if (
                            cached is not None
                            and stale is not None
                            and cached.session_id == stale.session_id
                        ):
                            # The server declared it dead and we cannot replace it.
                            manager.remove_session(*self._key())
                        raise
                    manager.save_session(
                        *self._key(), info.session_id, info.csrf_token, info.route_cookie
                    )
                    return info
            except StoreError as exc:
                raise HacClientError(
                    f"session store failed while logging in {self.username!r}: {exc}"
                ) from exc

    def _login_and_adopt(self) -> SessionInfo:
        session_id, csrf_token, route_cookie = self._perform_login()
        info = self._adopt(session_id, csrf_token, route_cookie)
        self._info("Authenticated to HAC at %s as %r", self.urls.root, self.username)
        return info

    def _login_failed(self, username: str, detail: str | None = None) -> HacAuthenticationError:
        suffix = f" ({detail})" if detail else ""
        return HacAuthenticationError(
            f"Login failed for user {username!r} at {self.urls.root}: "
            f"check the username and password{suffix}"
        )

    def _get_login_page(self, operation: str, cookies: CookieJar) -> httpx.Response:
        url = self.urls.url("/login")
        for _ in range(MAX_LOGIN_PAGE_REDIRECTS + 1):
            response = self._send("GET", url, operation, cookies, headers={"Accept": "text/html"})
            if response.status_code not in REDIRECTS:
                break
            url = self.urls.same_origin(response.headers.get("location", ""))
        else:
            raise HacAuthenticationError(f"{operation}: the login page of {self.urls.root} loops")
        if response.status_code != 200:
            raise HacAuthenticationError(
                f"{operation}: the login page {self.urls.url('/login')} answered "
                f"HTTP {response.status_code}; is this the HAC URL?"
            )
        return response

    def _perform_login(self) -> tuple[str, str, str | None]:
        """The three-request form login; returns (session id, CSRF token, route cookie)."""
        operation = "HAC login"
        credentials = self.auth_handler.get_initial_credentials()
        username = credentials.get("j_username", "")
        cookies = CookieJar()
        self.session_info = None
        page = self._get_login_page(operation, cookies)
        csrf = extract_csrf_token(page.text)
        if not csrf:
            raise HacAuthenticationError(
                f"{operation}: no CSRF token in the login page of {self.urls.root}; is this HAC?"
            )
        response = self._send(
            "POST",
            self.urls.url("/j_spring_security_check"),
            operation,
            cookies,
            data={**credentials, "_csrf": csrf},
            headers={"Content-Type": FORM_CONTENT_TYPE, "Accept": "text/html"},
        )
        if response.status_code in REDIRECTS:
            location = response.headers.get("location", "")
            if "login_error" in location or location.rstrip("/").endswith("/login"):
                raise self._login_failed(username)
            # Never replay the POST on the redirect (405): GET the target, which
            # carries the CSRF token of the new, authenticated session.
            page = self._send(
                "GET",
                self.urls.same_origin(location),
                operation,
                cookies,
                headers={"Accept": "text/html"},
            )
        elif response.status_code == 200:
            if is_login_page(response.text):
                raise self._login_failed(username, login_error_text(response.text))
            page = response
        else:
            raise HacAuthenticationError(
                f"{operation}: {self.urls.root} answered the login form with "
                f"HTTP {response.status_code}"
            )
        if page.status_code in REDIRECTS or (page.status_code == 200 and is_login_page(page.text)):
            raise self._login_failed(username)
        token = extract_csrf_token(page.text) if page.status_code == 200 else None
        if not token:
            page = self._send(
                "GET", self.urls.url("/"), operation, cookies, headers={"Accept": "text/html"}
            )
            if page.status_code != 200 or is_login_page(page.text):
                raise self._login_failed(username)
            token = extract_csrf_token(page.text)
        session_id = cookies.get(SESSION_COOKIE)
        if not token or not session_id:
            missing = " and ".join(
                name
                for name, value in (("JSESSIONID", session_id), ("CSRF token", token))
                if not value
            )
            raise HacAuthenticationError(f"{operation}: HAC at {self.urls.root} gave no {missing}")
        return session_id, token, route_cookie_string(cookies.get(ROUTE_COOKIE))

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
        if changed:
            self.session_manager.save_session(
                *self._key(), info.session_id, info.csrf_token, info.route_cookie
            )
        else:
            self.session_manager.touch_session(*self._key())

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
                    response = self._send(
                        "POST",
                        self.urls.url("/logout"),
                        "HAC logout",
                        _session_cookies(info),
                        data={"_csrf": info.csrf_token},
                        headers={
                            "Content-Type": FORM_CONTENT_TYPE,
                            "X-CSRF-TOKEN": info.csrf_token,
                        },
                    )
                    logger.debug("HAC logout answered HTTP %d", response.status_code)
                except HacClientError as exc:
                    logger.warning(
                        "HAC logout request failed; forgetting the session anyway: %s", exc
                    )
            if self.session_manager is not None:
                self.session_manager.remove_session(*self._key())
            self.session_info = None

    def close(self) -> None:
        """Close the HTTP connections (the persisted session stays)."""
        self.http_session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- operations ------------------------------------------------------------------

    def execute_groovy(
        self, script: str, commit: bool = False, script_type: str = "groovy"
    ) -> GroovyScriptResult:
        """Run a console script (groovy, beanshell or javascript); commit or roll back."""
        if script_type not in SCRIPT_TYPES:
            raise ValueError(f"script type {script_type!r} is not one of {', '.join(SCRIPT_TYPES)}")
        operation = "Groovy script"
        response = self._call(
            operation,
            "POST",
            "/console/scripting/execute",
            form={
                "script": script,
                "scriptType": script_type,
                "commit": "true" if commit else "false",
            },
            headers={"Content-Type": FORM_CONTENT_TYPE, "Accept": "application/json"},
        )
        body = self._json(response, operation)
        stacktrace = body.get("stacktraceText")
        return GroovyScriptResult(
            output_text=str(body.get("outputText") or ""),
            execution_result=str(body.get("executionResult") or ""),
            stacktrace_text=None if stacktrace is None else str(stacktrace),
            commit_mode=commit,
            execution_time_ms=_int_or_none(body.get("executionTime")),
        )

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
        operation = "SQL query" if raw_sql else "FlexibleSearch query"
        form = {
            "sqlQuery" if raw_sql else "flexibleSearchQuery": query,
            "maxCount": str(max_count),
            "locale": locale,
            "dataSource": data_source,
            "commit": "false",
        }
        if user is not None:
            form["user"] = user
        response = self._call(
            operation,
            "POST",
            "/console/flexsearch/execute",
            form=form,
            headers={"Content-Type": FORM_CONTENT_TYPE, "Accept": "application/json"},
        )
        body = self._json(response, operation)
        rows = [
            [_cell(cell) for cell in row] if isinstance(row, list) else [_cell(row)]
            for row in body.get("resultList") or []
        ]
        count = _int_or_none(body.get("resultCount"))
        return FlexibleSearchResult(
            headers=[str(header) for header in body.get("headers") or []],
            rows=rows,
            result_count=len(rows) if count is None else count,
            execution_time_ms=_int_or_none(body.get("executionTime")),
            exception=_exception_message(body.get("exception")),
        )

    def _impex_form(
        self,
        impex_content: str,
        validation_mode: str,
        enable_code_execution: bool,
        legacy_mode: bool,
        max_threads: int,
    ) -> dict[str, str]:
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, not {max_threads}")
        form = {
            "scriptContent": impex_content,
            "validationEnum": _validation_enum(validation_mode),
            "encoding": "UTF-8",
            "maxThreads": str(max_threads),
            # Spring checkboxes: "_name=on" says the box was on the form; the
            # value itself is only sent when ticked (absent means false).
            "_legacyMode": "on",
            "_enableCodeExecution": "on",
        }
        if legacy_mode:
            form["legacyMode"] = "true"
        if enable_code_execution:
            form["enableCodeExecution"] = "true"
        return form

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
        form = self._impex_form(
            impex_content, validation_mode, enable_code_execution, legacy_mode, max_threads
        )
        response = self._call(
            "Impex import",
            "POST",
            "/console/impex/import",
            form=form,
            csrf_in_form=True,
            headers={"Content-Type": FORM_CONTENT_TYPE, "Accept": "text/html"},
            result_marker='id="impexResult"',
        )
        return parse_impex_import(response.text)

    def validate_impex(
        self,
        impex_content: str,
        validation_mode: str = "import_strict",
        *,
        enable_code_execution: bool = False,
        legacy_mode: bool = False,
        max_threads: int = 1,
    ) -> ImpexResult:
        """Validate Impex without importing it."""
        form = self._impex_form(
            impex_content, validation_mode, enable_code_execution, legacy_mode, max_threads
        )
        response = self._call(
            "Impex validation",
            "POST",
            "/console/impex/import/validate",
            form=form,
            csrf_in_form=True,
            headers={"Content-Type": FORM_CONTENT_TYPE, "Accept": "text/html"},
            result_marker='id="validationResultMsg"',
        )
        return parse_impex_validation(response.text)

    def get_update_data(self) -> UpdateData:
        """What the system update page offers: extensions and their parameters."""
        operation = "update data"
        response = self._call(
            operation, "GET", "/platform/init/data", headers={"Accept": "application/json"}
        )
        body = self._json(response, operation)
        project_datas = []
        for pd in body.get("projectDatas") or []:
            parameters = [
                UpdateParameter(
                    name=str(p.get("name", "")),
                    label=str(p.get("label") or p.get("name", "")),
                    values=dict(p.get("values") or {}),
                    legacy=bool(p.get("legacy", False)),
                    multi_select=bool(p.get("multiSelect", False)),
                    default=p.get("default"),
                )
                for p in pd.get("parameter") or []
            ]
            project_datas.append(
                ProjectData(
                    name=str(pd.get("name", "")),
                    description=pd.get("description"),
                    parameters=parameters,
                )
            )
        return UpdateData(
            is_initializing=bool(body.get("isInitializing", False)), project_datas=project_datas
        )

    def get_pending_patches(self) -> dict[str, list[dict[str, Any]]]:
        """Pending system patches per category (``{"ext": [{hash, name, required, ...}]}``)."""
        operation = "pending patches"
        response = self._call(
            operation,
            "GET",
            "/platform/init/pendingPatches",
            headers={"Accept": "application/json"},
        )
        body = self._json(response, operation)
        return {str(k): list(v) for k, v in body.items() if isinstance(v, list)}

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
                for category, patch_list in self.get_pending_patches().items():
                    hashes = [
                        str(p["hash"]) for p in patch_list if p.get("required") and "hash" in p
                    ]
                    if hashes:
                        pending[category] = hashes
            except HacAuthenticationError:
                raise
            except HacClientError as exc:
                logger.warning("could not read pending patches; updating without them: %s", exc)
        payload = {
            "dropTables": drop_tables,
            "clearHMC": clear_hmc,
            "createEssentialData": create_essential_data,
            "createProjectData": create_project_data,
            "localizeTypes": localize_types,
            "initMethod": "UPDATE",
            "allParameters": parameters,
            "patches": pending,
            "parametersAsStringMap": {
                "initmethod": ["update"],
                **{k: v if isinstance(v, list) else [v] for k, v in parameters.items()},
            },
        }
        operation = "system update"
        response = self._call(
            operation,
            "POST",
            "/platform/init/execute",
            json_body=payload,
            headers={"Content-Type": JSON_CONTENT_TYPE, "Accept": "application/json"},
        )
        body = self._json(response, operation)
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
            headers={"Accept": "application/json"},
        )
        body = self._json(response, operation)
        return UpdateLog(log_html=str(body.get("log") or ""))


__all__ = ["HacClient"]
