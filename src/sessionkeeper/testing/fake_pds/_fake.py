"""``FakePds``: an ATProto PDS on 127.0.0.1 that behaves like the reference one."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sessionkeeper.clock import Clock, ManualClock, SystemClock
from sessionkeeper.testing._server import LoopbackServer
from sessionkeeper.testing.fake_pds._accounts import (
    Account,
    AccountBook,
    new_plc_did,
    new_sign_in_code,
)
from sessionkeeper.testing.fake_pds._errors import (
    XrpcError,
    account_takedown,
    auth_missing,
    expired_token,
    invalid_request,
    invalid_token,
)
from sessionkeeper.testing.fake_pds._http import (
    DROP,
    Drop,
    HttpRequest,
    HttpResponse,
    XrpcHandler,
    json_response,
)
from sessionkeeper.testing.fake_pds._ledger import RefreshLedger
from sessionkeeper.testing.fake_pds._ratelimit import FixedWindowLimiter, Policy
from sessionkeeper.testing.fake_pds._repo import RecordStore
from sessionkeeper.testing.fake_pds._tokens import (
    SCOPE_ACCESS,
    SCOPE_TAKENDOWN,
    TokenIssuer,
    TokenPair,
)

logger = logging.getLogger(__name__)

FaultMode = Literal["500", "502", "drop", "429"]
"""The faults :meth:`FakePds.set_fault` can inject."""

FAULT_MODES: frozenset[str] = frozenset({"500", "502", "drop", "429"})

CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
GET_SESSION = "com.atproto.server.getSession"
DELETE_SESSION = "com.atproto.server.deleteSession"
DESCRIBE_SERVER = "com.atproto.server.describeServer"
RESOLVE_HANDLE = "com.atproto.identity.resolveHandle"
CREATE_RECORD = "com.atproto.repo.createRecord"
LIST_RECORDS = "com.atproto.repo.listRecords"

_XRPC_PREFIX = "/xrpc/"
_CONTROL_PREFIX = "/__fake__/"
_SESSION_SCOPES = frozenset({SCOPE_ACCESS, SCOPE_TAKENDOWN})
_WRITE_SCOPES = frozenset({SCOPE_ACCESS})


@dataclass
class _Fault:
    mode: FaultMode
    remaining: int | None
    nsids: frozenset[str] | None


@dataclass(frozen=True)
class _Method:
    kind: Literal["query", "procedure"]
    run: Callable[[HttpRequest], HttpResponse]


class FakePds(LoopbackServer):
    """A real HTTP server on 127.0.0.1 that answers XRPC like the reference ATProto PDS.

    Sessions (createSession, refreshSession with rotation and grace period,
    getSession, deleteSession), optional createSession rate limits and login
    delay, a minimal repository (createRecord, listRecords), injectable faults,
    and per-NSID counters. All token times come from ``clock``, so expiry and
    grace can be tested with a :class:`~sessionkeeper.clock.ManualClock`.
    """

    handler_class = XrpcHandler

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        access_lifetime: float = 7200.0,
        refresh_lifetime: float = 90 * 86400.0,
        grace_period: float = 7200.0,
        create_session_floor: float = 0.0,
        rate_limits: bool = False,
        latency: float = 0.0,
        service_did: str = "did:web:localhost",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.grace_period = grace_period
        self.create_session_floor = create_session_floor
        self.latency = latency
        self.service_did = service_did
        self.jwt_secret: bytes = secrets.token_bytes(32)
        self.errors: Counter[str] = Counter()
        # One lock guards accounts, the refresh ledger, records and the fault:
        # a refresh rotation reads and writes the ledger under it, so two
        # concurrent uses of one refresh token are judged one after the other.
        self._state = threading.RLock()
        self._accounts = AccountBook()
        self._ledger = RefreshLedger(grace_period)
        self._records = RecordStore()
        self._issuer = TokenIssuer(
            secret=self.jwt_secret,
            service_did=service_did,
            clock=self.clock,
            access_lifetime=access_lifetime,
            refresh_lifetime=refresh_lifetime,
        )
        self._limiter = (
            FixedWindowLimiter([Policy(30, 300.0), Policy(300, 86400.0)], self.clock)
            if rate_limits
            else None
        )
        self._fault: _Fault | None = None
        self._connections: set[socket.socket] = set()
        self._connections_guard = threading.Lock()
        self._methods: dict[str, _Method] = {
            CREATE_SESSION: _Method("procedure", self._create_session),
            REFRESH_SESSION: _Method("procedure", self._refresh_session),
            GET_SESSION: _Method("query", self._get_session),
            DELETE_SESSION: _Method("procedure", self._delete_session),
            DESCRIBE_SERVER: _Method("query", self._describe_server),
            RESOLVE_HANDLE: _Method("query", self._resolve_handle),
            CREATE_RECORD: _Method("procedure", self._create_record),
            LIST_RECORDS: _Method("query", self._list_records),
        }

    # ----------------------------------------------------------------- public API

    def create_account(
        self,
        handle: str,
        password: str,
        *,
        email: str | None = None,
        did: str | None = None,
        email_auth_factor: bool = False,
    ) -> str:
        """Add an account and return its DID (a new ``did:plc:`` unless ``did`` is given).

        With ``email_auth_factor`` a login needs the code of :meth:`sign_in_code`.
        """
        if did is not None and not did.startswith("did:"):
            raise ValueError("a DID starts with 'did:'")
        account = Account(
            did=did or new_plc_did(),
            handle=handle,
            password=password,
            email=email,
            email_auth_factor=email_auth_factor,
        )
        with self._state:
            self._accounts.add(account)
        logger.debug("fake PDS account %s created as %s", handle, account.did)
        return account.did

    def takedown(self, did: str) -> None:
        """Take the account down: createSession and refreshSession answer 401 AccountTakedown."""
        with self._state:
            self._accounts.require(did).takendown = True

    def revoke_all(self, did: str) -> None:
        """Revoke every refresh token of the account now (access tokens live on until exp)."""
        with self._state:
            self._accounts.require(did)
            self._ledger.revoke_did(did)

    def sign_in_code(self, did: str) -> str | None:
        """The code the last ``AuthFactorTokenRequired`` answer would have e-mailed."""
        with self._state:
            return self._accounts.require(did).sign_in_code

    def live_refresh_tokens(self, did: str) -> int:
        """How many refresh tokens of the account are not yet revoked."""
        with self._state:
            return self._ledger.live_count(did)

    def set_fault(
        self,
        mode: FaultMode | None,
        *,
        count: int | None = None,
        nsids: set[str] | None = None,
    ) -> None:
        """Fail the next ``count`` XRPC calls (``None``: until cleared) to ``nsids`` (or all).

        ``"500"``/``"502"`` answer that status with ``InternalServerError``,
        ``"429"`` answers ``RateLimitExceeded`` with ``Retry-After: 2``, and
        ``"drop"`` closes the connection without any answer. ``None`` clears.
        """
        if mode is not None and mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; use one of {sorted(FAULT_MODES)}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None for 'until cleared')")
        with self._state:
            if mode is None:
                self._fault = None
            else:
                self._fault = _Fault(
                    mode=mode,
                    remaining=count,
                    nsids=frozenset(nsids) if nsids is not None else None,
                )

    def reset_counts(self) -> None:
        """Forget every recorded call and error."""
        with self._count_guard:
            self.counts.clear()
            self.errors.clear()

    def stop(self) -> None:
        """Stop serving and cut open keep-alive connections, like a server going away."""
        super().stop()
        with self._connections_guard:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                # Already closed by the client or the handler: nothing left to cut.
                logger.debug("connection was already closed")

    # --------------------------------------------------------------- HTTP entry

    def track_connection(self, conn: socket.socket) -> None:
        """Remember an open client connection (called by the handler)."""
        with self._connections_guard:
            self._connections.add(conn)

    def untrack_connection(self, conn: socket.socket) -> None:
        """Forget a closed client connection (called by the handler)."""
        with self._connections_guard:
            self._connections.discard(conn)

    def handle_http(self, request: HttpRequest) -> HttpResponse | Drop:
        """Answer one HTTP request (XRPC, control endpoint, or 404)."""
        if request.path.startswith(_XRPC_PREFIX):
            return self._handle_xrpc(request)
        if request.path.startswith(_CONTROL_PREFIX):
            try:
                return self._handle_control(request)
            except XrpcError as exc:
                return json_response(exc.status, exc.body(), error=exc.error)
        return json_response(404, {"error": "NotFound", "message": "Not Found"}, error="NotFound")

    def _record_error(self, nsid: str, name: str) -> None:
        with self._count_guard:
            self.errors[nsid] += 1
            self.errors[f"{nsid}:{name}"] += 1

    def _handle_xrpc(self, request: HttpRequest) -> HttpResponse | Drop:
        nsid = request.path[len(_XRPC_PREFIX) :]
        self.count(nsid)
        latency = self.latency
        if latency > 0:
            time.sleep(latency)
        fault = self._take_fault(nsid)
        if fault is not None:
            return self._fault_answer(nsid, fault)
        try:
            response = self._route(nsid, request)
        except XrpcError as exc:
            response = json_response(exc.status, exc.body(), headers=exc.headers, error=exc.error)
        except Exception:
            # A bug in the fake must still answer like a server, never with a traceback.
            logger.exception("fake PDS failed on %s", nsid)
            response = json_response(
                500,
                {"error": "InternalServerError", "message": "Internal Server Error"},
                error="InternalServerError",
            )
        if response.status >= 400:
            self._record_error(nsid, response.error or str(response.status))
        return response

    def _take_fault(self, nsid: str) -> FaultMode | None:
        with self._state:
            fault = self._fault
            if fault is None or (fault.nsids is not None and nsid not in fault.nsids):
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._fault = None
            return fault.mode

    def _fault_answer(self, nsid: str, mode: FaultMode) -> HttpResponse | Drop:
        if mode == "drop":
            self._record_error(nsid, "ConnectionDropped")
            return DROP
        if mode == "429":
            self._record_error(nsid, "RateLimitExceeded")
            return json_response(
                429,
                {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                headers={"Retry-After": "2"},
                error="RateLimitExceeded",
            )
        self._record_error(nsid, "InternalServerError")
        return json_response(
            int(mode),
            {"error": "InternalServerError", "message": "Internal Server Error"},
            error="InternalServerError",
        )

    def _route(self, nsid: str, request: HttpRequest) -> HttpResponse:
        if nsid == "_health":
            return json_response(200, {"version": "fake"})
        method = self._methods.get(nsid)
        if method is None:
            raise XrpcError(501, "MethodNotImplemented", "Method Not Implemented")
        expected = "GET" if method.kind == "query" else "POST"
        if request.method != expected:
            raise invalid_request(f"Incorrect HTTP method ({request.method}) expected {expected}")
        return method.run(request)

    # ------------------------------------------------------------ XRPC methods

    def _create_session(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        body = _json_input(request)
        identifier = _require_str(body, "identifier")
        password = _require_str(body, "password")
        auth_factor = _optional_str(body, "authFactorToken")
        allow_takendown = body.get("allowTakendown", False)
        if not isinstance(allow_takendown, bool):
            raise invalid_request("Input/allowTakendown must be a boolean")
        headers: dict[str, str] = {}
        if self._limiter is not None:
            # Limits come before the handler (and its padded delay), as in the reference.
            decision = self._limiter.consume(identifier.strip().lower())
            headers = decision.headers()
            if not decision.allowed:
                raise XrpcError(429, "RateLimitExceeded", "Rate Limit Exceeded", headers)
        try:
            response = self._login(identifier, password, auth_factor, allow_takendown)
        except XrpcError as exc:
            exc.headers.update(headers)
            raise
        finally:
            # Every answer, right or wrong password, takes at least the floor, so
            # timing tells an attacker nothing (the reference pads to 350 ms).
            remaining = self.create_session_floor - (time.monotonic() - started)
            if remaining > 0:
                time.sleep(remaining)
        response.headers.update(headers)
        return response

    def _login(
        self, identifier: str, password: str, auth_factor: str | None, allow_takendown: bool
    ) -> HttpResponse:
        with self._state:
            account = self._accounts.find(identifier)
            if account is None or not account.password_matches(password):
                raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
            if account.takendown and not allow_takendown:
                raise account_takedown()
            if account.email_auth_factor:
                if not auth_factor:
                    account.sign_in_code = new_sign_in_code()
                    raise XrpcError(
                        401,
                        "AuthFactorTokenRequired",
                        "A sign in code has been sent to your email address",
                    )
                if account.sign_in_code is None or not secrets.compare_digest(
                    auth_factor.strip().upper(), account.sign_in_code
                ):
                    raise invalid_token("Token is invalid")
                account.sign_in_code = None
            scope = SCOPE_TAKENDOWN if account.takendown else SCOPE_ACCESS
            pair = self._issuer.issue(account.did, scope=scope)
            # A login starts a new rotation family, named after its first token.
            self._ledger.add(pair.jti, account.did, family=pair.jti)
            return self._session_answer(account, pair)

    def _session_answer(self, account: Account, pair: TokenPair) -> HttpResponse:
        payload: dict[str, Any] = {"accessJwt": pair.access_jwt, "refreshJwt": pair.refresh_jwt}
        payload.update(account.session_view(self.url))
        return json_response(200, payload)

    def _refresh_session(self, request: HttpRequest) -> HttpResponse:
        _no_input(request)
        claims = self._issuer.verify_refresh(_bearer(request))
        with self._state:
            account = self._account_of(claims.did)
            if account.takendown:
                raise account_takedown()
            next_jti = self._ledger.rotate(claims.jti, self.clock.time())
            if next_jti is None:
                raise expired_token("Token has been revoked")
            pair = self._issuer.issue(account.did, jti=next_jti)
            return self._session_answer(account, pair)

    def _get_session(self, request: HttpRequest) -> HttpResponse:
        claims = self._issuer.verify_access(_bearer(request), scopes=_SESSION_SCOPES)
        with self._state:
            account = self._account_of(claims.did)
            return json_response(200, account.session_view(self.url))

    def _delete_session(self, request: HttpRequest) -> HttpResponse:
        _no_input(request)
        claims = self._issuer.verify_refresh(_bearer(request))
        with self._state:
            self._ledger.revoke_family(claims.jti)
        return HttpResponse(status=200)

    def _describe_server(self, request: HttpRequest) -> HttpResponse:
        return json_response(
            200,
            {
                "did": self.service_did,
                "availableUserDomains": [".test"],
                "inviteCodeRequired": False,
                "phoneVerificationRequired": False,
                "links": {},
                "contact": {},
            },
        )

    def _resolve_handle(self, request: HttpRequest) -> HttpResponse:
        handle = _require_param(request, "handle")
        with self._state:
            account = self._accounts.find(handle)
            if account is None or handle.startswith("did:") or "@" in handle:
                raise invalid_request("Unable to resolve handle")
            return json_response(200, {"did": account.did})

    def _create_record(self, request: HttpRequest) -> HttpResponse:
        claims = self._issuer.verify_access(_bearer(request), scopes=_WRITE_SCOPES)
        body = _json_input(request)
        repo = _require_str(body, "repo")
        collection = _require_str(body, "collection")
        rkey = _optional_str(body, "rkey")
        record = body.get("record")
        if not isinstance(record, dict):
            raise invalid_request('Input must have the property "record"')
        record_type = record.setdefault("$type", collection)
        if record_type != collection:
            raise invalid_request(f"Invalid $type: expected {collection}, got {record_type}")
        with self._state:
            account = self._accounts.find(repo)
            if account is None:
                raise invalid_request(f"Could not find repo: {repo}")
            if account.did != claims.did:
                raise XrpcError(401, "AuthenticationRequired", "Authentication Required")
            if account.takendown:
                raise account_takedown()
            stored = self._records.create(
                account.did, collection, record, rkey=rkey, now=self.clock.time()
            )
            if stored is None:
                raise invalid_request(f"Record already exists: {collection}/{rkey}")
        return json_response(
            200, {"uri": stored.uri, "cid": stored.cid, "validationStatus": "unknown"}
        )

    def _list_records(self, request: HttpRequest) -> HttpResponse:
        repo = _require_param(request, "repo")
        collection = _require_param(request, "collection")
        limit = _int_param(request, "limit", default=50, low=1, high=100)
        reverse = _bool_param(request, "reverse")
        cursor = request.param("cursor")
        with self._state:
            account = self._accounts.find(repo)
            if account is None:
                raise invalid_request(f"Could not find repo: {repo}")
            page, next_cursor = self._records.list(
                account.did, collection, limit=limit, cursor=cursor, reverse=reverse
            )
            payload: dict[str, Any] = {"records": [stored.view() for stored in page]}
        if next_cursor is not None:
            payload["cursor"] = next_cursor
        return json_response(200, payload)

    def _account_of(self, did: str) -> Account:
        account = self._accounts.get(did)
        if account is None:
            raise invalid_request(f"Could not find user info for account: {did}")
        return account

    # ---------------------------------------------------------- control endpoints

    def _handle_control(self, request: HttpRequest) -> HttpResponse:
        action = request.path[len(_CONTROL_PREFIX) :]
        if action == "counts":
            _control_method(request, "GET")
            with self._count_guard:
                payload = {"counts": dict(self.counts), "errors": dict(self.errors)}
            return json_response(200, payload)
        _control_method(request, "POST")
        if action == "reset-counts":
            self.reset_counts()
            return json_response(200, {"ok": True})
        if action == "fault":
            return self._control_fault(request)
        if action in ("takedown", "revoke-all"):
            did = _require_param(request, "did")
            try:
                (self.takedown if action == "takedown" else self.revoke_all)(did)
            except KeyError:
                raise invalid_request(f"no account with DID {did}") from None
            return json_response(200, {"ok": True})
        if action == "advance":
            seconds = _float_param(request, "seconds")
            if not isinstance(self.clock, ManualClock):
                raise invalid_request("the fake's clock is not a ManualClock")
            self.clock.advance(seconds)
            return json_response(200, {"now": self.clock.time()})
        if action == "latency":
            self.latency = _float_param(request, "seconds")
            return json_response(200, {"latency": self.latency})
        if action == "accounts":
            try:
                did = self.create_account(
                    _require_param(request, "handle"),
                    _require_param(request, "password"),
                    email=request.param("email"),
                    did=request.param("did"),
                )
            except ValueError as exc:
                raise invalid_request(str(exc)) from None
            return json_response(200, {"did": did})
        raise XrpcError(404, "NotFound", f"no control endpoint {action!r}")

    def _control_fault(self, request: HttpRequest) -> HttpResponse:
        mode = _require_param(request, "mode")
        raw_count = request.param("count")
        raw_nsids = request.param("nsids")
        count = int(raw_count) if raw_count and raw_count.isdigit() else None
        if raw_count and count is None:
            raise invalid_request("count must be a positive integer")
        nsids = {n for n in raw_nsids.split(",") if n} if raw_nsids else None
        try:
            if mode in ("none", "clear", ""):
                self.set_fault(None)
            elif mode in FAULT_MODES:
                self.set_fault(mode, count=count, nsids=nsids)  # type: ignore[arg-type]
            else:
                raise ValueError(f"unknown fault mode {mode!r}")
        except ValueError as exc:
            raise invalid_request(str(exc)) from None
        return json_response(200, {"mode": mode, "count": count})


# ---------------------------------------------------------------- input helpers


def _json_input(request: HttpRequest) -> dict[str, Any]:
    if not request.body:
        raise invalid_request("Request encoding (Content-Type) required but not provided")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise invalid_request(f"Wrong request encoding (Content-Type): {content_type}")
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise invalid_request("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid_request("Input must be an object")
    return body


def _no_input(request: HttpRequest) -> None:
    if request.body:
        raise invalid_request("A request body was provided when none was expected")


def _require_str(body: dict[str, Any], key: str) -> str:
    if key not in body:
        raise invalid_request(f'Input must have the property "{key}"')
    value = body[key]
    if not isinstance(value, str):
        raise invalid_request(f"Input/{key} must be a string")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid_request(f"Input/{key} must be a string")
    return value


def _require_param(request: HttpRequest, name: str) -> str:
    value = request.param(name)
    if value is None:
        raise invalid_request(f'Params must have the property "{name}"')
    return value


def _int_param(request: HttpRequest, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_request(f"{name} must be an integer") from None
    if value < low:
        raise invalid_request(f"{name} can not be less than {low}")
    if value > high:
        raise invalid_request(f"{name} can not be greater than {high}")
    return value


def _bool_param(request: HttpRequest, name: str) -> bool:
    raw = request.param(name)
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise invalid_request(f"{name} must be a boolean")


def _float_param(request: HttpRequest, name: str) -> float:
    raw = _require_param(request, name)
    try:
        return float(raw)
    except ValueError:
        raise invalid_request(f"{name} must be a number") from None


def _bearer(request: HttpRequest) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise auth_missing()
    return token.strip()


def _control_method(request: HttpRequest, expected: str) -> None:
    if request.method != expected:
        raise XrpcError(405, "MethodNotAllowed", f"use {expected} for this control endpoint")
