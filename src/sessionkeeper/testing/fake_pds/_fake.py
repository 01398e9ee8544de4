"""``FakePds``: an ATProto PDS on 127.0.0.1 that behaves like the reference one."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sessionkeeper.clock import Clock, SystemClock
from sessionkeeper.testing._server import LoopbackServer
from sessionkeeper.testing.fake_pds._accounts import (
    Account,
    AccountBook,
    new_app_password,
    new_plc_did,
    new_sign_in_code,
)
from sessionkeeper.testing.fake_pds._control import (
    CONTROL_PREFIX,
    FAULT_MODES,
    FaultMode,
    handle_control,
)
from sessionkeeper.testing.fake_pds._errors import (
    XrpcError,
    account_takedown,
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
from sessionkeeper.testing.fake_pds._inputs import (
    bearer,
    bool_param,
    int_param,
    json_input,
    no_input,
    optional_bool,
    optional_str,
    require_object,
    require_param,
    require_str,
)
from sessionkeeper.testing.fake_pds._ledger import RefreshLedger
from sessionkeeper.testing.fake_pds._ratelimit import FixedWindowLimiter, Policy
from sessionkeeper.testing.fake_pds._repo import RecordStore, blob_cid
from sessionkeeper.testing.fake_pds._tokens import (
    SCOPE_ACCESS,
    SCOPE_APP_PASS,
    SCOPE_APP_PASS_PRIVILEGED,
    SCOPE_TAKENDOWN,
    TokenIssuer,
    TokenPair,
)

logger = logging.getLogger(__name__)


CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
GET_SESSION = "com.atproto.server.getSession"
DELETE_SESSION = "com.atproto.server.deleteSession"
DESCRIBE_SERVER = "com.atproto.server.describeServer"
RESOLVE_HANDLE = "com.atproto.identity.resolveHandle"
CREATE_RECORD = "com.atproto.repo.createRecord"
LIST_RECORDS = "com.atproto.repo.listRecords"
GET_RECORD = "com.atproto.repo.getRecord"
DELETE_RECORD = "com.atproto.repo.deleteRecord"
UPLOAD_BLOB = "com.atproto.repo.uploadBlob"
GET_PROFILE = "app.bsky.actor.getProfile"
POST_COLLECTION = "app.bsky.feed.post"

_XRPC_PREFIX = "/xrpc/"
# Sessions of the account password and of (privileged) app passwords call the same methods.
_SESSION_SCOPES = frozenset({SCOPE_ACCESS, SCOPE_APP_PASS, SCOPE_APP_PASS_PRIVILEGED})


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

    Sessions (createSession with the account or an app password, refreshSession
    with rotation and grace period, getSession, deleteSession), optional
    createSession rate limits and login delay, a minimal repository
    (createRecord, getRecord, listRecords, deleteRecord, uploadBlob), the
    profile a bot client reads after login (app.bsky.actor.getProfile),
    injectable faults, and per-NSID counters. All token times come from ``clock``, so expiry and
    grace can be tested with a [`ManualClock`][].
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
        self._blobs: dict[tuple[str, str], tuple[str, bytes]] = {}
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
        self._methods: dict[str, _Method] = {
            CREATE_SESSION: _Method("procedure", self._create_session),
            REFRESH_SESSION: _Method("procedure", self._refresh_session),
            GET_SESSION: _Method("query", self._get_session),
            DELETE_SESSION: _Method("procedure", self._delete_session),
            DESCRIBE_SERVER: _Method("query", self._describe_server),
            RESOLVE_HANDLE: _Method("query", self._resolve_handle),
            CREATE_RECORD: _Method("procedure", self._create_record),
            LIST_RECORDS: _Method("query", self._list_records),
            GET_RECORD: _Method("query", self._get_record),
            DELETE_RECORD: _Method("procedure", self._delete_record),
            UPLOAD_BLOB: _Method("procedure", self._upload_blob),
            GET_PROFILE: _Method("query", self._get_profile),
        }

    # ----------------------------------------------------------------- public API

    @property
    def grace_period(self) -> float:
        """Seconds a used refresh token may be reused (0: strictly single use)."""
        return self._ledger.grace_period

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

        With ``email_auth_factor`` a login needs the code of [`sign_in_code`][].
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

    def create_app_password(self, did: str, name: str, *, privileged: bool = False) -> str:
        """Add an app password to the account and return it (``xxxx-xxxx-xxxx-xxxx``).

        A login with it gets an access token of scope ``com.atproto.appPass``
        (``com.atproto.appPassPrivileged`` when ``privileged``), as the reference
        issues, and skips the e-mail sign-in code like the reference does.
        """
        if not name.strip():
            raise ValueError("an app password needs a name")
        password = new_app_password()
        with self._state:
            self._accounts.require(did).app_passwords[password] = privileged
        return password

    def blob(self, did: str, cid: str) -> tuple[str, bytes] | None:
        """The ``(mimeType, bytes)`` of a blob the account uploaded, if any."""
        with self._state:
            return self._blobs.get((did, cid))

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

    def counters(self) -> dict[str, dict[str, int]]:
        """A consistent copy of both counters: ``{"counts": {...}, "errors": {...}}``."""
        with self._count_guard:
            return {"counts": dict(self.counts), "errors": dict(self.errors)}

    def reset_counts(self) -> None:
        """Forget every recorded call and error."""
        with self._count_guard:
            self.counts.clear()
            self.errors.clear()

    # --------------------------------------------------------------- HTTP entry

    def handle_http(self, request: HttpRequest) -> HttpResponse | Drop:
        """Answer one HTTP request (XRPC, control endpoint, or 404)."""
        if request.path.startswith(_XRPC_PREFIX):
            return self._handle_xrpc(request)
        if request.path.startswith(CONTROL_PREFIX):
            try:
                return handle_control(self, request)
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
        if request.method not in ("GET", "POST"):
            raise invalid_request("XRPC requests only supports GET and POST")
        expected = "GET" if method.kind == "query" else "POST"
        if request.method != expected:
            raise invalid_request(f"Incorrect HTTP method ({request.method}) expected {expected}")
        return method.run(request)

    # ------------------------------------------------------------ XRPC methods

    def _create_session(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        body = json_input(request)
        identifier = require_str(body, "identifier")
        password = require_str(body, "password")
        auth_factor = optional_str(body, "authFactorToken")
        allow_takendown = optional_bool(body, "allowTakendown")
        headers: dict[str, str] = {}
        if self._limiter is not None:
            # Limits come before the handler (and its padded delay), as in the reference,
            # which keys them by the identifier exactly as sent: "Alice.test" and the
            # account's email each have a budget of their own.
            decision = self._limiter.consume(identifier)
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
            if account is None:
                raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
            privileged = None
            if not account.password_matches(password):
                privileged = account.app_password_privileged(password)
                if privileged is None:
                    raise XrpcError(401, "AuthenticationRequired", "Invalid identifier or password")
            if account.takendown and not allow_takendown:
                raise account_takedown()
            if account.email_auth_factor and privileged is None:
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
            if account.takendown:
                scope = SCOPE_TAKENDOWN
            elif privileged is None:
                scope = SCOPE_ACCESS
            else:
                scope = SCOPE_APP_PASS_PRIVILEGED if privileged else SCOPE_APP_PASS
            pair = self._issuer.issue(account.did, scope=scope)
            # A login starts a new rotation family, named after its first token; its
            # refreshes keep the login's scope (an app password stays an app password).
            self._ledger.add(pair.jti, account.did, family=pair.jti, scope=scope)
            return self._session_answer(account, pair)

    def _session_answer(self, account: Account, pair: TokenPair) -> HttpResponse:
        payload: dict[str, Any] = {"accessJwt": pair.access_jwt, "refreshJwt": pair.refresh_jwt}
        payload.update(account.session_view(self.url))
        return json_response(200, payload)

    def _refresh_session(self, request: HttpRequest) -> HttpResponse:
        no_input(request)
        claims = self._issuer.verify_refresh(bearer(request))
        with self._state:
            account = self._account_of(claims.did)
            if account.takendown:
                raise account_takedown()
            next_jti = self._ledger.rotate(claims.jti, self.clock.time())
            if next_jti is None:
                raise expired_token("Token has been revoked")
            pair = self._issuer.issue(account.did, jti=next_jti, scope=self._ledger.scope(next_jti))
            return self._session_answer(account, pair)

    def _get_session(self, request: HttpRequest) -> HttpResponse:
        claims = self._issuer.verify_access(bearer(request), scopes=_SESSION_SCOPES)
        with self._state:
            account = self._account_of(claims.did)
            if account.takendown:
                # The reference no longer finds a taken-down account for getSession.
                raise invalid_request(f"Could not find user info for account: {account.did}")
            return json_response(200, account.session_view(self.url))

    def _delete_session(self, request: HttpRequest) -> HttpResponse:
        no_input(request)
        claims = self._issuer.verify_refresh(bearer(request))
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
                "blobUploadLimit": 5 * 1024 * 1024,
                "links": {},
                "contact": {},
            },
        )

    def _resolve_handle(self, request: HttpRequest) -> HttpResponse:
        handle = require_param(request, "handle")
        with self._state:
            account = self._accounts.find(handle)
            if account is None or handle.startswith("did:") or "@" in handle:
                raise XrpcError(400, "HandleNotFound", "Unable to resolve handle")
            return json_response(200, {"did": account.did})

    def _writer(self, request: HttpRequest) -> Account:
        """The account whose access token authorises this write."""
        claims = self._issuer.verify_access(bearer(request), scopes=_SESSION_SCOPES)
        with self._state:
            writer = self._account_of(claims.did)
            if writer.takendown:
                raise account_takedown()
            return writer

    def _own_repo(self, repo: str, writer: Account) -> Account:
        """The account of ``repo``, which must be the writer's (call under the state lock)."""
        account = self._accounts.find(repo)
        if account is None:
            raise XrpcError(403, "AccountNotFound", "Account not found")
        if account.did != writer.did:
            raise XrpcError(401, "AuthenticationRequired", "Authentication Required")
        return account

    def _create_record(self, request: HttpRequest) -> HttpResponse:
        writer = self._writer(request)
        body = json_input(request)
        repo = require_str(body, "repo")
        collection = require_str(body, "collection")
        rkey = optional_str(body, "rkey")
        record = dict(require_object(body, "record"))
        record_type = record.setdefault("$type", collection)
        if record_type != collection:
            raise invalid_request(f"Invalid $type: expected {collection}, got {record_type}")
        with self._state:
            account = self._own_repo(repo, writer)
            stored = self._records.create(
                account.did, collection, record, rkey=rkey, now=self.clock.time()
            )
            if stored is None:
                raise invalid_request(f"Record already exists: {collection}/{rkey}")
        return json_response(
            200,
            {
                "uri": stored.uri,
                "cid": stored.cid,
                "commit": {"cid": stored.commit_cid, "rev": stored.rev},
                # The fake does not validate records against their lexicon.
                "validationStatus": "unknown",
            },
        )

    def _list_records(self, request: HttpRequest) -> HttpResponse:
        repo = require_param(request, "repo")
        collection = require_param(request, "collection")
        limit = int_param(request, "limit", default=50, low=1, high=100)
        reverse = bool_param(request, "reverse")
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

    def _get_record(self, request: HttpRequest) -> HttpResponse:
        repo = require_param(request, "repo")
        collection = require_param(request, "collection")
        rkey = require_param(request, "rkey")
        wanted_cid = request.param("cid")
        with self._state:
            account = self._accounts.find(repo)
            if account is None:
                raise invalid_request(f"Could not find repo: {repo}")
            stored = self._records.get(account.did, collection, rkey)
        if stored is None or (wanted_cid is not None and stored.cid != wanted_cid):
            uri = f"at://{account.did}/{collection}/{rkey}"
            raise XrpcError(400, "RecordNotFound", f"Could not locate record: {uri}")
        return json_response(200, stored.view())

    def _delete_record(self, request: HttpRequest) -> HttpResponse:
        writer = self._writer(request)
        body = json_input(request)
        repo = require_str(body, "repo")
        collection = require_str(body, "collection")
        rkey = require_str(body, "rkey")
        with self._state:
            account = self._own_repo(repo, writer)
            existed = self._records.delete(account.did, collection, rkey)
            rev = self._records.next_tid(self.clock.time())
        if not existed:
            # The reference answers a delete of a missing record with no commit.
            return json_response(200, {})
        commit = {"cid": blob_cid(f"{account.did}:{rev}".encode()), "rev": rev}
        return json_response(200, {"commit": commit})

    def _upload_blob(self, request: HttpRequest) -> HttpResponse:
        writer = self._writer(request)
        mime = request.headers.get("content-type", "").split(";", 1)[0].strip()
        if not mime:
            raise invalid_request("Missing content-type")
        cid = blob_cid(request.body)
        with self._state:
            self._blobs[(writer.did, cid)] = (mime, request.body)
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": mime, "size": len(request.body)}
        return json_response(200, {"blob": blob})

    def _get_profile(self, request: HttpRequest) -> HttpResponse:
        # The PDS checks the caller's token before it proxies to the app view.
        self._issuer.verify_access(bearer(request), scopes=_SESSION_SCOPES)
        actor = require_param(request, "actor")
        with self._state:
            account = self._accounts.find(actor)
            if account is None or "@" in actor:
                raise invalid_request("Profile not found")
            posts = self._records.count(account.did, POST_COLLECTION)
        profile = {
            "did": account.did,
            "handle": account.handle,
            "displayName": account.handle.split(".", 1)[0],
            "followersCount": 0,
            "followsCount": 0,
            "postsCount": posts,
        }
        return json_response(200, profile)

    def _account_of(self, did: str) -> Account:
        account = self._accounts.get(did)
        if account is None:
            raise invalid_request(f"Could not find user info for account: {did}")
        return account
