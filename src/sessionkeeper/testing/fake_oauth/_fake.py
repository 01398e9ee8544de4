"""FakeOAuth: an ATProto authorization server, PDS, PLC directory and handle resolver in one.

A real HTTP server on 127.0.0.1 that behaves like the reference PDS's own
authorization server where a client can tell: metadata documents, PAR
(PKCE S256 required), an authorization page that consents at once (or
declines, with ``consent = "deny"``), the code exchange, single-use rotating
refresh tokens, revocation that ends the whole session, DPoP proofs with
nonces and replay detection, and ``private_key_jwt`` client assertions for
registered web clients. Resource calls (``/xrpc/*``) need the DPoP-bound
access token; ``createRecord`` and ``listRecords`` keep the account's records
(so an app's posts show when it lists them), every other call answers the
account's ``did`` and ``handle``. Counters (``counts``) say what the server saw.
"""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from sessionkeeper.atproto.oauth.dpop import jwk_thumbprint, public_jwk
from sessionkeeper.atproto.oauth.pkce import s256_challenge
from sessionkeeper.clock import SYSTEM_CLOCK, Clock
from sessionkeeper.testing._server import LoopbackServer
from sessionkeeper.testing.fake_oauth._grants import CodeGrant, Grant, PushedRequest
from sessionkeeper.testing.fake_oauth._proofs import (
    ProofError,
    ReplayGuard,
    check_client_assertion,
    check_dpop_proof,
)
from sessionkeeper.testing.fake_pds._http import (
    HttpRequest,
    HttpResponse,
    XrpcHandler,
    json_response,
)
from sessionkeeper.testing.fake_pds._repo import RecordStore

CONTROL_PREFIX = "/__fake__/"
DEFAULT_DID = "did:plc:oauthalice"
DEFAULT_HANDLE = "alice.test"
DEFAULT_SCOPE = "atproto transition:generic"
PAR_LIFETIME = 299.0
CODE_LIFETIME = 300.0
CREATE_RECORD = "/xrpc/com.atproto.repo.createRecord"
LIST_RECORDS = "/xrpc/com.atproto.repo.listRecords"

Answer = tuple[int, Any, dict[str, str]]


def _loopback_client(client_id: str) -> dict[str, Any] | None:
    """The metadata of a loopback client_id, or ``None`` when it is not one."""
    parts = urlsplit(client_id)
    if parts.scheme != "http" or parts.netloc != "localhost" or parts.path not in ("", "/"):
        return None
    query = parse_qs(parts.query)
    return {
        "redirect_uris": query.get("redirect_uri", ["http://127.0.0.1/", "http://[::1]/"]),
        "scope": query.get("scope", ["atproto"])[0],
        "token_endpoint_auth_method": "none",
    }


def _redirect_allowed(registered: list[str], asked: str, *, loopback: bool) -> bool:
    if asked in registered:
        return True
    if not loopback:
        return False
    # RFC 8252: a loopback redirect may use any port when the registered one has none.
    ask = urlsplit(asked)
    return any(
        (r := urlsplit(uri)).port is None
        and r.scheme == ask.scheme
        and r.hostname == ask.hostname
        and r.path == ask.path
        for uri in registered
    )


class FakeOAuth(LoopbackServer):
    """The fake; ``with FakeOAuth() as fake:`` serves it on ``fake.url``."""

    handler_class = XrpcHandler

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        lifetime: float = 3600.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.clock = clock or SYSTEM_CLOCK
        self.lifetime = lifetime
        self.nonce = secrets.token_urlsafe(8)
        self.accounts: dict[str, str] = {DEFAULT_DID: DEFAULT_HANDLE}  #: did -> handle
        self.clients: dict[str, dict[str, Any]] = {}  #: registered web clients' metadata
        self.pushed: dict[str, PushedRequest] = {}
        self.codes: dict[str, CodeGrant] = {}
        self.access: dict[str, Grant] = {}
        self.refresh: dict[str, Grant] = {}
        self.revoked_sessions: set[str] = set()
        self.records = RecordStore()  #: what createRecord stored, per account and collection
        #: "accept" consents at once; "deny" sends the browser back with access_denied.
        self.consent = "accept"
        #: An HTTP status the token endpoint answers instead of working (e.g. 500).
        self.fault: int | None = None
        #: Answer revocations with 200 and revoke nothing (a server that ignores them).
        self.ignore_revocations = False
        #: Answer ``sub`` as this DID instead of the account's (a lying server).
        self.answer_sub: str | None = None
        #: Replaces a successful refresh answer when set.
        self.answer_body: Any = None
        #: Grant this scope instead of the one asked (a server that narrows the grant).
        self.granted_scope: str | None = None
        #: Permission sets this server can resolve: NSID -> the permissions it grants.
        #: A requested ``include:<nsid>`` is expanded into them in the granted scope,
        #: as the reference provider does; an unknown set is refused (invalid_scope).
        self.permission_sets: dict[str, list[str]] = {}
        #: The issuer the protected-resource document names (default: this server).
        self.named_issuer: str | None = None
        self._dpop_replays = ReplayGuard()
        self._assertion_replays = ReplayGuard()
        self._lock = threading.RLock()

    # -- set-up --------------------------------------------------------------------------

    def add_account(self, did: str, handle: str) -> None:
        """Host ``did`` under ``handle`` here (its DID document names this server)."""
        self.accounts[did] = handle

    def register_client(self, metadata: dict[str, Any]) -> None:
        """Know a web client's metadata document (as if fetched from its client_id URL)."""
        self.clients[str(metadata["client_id"])] = dict(metadata)

    def rotate_nonce(self) -> None:
        """Start handing out a new DPoP nonce; the old one is refused from now on."""
        with self._lock:
            self.nonce = secrets.token_urlsafe(8)

    def issue(
        self, did: str, jkt: str, *, client_id: str = "", scope: str = DEFAULT_SCOPE
    ) -> dict[str, Any]:
        """The token answer of a completed authorization for ``did`` bound to ``jkt``."""
        return self._issue(did, jkt, secrets.token_hex(8), client_id, scope)

    def _issue(
        self, did: str, jkt: str, session: str, client_id: str, scope: str
    ) -> dict[str, Any]:
        scope = self.expand(scope)
        access, refresh = "at-" + secrets.token_urlsafe(24), "ref-" + secrets.token_urlsafe(24)
        now = self.clock.time()
        self.access[access] = Grant(
            did, jkt, now + self.lifetime, session=session, client_id=client_id, scope=scope
        )
        self.refresh[refresh] = Grant(did, jkt, session=session, client_id=client_id, scope=scope)
        return {
            "access_token": access,
            "token_type": "DPoP",
            "refresh_token": refresh,
            "expires_in": self.lifetime,
            "scope": scope,
            "sub": self.answer_sub or did,
        }

    def expand(self, scope: str) -> str:
        """``scope`` with each ``include:`` replaced by the permissions of its set."""
        entries: list[str] = []
        for entry in scope.split():
            if entry.startswith("include:"):
                entries += self.permission_sets.get(_set_of(entry), [])
            elif entry not in entries:
                entries.append(entry)
        return " ".join(entries)

    def session_alive(self, token: str) -> bool:
        """Whether the session of an access or refresh token is neither revoked nor spent."""
        grant = self.access.get(token) or self.refresh.get(token)
        return grant is not None and grant.session not in self.revoked_sessions

    def _revoke_session(self, session: str | None) -> None:
        if session:
            self.revoked_sessions.add(session)

    # -- HTTP ----------------------------------------------------------------------------

    def handle_http(self, request: HttpRequest) -> HttpResponse:
        """Route one request."""
        form = (
            dict(parse_qsl(request.body.decode("utf-8", "replace")))
            if request.method == "POST"
            else {}
        )
        path = request.path
        status: int
        body: Any
        headers: dict[str, str]
        with self._lock:
            if path == "/.well-known/oauth-protected-resource":
                status, body, headers = (
                    200,
                    {
                        "resource": self.url,
                        "authorization_servers": [self.named_issuer or self.url],
                        "scopes_supported": [],
                        "bearer_methods_supported": ["header"],
                    },
                    {},
                )
            elif path == "/.well-known/oauth-authorization-server":
                status, body, headers = 200, self.metadata(), {}
            elif path == "/oauth/par" and request.method == "POST":
                status, body, headers = self._par(form, request.headers.get("dpop"))
            elif path == "/oauth/authorize":
                return self._authorize(request)
            elif path == "/oauth/token" and request.method == "POST":
                status, body, headers = self.token(form, request.headers.get("dpop"))
            elif path == "/oauth/revoke" and request.method == "POST":
                status, body, headers = self._revoke(form, request.headers.get("dpop"))
            elif path == "/xrpc/com.atproto.identity.resolveHandle":
                status, body, headers = self._resolve_handle(request.param("handle"))
            elif path.startswith("/did:"):
                status, body, headers = self._did_document(path[1:])
            elif path.startswith(CONTROL_PREFIX):
                status, body, headers = self._control(request)
            elif path.startswith("/xrpc/"):
                status, body, headers = self.resource(
                    path,
                    request.headers.get("authorization"),
                    request.headers.get("dpop"),
                    method=request.method,
                    request=request,
                )
            else:
                status, body, headers = 404, {"error": "NotFound"}, {}
        return json_response(status, body, headers=headers)

    def _control(self, request: HttpRequest) -> Answer:
        """The control endpoints: GET ``grants``, POST ``consent?mode=``, POST ``accounts``."""
        action = request.path[len(CONTROL_PREFIX) :]
        if action == "grants" and request.method == "GET":
            counts = {
                "access_tokens": len(self.access),
                "refresh_tokens": len(self.refresh),
                "revoked_sessions": len(self.revoked_sessions),
            }
            return 200, counts, {}
        if action == "consent" and request.method == "POST":
            mode = request.param("mode")
            if mode not in ("accept", "deny"):
                return 400, {"error": "InvalidRequest", "message": "mode is accept or deny"}, {}
            self.consent = mode
            return 200, {"consent": mode}, {}
        if action == "accounts" and request.method == "POST":
            did, handle = request.param("did"), request.param("handle")
            if not did or not did.startswith("did:") or not handle:
                return 400, {"error": "InvalidRequest", "message": "did and handle required"}, {}
            self.add_account(did, handle)
            return 200, {"did": did, "handle": handle}, {}
        return 404, {"error": "NotFound", "message": f"no control endpoint {action!r}"}, {}

    def metadata(self) -> dict[str, Any]:
        """The authorization server metadata document."""
        base = self.url
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "pushed_authorization_request_endpoint": f"{base}/oauth/par",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "jwks_uri": f"{base}/oauth/jwks",
            "scopes_supported": ["atproto", "transition:generic", "transition:chat.bsky"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
            "dpop_signing_alg_values_supported": ["ES256"],
            "require_pushed_authorization_requests": True,
            "authorization_response_iss_parameter_supported": True,
            "client_id_metadata_document_supported": True,
        }

    def _nonce_header(self) -> dict[str, str]:
        return {"DPoP-Nonce": self.nonce}

    def _client(self, form: dict[str, str]) -> tuple[str, dict[str, Any]]:
        """The calling client and its metadata, authenticated; raise `ProofError`."""
        client_id = form.get("client_id", "")
        loopback = _loopback_client(client_id)
        if loopback is not None:
            if form.get("client_assertion"):
                raise ProofError("invalid_client", "a loopback client cannot authenticate")
            return client_id, loopback
        metadata = self.clients.get(client_id)
        if metadata is None:
            raise ProofError("invalid_client_metadata", f"unknown client {client_id!r}")
        if metadata.get("token_endpoint_auth_method") == "private_key_jwt":
            self.count("assertion")
            check_client_assertion(
                form,
                client_id=client_id,
                jwks=metadata.get("jwks", {}),
                audience=self.url,
                replays=self._assertion_replays,
            )
        return client_id, metadata

    def _proof(self, proof: str | None, method: str, path: str, access: str | None = None) -> str:
        return check_dpop_proof(
            proof,
            method=method,
            url=f"{self.url}{path}",
            nonce=self.nonce,
            replays=self._dpop_replays,
            access_token=access,
        )

    def _par(self, form: dict[str, str], proof: str | None) -> Answer:
        self.count("par")
        try:
            jkt = self._proof(proof, "POST", "/oauth/par")
            client_id, client = self._client(form)
        except ProofError as exc:
            if exc.error == "use_dpop_nonce":
                self.count("par-nonce")
            return (
                400,
                {"error": exc.error, "error_description": exc.description},
                self._nonce_header(),
            )
        nonce = self._nonce_header()
        if form.get("code_challenge_method") != "S256" or not form.get("code_challenge"):
            return (
                400,
                {"error": "invalid_request", "error_description": "Use of PKCE is required"},
                nonce,
            )
        redirect_uri = form.get("redirect_uri", "")
        if not _redirect_allowed(
            client["redirect_uris"], redirect_uri, loopback=client_id.startswith("http://localhost")
        ):
            return (
                400,
                {"error": "invalid_request", "error_description": "redirect_uri not registered"},
                nonce,
            )
        scope = form.get("scope", "")
        declared = set(str(client.get("scope", "")).split())
        unknown = [
            entry
            for entry in scope.split()
            if entry.startswith("include:") and _set_of(entry) not in self.permission_sets
        ]
        if "atproto" not in scope.split() or not set(scope.split()) <= declared or unknown:
            return 400, {"error": "invalid_scope", "error_description": f"scope {scope!r}"}, nonce
        request_uri = "urn:ietf:params:oauth:request_uri:req-" + secrets.token_hex(16)
        self.pushed[request_uri] = PushedRequest(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=form.get("state", ""),
            code_challenge=form["code_challenge"],
            login_hint=form.get("login_hint"),
            jkt=jkt,
            expires_at=self.clock.time() + PAR_LIFETIME,
        )
        return 201, {"request_uri": request_uri, "expires_in": int(PAR_LIFETIME)}, nonce

    def _account_for(self, hint: str | None) -> str:
        for did, handle in self.accounts.items():
            if hint in (did, handle):
                return did
        return next(iter(self.accounts))

    def _authorize(self, request: HttpRequest) -> HttpResponse:
        self.count("authorize")
        pushed = self.pushed.pop(request.param("request_uri") or "", None)
        if pushed is None or pushed.client_id != request.param("client_id"):
            return json_response(
                400, {"error": "invalid_request", "error_description": "unknown request_uri"}
            )
        if self.clock.time() > pushed.expires_at:
            return json_response(
                400, {"error": "invalid_request", "error_description": "request expired"}
            )
        params: dict[str, str] = {"state": pushed.state, "iss": self.url}
        if self.consent == "deny":
            params.update(error="access_denied", error_description="The user rejected the request")
        else:
            code = "cod-" + secrets.token_hex(24)
            self.codes[code] = CodeGrant(
                did=self._account_for(pushed.login_hint),
                client_id=pushed.client_id,
                redirect_uri=pushed.redirect_uri,
                scope=pushed.scope,
                code_challenge=pushed.code_challenge,
                jkt=pushed.jkt,
                expires_at=self.clock.time() + CODE_LIFETIME,
            )
            params["code"] = code
        location = f"{pushed.redirect_uri}?{urlencode(params)}"
        return HttpResponse(status=303, headers={"Location": location})

    def token(self, form: dict[str, str], proof: str | None) -> Answer:
        """Answer the token endpoint (authorization_code and refresh_token grants)."""
        with self._lock:
            self.count("token")
            nonce = self._nonce_header()
            if self.fault is not None:
                return self.fault, {"error": "server_error"}, nonce
            try:
                jkt = self._proof(proof, "POST", "/oauth/token")
                client_id, _client = self._client(form)
            except ProofError as exc:
                if exc.error == "use_dpop_nonce":
                    self.count("token-nonce")
                return 400, {"error": exc.error, "error_description": exc.description}, nonce
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                return self._exchange(form, jkt, client_id)
            if grant_type == "refresh_token":
                return self._refresh(form, jkt)
            return 400, {"error": "unsupported_grant_type"}, nonce

    def _exchange(self, form: dict[str, str], jkt: str, client_id: str) -> Answer:
        nonce = self._nonce_header()
        grant = self.codes.get(form.get("code", ""))
        if grant is None:
            return 400, {"error": "invalid_grant", "error_description": "Invalid code"}, nonce
        if grant.used:
            self._revoke_session(grant.session)  # a reused code ends what it issued
            return 400, {"error": "invalid_grant", "error_description": "Code replayed"}, nonce
        grant.used = True
        problems = [
            (grant.client_id != client_id, "client_id mismatch"),
            (grant.redirect_uri != form.get("redirect_uri"), "redirect_uri mismatch"),
            (grant.jkt != jkt, "DPoP key mismatch"),
            (self.clock.time() > grant.expires_at, "code expired"),
            (
                s256_challenge(form.get("code_verifier", "")) != grant.code_challenge,
                "Invalid code_verifier",
            ),
        ]
        for failed, description in problems:
            if failed:
                return 400, {"error": "invalid_grant", "error_description": description}, nonce
        self.count("exchange")
        grant.session = secrets.token_hex(8)
        scope = self.granted_scope if self.granted_scope is not None else grant.scope
        return 200, self._issue(grant.did, jkt, grant.session, client_id, scope), nonce

    def _refresh(self, form: dict[str, str], jkt: str) -> Answer:
        nonce = self._nonce_header()
        grant = self.refresh.get(form.get("refresh_token", ""))
        if grant is None or grant.session in self.revoked_sessions:
            return (
                400,
                {"error": "invalid_grant", "error_description": "Invalid refresh token"},
                nonce,
            )
        if grant.used or grant.jkt != jkt:
            # As the provider does: a replayed token or a foreign key ends the session.
            self._revoke_session(grant.session)
            self.count("replay")
            return (
                400,
                {"error": "invalid_grant", "error_description": "refresh token replayed"},
                nonce,
            )
        grant.used = True  # single use, no grace
        for access in self.access.values():
            if access.session == grant.session:
                access.expires_at = 0.0  # the old access token dies at once
        self.count("refresh")
        answer = self._issue(grant.did, grant.jkt, grant.session, grant.client_id, grant.scope)
        return 200, answer if self.answer_body is None else self.answer_body, nonce

    def _revoke(self, form: dict[str, str], proof: str | None) -> Answer:
        self.count("revoke")
        nonce = self._nonce_header()
        try:
            self._proof(proof, "POST", "/oauth/revoke")
            self._client(form)
        except ProofError as exc:
            if exc.error == "use_dpop_nonce":
                self.count("revoke-nonce")
                return 400, {"error": "use_dpop_nonce"}, nonce
            return 200, {}, nonce  # like the provider: silence about anything else
        grant = self.refresh.get(form.get("token", "")) or self.access.get(form.get("token", ""))
        if grant is not None and not self.ignore_revocations:
            self._revoke_session(grant.session)
            self.count("revoked")
        return 200, {}, nonce

    def _resolve_handle(self, handle: str | None) -> Answer:
        for did, known in self.accounts.items():
            if known == handle:
                return 200, {"did": did}, {}
        return 400, {"error": "InvalidRequest", "message": "Unable to resolve handle"}, {}

    def _did_document(self, did: str) -> Answer:
        handle = self.accounts.get(did)
        if handle is None:
            return 404, {"message": f"DID not registered: {did}"}, {}
        return (
            200,
            {
                "@context": ["https://www.w3.org/ns/did/v1"],
                "id": did,
                "alsoKnownAs": [f"at://{handle}"],
                "verificationMethod": [],
                "service": [
                    {
                        "id": "#atproto_pds",
                        "type": "AtprotoPersonalDataServer",
                        "serviceEndpoint": self.url,
                    }
                ],
            },
            {},
        )

    def resource(
        self,
        path: str,
        authorization: str | None,
        proof: str | None,
        *,
        method: str = "GET",
        request: HttpRequest | None = None,
    ) -> Answer:
        """Answer an XRPC call that needs the DPoP-bound access token.

        With the ``request``, ``createRecord`` and ``listRecords`` act on the
        token's account's records; any other call answers its did and handle.
        """
        with self._lock:
            self.count(path)
            nonce = self._nonce_header()
            scheme, _, token = (authorization or "").partition(" ")
            challenge_invalid = {**nonce, "WWW-Authenticate": 'DPoP error="invalid_token"'}
            if scheme != "DPoP":
                return 401, {"error": "invalid_token"}, {**nonce, "WWW-Authenticate": "DPoP"}
            try:
                jkt = self._proof(proof, method, path, token)
            except ProofError as exc:
                if exc.error == "use_dpop_nonce":
                    self.count("resource-nonce")
                    challenge = 'DPoP error="use_dpop_nonce"'
                    return (
                        401,
                        {"error": "use_dpop_nonce"},
                        {**nonce, "WWW-Authenticate": challenge},
                    )
                self.count("rejected")
                return 401, {"error": "invalid_dpop_proof"}, challenge_invalid
            grant = self.access.get(token)
            if (
                grant is None
                or grant.jkt != jkt
                or grant.session in self.revoked_sessions
                or self.clock.time() >= grant.expires_at
            ):
                self.count("rejected")
                return 401, {"error": "invalid_token"}, challenge_invalid
            if request is not None and path in (CREATE_RECORD, LIST_RECORDS):
                status, body = self._records(path, grant.did, request)
                return status, body, nonce
            return (
                200,
                {"did": grant.did, "handle": self.accounts.get(grant.did, DEFAULT_HANDLE)},
                nonce,
            )

    def _records(self, path: str, did: str, request: HttpRequest) -> tuple[int, Any]:
        """createRecord or listRecords on ``did``'s own repository (the caller holds the lock)."""
        if path == CREATE_RECORD:
            try:
                data = json.loads(request.body or b"{}")
            except ValueError:
                return 400, {"error": "InvalidRequest", "message": "body is not JSON"}
            if not isinstance(data, dict):
                return 400, {"error": "InvalidRequest", "message": "body is not an object"}
            collection, record = data.get("collection"), data.get("record")
            if data.get("repo") not in (did, self.accounts.get(did)):
                return 400, {"error": "InvalidRequest", "message": "not your repository"}
            if not isinstance(collection, str) or not isinstance(record, dict):
                return 400, {"error": "InvalidRequest", "message": "collection and record needed"}
            stored = self.records.create(did, collection, record, rkey=None, now=self.clock.time())
            assert stored is not None  # a fresh TID key is never taken
            return 200, {"uri": stored.uri, "cid": stored.cid}
        repo, collection = request.param("repo"), request.param("collection")
        if repo not in (did, self.accounts.get(did)) or not collection:
            return 400, {"error": "InvalidRequest", "message": "repo and collection needed"}
        limit = request.param("limit") or "50"
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            return 400, {"error": "InvalidRequest", "message": "limit must be 1 to 100"}
        page, cursor = self.records.list(
            did, collection, limit=int(limit), cursor=request.param("cursor"), reverse=False
        )
        body: dict[str, Any] = {"records": [record.view() for record in page]}
        if cursor is not None:
            body["cursor"] = cursor
        return 200, body


def _set_of(entry: str) -> str:
    """The NSID of an ``include:<nsid>[?aud=...]`` scope entry."""
    return entry[len("include:") :].partition("?")[0]


def thumbprint_of(private_jwk: dict[str, str]) -> str:
    """The ``jkt`` a token bound to ``private_jwk``'s public half carries."""
    return jwk_thumbprint(public_jwk(private_jwk))
