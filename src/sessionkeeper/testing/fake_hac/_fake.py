"""``FakeHac``: a real HTTP server on 127.0.0.1 that answers like SAP Commerce HAC.

It follows ``protocol-facts.md``: Spring Security login with session-fixation
protection and XOR-masked CSRF tokens, 405 (2211) or 403 + login page
(legacy) for a dead session on POST, 302 to the login page on GET, an
inactivity timeout driven by an injectable clock, an optional load-balancer
``ROUTE`` cookie with failover, and the console operations (Groovy,
FlexibleSearch, Impex, system update) over small deterministic data.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from sessionkeeper.clock import Clock, SystemClock
from sessionkeeper.testing._server import LoopbackServer
from sessionkeeper.testing.fake_hac._data import HacDatabase
from sessionkeeper.testing.fake_hac._flexsearch import execute_query
from sessionkeeper.testing.fake_hac._groovy import run_script
from sessionkeeper.testing.fake_hac._http import CONTROL_PREFIX, HacHandler, HacRequest, HacResponse
from sessionkeeper.testing.fake_hac._impex import VALIDATION_MODES, ImpexFlags, run_impex
from sessionkeeper.testing.fake_hac._pages import (
    authenticated_page,
    impex_binding_error_body,
    impex_result_body,
    impex_validation_body,
    login_page,
)
from sessionkeeper.testing.fake_hac._sessions import (
    HacSession,
    SessionTable,
    csrf_token_matches,
    mask_csrf_token,
)
from sessionkeeper.testing.fake_hac._update import PENDING_PATCHES, PROJECT_DATAS, InitLog

logger = logging.getLogger(__name__)

Mode = Literal["2211", "legacy"]
SCRIPT_TYPES = frozenset({"groovy", "beanshell", "javascript"})

_PAGES = {
    "/": "Home",
    "/platform/update": "Update",
    "/platform/init": "Initialization",
    "/console/scripting": "Scripting Languages",
    "/console/flexsearch": "FlexibleSearch",
    "/console/impex/import": "Impex Import",
}


@dataclass(frozen=True)
class GroovyRun:
    """One script the fake executed."""

    script: str
    script_type: str
    commit: bool


def _checkbox(form: dict[str, str], name: str) -> bool:
    """Spring checkbox binding: ``name=true`` checks it; ``_name=on`` alone means false."""
    if name in form:
        return form[name].strip().lower() in {"true", "on", "yes", "1"}
    return False


class FakeHac(LoopbackServer):
    """A faithful fake SAP Commerce HAC on loopback, for tests and demos."""

    handler_class = HacHandler

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        clock: Clock | None = None,
        mode: Mode = "2211",
        web_root: str = "/hac",
        route: str | None = None,
        session_timeout: float = 7200.0,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        if mode not in ("2211", "legacy"):
            raise ValueError(f"mode must be '2211' or 'legacy', not {mode!r}")
        self.users: dict[str, str] = dict(users) if users is not None else {"admin": "nimda"}
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.mode: Mode = mode
        root = web_root.strip().rstrip("/")
        self.web_root = root if not root or root.startswith("/") else "/" + root
        self.route = route
        self.latency = latency
        self.sessions = SessionTable(self.clock, session_timeout)
        self.database = HacDatabase()
        self.init_log = InitLog()
        self.groovy_runs: list[GroovyRun] = []
        #: The last requests answered (method, path, lower-cased headers), newest last.
        self.recent_requests: deque[HacRequest] = deque(maxlen=100)
        self.last_impex: ImpexFlags | None = None
        self.update_step = 0.1
        self.synchronous_update = False
        self._logins = 0
        self._state_guard = threading.Lock()

    # ----- public surface -------------------------------------------------

    @property
    def hac_url(self) -> str:
        """``url`` plus the HAC web root."""
        return self.url + self.web_root

    @property
    def session_timeout(self) -> float:
        """Seconds of inactivity after which a session is dead."""
        return self.sessions.timeout

    @session_timeout.setter
    def session_timeout(self, seconds: float) -> None:
        self.sessions.timeout = seconds

    @property
    def total_requests(self) -> int:
        """All requests counted so far."""
        with self._count_guard:
            return sum(self.counts.values())

    @property
    def logins(self) -> int:
        """Successful logins so far."""
        with self._state_guard:
            return self._logins

    def reset_counts(self) -> None:
        """Forget recorded requests and logins."""
        super().reset_counts()
        with self._state_guard:
            self._logins = 0

    def kill_all_sessions(self) -> None:
        """Every existing JSESSIONID becomes dead, as after a server restart."""
        self.sessions.kill_all()

    def failover(self, new_route: str) -> None:
        """Move to node ``new_route``: sessions of the old node die, ROUTE changes."""
        old = self.route
        self.route = new_route
        self.sessions.kill_node(old)
        logger.info("fake HAC failed over from %s to %s", old, new_route)

    def active_sessions(self) -> int:
        """Live logged-in sessions (anonymous login-page sessions are not counted)."""
        return self.sessions.count_authenticated(self.route)

    def stop(self) -> None:
        """Stop serving (cutting open connections) and end a running update."""
        self.init_log.stop()
        super().stop()

    # ----- request plumbing -----------------------------------------------

    def _relative(self, path: str) -> str | None:
        if not self.web_root:
            return path
        if path == self.web_root:
            return ""
        if path.startswith(self.web_root + "/"):
            return path[len(self.web_root) :]
        return None

    def count_request(self, method: str, path: str) -> None:
        """Count one request under ``METHOD path-relative-to-web_root``."""
        relative = self._relative(path)
        self.count(f"{method} {relative or path}")

    def _session_cookie(self, session: HacSession) -> str:
        return f"JSESSIONID={session.session_id}; Path={self.web_root or '/'}; HttpOnly"

    def _new_session(self, request: HacRequest) -> HacSession:
        session = self.sessions.create(self.route)
        request.session = session
        request.new_cookies.append(self._session_cookie(session))
        return session

    def _token(self, request: HacRequest) -> str:
        session = request.session or self._new_session(request)
        return mask_csrf_token(session.csrf_raw)

    def _login_url(self, suffix: str = "") -> str:
        return f"{self.web_root}/login{suffix}"

    def dispatch(self, request: HacRequest) -> HacResponse:
        """Answer one request (the handler has counted it and slept ``latency``)."""
        self.recent_requests.append(request)
        node = self.route
        for session_id in request.cookies.get("JSESSIONID", []):
            request.session = self.sessions.lookup(session_id, node)
            if request.session is not None:
                break
        response = self._route(request)
        response.headers.extend(("Set-Cookie", c) for c in request.new_cookies)
        if node is not None and f".{node}" not in request.cookies.get("ROUTE", []):
            response.headers.append(("Set-Cookie", f"ROUTE=.{node}; Path=/"))
        return response

    def _route(self, request: HacRequest) -> HacResponse:
        relative = self._relative(request.path)
        if relative is None:
            return HacResponse.html("<h1>404 Not Found</h1>", 404)
        if relative == "":
            return HacResponse.redirect(self.web_root + "/")
        method = request.method
        if relative == "/login":
            if method not in ("GET", "HEAD"):
                return self._method_not_allowed()
            error = "login_error" in request.query
            return HacResponse.html(
                login_page(self.web_root, self._token(request), login_error=error)
            )
        if relative == "/j_spring_security_check" and method == "POST":
            return self._login(request)
        if relative == "/initlog/log" and method in ("GET", "HEAD"):
            return HacResponse.json({"log": self.init_log.html()})
        if relative == "/logout":
            return self._logout(request)
        route = self._ROUTES.get((method if method != "HEAD" else "GET", relative))
        if route is None and relative in _PAGES and method in ("GET", "HEAD"):
            route = FakeHac._page
        if method in ("GET", "HEAD"):
            session = request.session
            if session is None or session.user is None:
                if not request.is_xhr:
                    self._save_request(request, relative)
                return HacResponse.redirect(self._login_url())
        else:
            if not self._csrf_ok(request):
                return self._dead_post(request)
            if request.session is None or request.session.user is None:
                return HacResponse.redirect(self._login_url())
        if route is None:
            known = any(path == relative for _, path in self._ROUTES) or relative in _PAGES
            if known:
                return self._method_not_allowed()
            return HacResponse.html("<h1>404 Not Found</h1>", 404)
        return route(self, request)

    def _save_request(self, request: HacRequest, relative: str) -> None:
        session = request.session or self._new_session(request)
        session.saved_request = self.web_root + relative

    def _csrf_ok(self, request: HacRequest) -> bool:
        session = request.session
        if session is None:
            return False
        presented = request.headers.get("x-csrf-token") or request.form().get("_csrf")
        return csrf_token_matches(session.csrf_raw, presented)

    def _method_not_allowed(self) -> HacResponse:
        response = HacResponse.html(
            "<h1>HTTP Status 405 - Request method not supported</h1>", status=405
        )
        response.headers.append(("Allow", "GET"))
        return response

    def _dead_post(self, request: HacRequest) -> HacResponse:
        """A POST with a dead session or a bad CSRF token: 405 (2211) or 403 + login page."""
        if self.mode == "2211":
            # 2211 maps the 403 to the GET-only login page, which refuses the POST.
            return self._method_not_allowed()
        page = login_page(self.web_root, self._token(request), login_error=False)
        return HacResponse.html(page, status=403)

    def _login(self, request: HacRequest) -> HacResponse:
        if not self._csrf_ok(request):
            return self._dead_post(request)
        session = request.session
        assert session is not None  # _csrf_ok guarantees a live session
        form = request.form()
        username = form.get("j_username", "")
        password = form.get("j_password")
        expected = self.users.get(username)
        if expected is None or password is None or password != expected:
            logger.debug("fake HAC: bad credentials for %r", username)
            return HacResponse.redirect(self._login_url("?login_error=1"))
        target = session.saved_request or self.web_root + "/"
        session.saved_request = None
        session.user = username
        self.sessions.change_id(session)
        request.new_cookies.append(self._session_cookie(session))
        with self._state_guard:
            self._logins += 1
        return HacResponse.redirect(target)

    def _logout(self, request: HacRequest) -> HacResponse:
        if request.method == "POST" and not self._csrf_ok(request):
            return self._dead_post(request)
        if request.method not in ("GET", "POST", "HEAD"):
            return self._method_not_allowed()
        if request.session is not None:
            self.sessions.invalidate(request.session.session_id)
            request.session = None
        return HacResponse.redirect(self._login_url("?logout"))

    # ----- operations -----------------------------------------------------

    def _page(self, request: HacRequest) -> HacResponse:
        assert request.session is not None and request.session.user is not None
        relative = self._relative(request.path) or "/"
        title = _PAGES[relative]
        page = authenticated_page(title, request.session.user, self._token(request))
        return HacResponse.html(page)

    def _groovy(self, request: HacRequest) -> HacResponse:
        form = request.form()
        script = form.get("script")
        script_type = form.get("scriptType", "groovy")
        if script is None or script_type not in SCRIPT_TYPES:
            return HacResponse.html("<h1>400 Bad Request</h1>", 400)
        commit = form.get("commit", "false").strip().lower() == "true"
        with self._state_guard:
            self.groovy_runs.append(GroovyRun(script, script_type, commit))
        outcome = run_script(script, self.clock)
        return HacResponse.json(
            {
                "outputText": outcome.output_text,
                "executionResult": outcome.execution_result,
                "stacktraceText": outcome.stacktrace_text,
            }
        )

    def _flexsearch(self, request: HacRequest) -> HacResponse:
        form = request.form()
        try:
            max_count = int(form.get("maxCount", "200") or "200")
        except ValueError:
            return HacResponse.html("<h1>400 Bad Request</h1>", 400)
        answer = execute_query(
            self.database,
            flexible_query=form.get("flexibleSearchQuery"),
            sql_query=form.get("sqlQuery"),
            max_count=max_count,
            data_source=form.get("dataSource") or "master",
        )
        return HacResponse.json(answer)

    def _impex_flags(self, form: dict[str, str]) -> tuple[ImpexFlags | None, str]:
        mode = form.get("validationEnum", "IMPORT_STRICT")
        if mode not in VALIDATION_MODES:
            return None, impex_binding_error_body("validationEnum", mode)
        threads_text = form.get("maxThreads", "1") or "1"
        try:
            max_threads = int(threads_text)
        except ValueError:
            return None, impex_binding_error_body("maxThreads", threads_text)
        flags = ImpexFlags(
            validation_mode=mode,
            encoding=form.get("encoding", "UTF-8"),
            max_threads=max_threads,
            legacy_mode=_checkbox(form, "legacyMode"),
            enable_code_execution=_checkbox(form, "enableCodeExecution"),
        )
        return flags, ""

    def _impex(self, request: HacRequest, *, validate: bool) -> HacResponse:
        assert request.session is not None and request.session.user is not None
        form = request.form()
        flags, body = self._impex_flags(form)
        if flags is not None:
            script = form.get("scriptContent", "")
            problems = run_impex(script, flags, self.database, apply=not validate)
            if validate:
                body = impex_validation_body(problems[0].render() if problems else None)
            else:
                with self._state_guard:
                    self.last_impex = flags
                body = impex_result_body(ok=not problems, unresolved=[p.render() for p in problems])
        page = authenticated_page("Impex Import", request.session.user, self._token(request), body)
        return HacResponse.html(page)

    def _impex_import(self, request: HacRequest) -> HacResponse:
        return self._impex(request, validate=False)

    def _impex_validate(self, request: HacRequest) -> HacResponse:
        return self._impex(request, validate=True)

    def _init_data(self, request: HacRequest) -> HacResponse:
        return HacResponse.json(
            {
                "isInitializing": self.init_log.is_initializing,
                "initInfo": "",
                "tenantID": "master",
                "projectDatas": PROJECT_DATAS,
            }
        )

    def _pending_patches(self, request: HacRequest) -> HacResponse:
        return HacResponse.json(PENDING_PATCHES)

    def _init_execute(self, request: HacRequest) -> HacResponse:
        try:
            payload = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return HacResponse.html("<h1>400 Bad Request</h1>", 400)
        if not isinstance(payload, dict):
            return HacResponse.html("<h1>400 Bad Request</h1>", 400)
        started = self.init_log.start(payload, self.update_step)
        if started and self.synchronous_update:
            self.init_log.wait()
        return HacResponse.json(
            {"success": started, "log": self.init_log.html(), "initUpdateData": payload}
        )

    _ROUTES: dict[tuple[str, str], Callable[[FakeHac, HacRequest], HacResponse]] = {
        ("POST", "/console/scripting/execute"): _groovy,
        ("POST", "/console/flexsearch/execute"): _flexsearch,
        ("POST", "/console/impex/import"): _impex_import,
        ("POST", "/console/impex/import/validate"): _impex_validate,
        ("GET", "/platform/init/data"): _init_data,
        ("GET", "/platform/init/pendingPatches"): _pending_patches,
        ("POST", "/platform/init/execute"): _init_execute,
    }

    # ----- control endpoints (other processes drive the fake through these) --

    def control(self, method: str, path: str, query: dict[str, list[str]]) -> HacResponse:
        """Answer ``/__fake__/...``: kill-sessions, counts, reset-counts, failover, ..."""
        action = path[len(CONTROL_PREFIX) :]
        if method == "GET" and action == "counts":
            with self._count_guard:
                counts = dict(self.counts)
            return HacResponse.json(
                {
                    "counts": counts,
                    "logins": self.logins,
                    "total_requests": sum(counts.values()),
                    "active_sessions": self.active_sessions(),
                }
            )
        if method == "GET" and action == "groovy-runs":
            with self._state_guard:
                runs = [r.__dict__.copy() for r in self.groovy_runs]
            return HacResponse.json({"groovy_runs": runs})
        if method == "POST" and action == "kill-sessions":
            self.kill_all_sessions()
            return HacResponse.json({"ok": True})
        if method == "POST" and action == "reset-counts":
            self.reset_counts()
            return HacResponse.json({"ok": True})
        if method == "POST" and action == "failover":
            route = (query.get("route") or [""])[0]
            if not route:
                return HacResponse.json({"error": "route is required"}, 400)
            self.failover(route)
            return HacResponse.json({"ok": True, "route": route})
        if method == "POST" and action == "latency":
            try:
                self.latency = float((query.get("seconds") or [""])[0])
            except ValueError:
                return HacResponse.json({"error": "seconds must be a number"}, 400)
            return HacResponse.json({"ok": True, "latency": self.latency})
        return HacResponse.json({"error": f"unknown control {quote(action)}"}, 404)
