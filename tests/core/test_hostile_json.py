"""A server's answer nested too deeply to parse is a bad answer, never a RecursionError."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import OAuthTokenError, SessionError, XrpcError
from sessionkeeper.atproto.identity import IdentityResolver
from sessionkeeper.atproto.oauth.authorize import complete_authorization
from sessionkeeper.atproto.oauth.client_auth import ClientCredentials
from sessionkeeper.atproto.oauth.dpop import DpopSigner, generate_dpop_jwk, wants_nonce
from sessionkeeper.atproto.oauth.pending import PendingAuthorization
from sessionkeeper.atproto.oauth.session import OAuthSession
from sessionkeeper.atproto.oauth.tokens import OAuthRefresh
from sessionkeeper.atproto.password.flows import login_flow
from sessionkeeper.atproto.xrpc import decode_result, error_body
from sessionkeeper.core.flow import Call, Locked, Op, Send

NOW = 1_800_000_000.0
DID = "did:plc:alice"
ISSUER = "https://auth.example"
TOKEN_ENDPOINT = f"{ISSUER}/oauth/token"
#: ``[[[[...``: json.loads gives up with RecursionError long before the end.
NESTED = b"[" * 100_000


def deep(status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=NESTED, headers={"Content-Type": "application/json"})


def answer_with(flow: Generator[Op, Any, Any], response: httpx.Response) -> Any:
    """Run ``flow``, answering every ``Send`` with ``response`` (no store, no locks)."""
    reply: Any = None
    try:
        while True:
            op = flow.send(reply)
            if isinstance(op, Locked):
                reply = answer_with(op.flow, response)
            elif isinstance(op, Call):
                reply = op.function()
            else:
                assert isinstance(op, Send), op
                reply = response
    except StopIteration as stop:
        return stop.value


def test_error_bodies_of_deep_answers_say_nothing() -> None:
    assert error_body(deep(400)) == (None, None)
    assert not wants_nonce(deep(400))


def test_a_deep_xrpc_result_is_an_invalid_response() -> None:
    with pytest.raises(XrpcError, match="not valid JSON"):
        decode_result(deep(), "com.example.get", now=NOW)


def test_a_deep_create_session_answer_is_a_session_error() -> None:
    flow = login_flow(
        "alice.test", "pw", auth_factor_token=None, service_url="http://p", now=NOW, stored=list
    )
    with pytest.raises(SessionError, match="without JSON"):
        answer_with(flow, deep())


def test_a_deep_token_refresh_answer_is_a_session_error() -> None:
    key = generate_dpop_jwk()
    session = OAuthSession.from_token_response(
        {"access_token": "at", "token_type": "DPoP", "refresh_token": "rt", "sub": DID},
        issuer=ISSUER,
        token_endpoint=TOKEN_ENDPOINT,
        pds_url="https://pds.example",
        client_id="https://app.example/client.json",
        dpop_jwk=key,
        now=NOW,
    )
    policy = OAuthRefresh(session, signer=DpopSigner(key), now=NOW)
    with pytest.raises(SessionError, match="not a JSON object"):
        answer_with(policy.produce(session), deep())


def test_a_deep_code_exchange_answer_is_a_token_error() -> None:
    pending = PendingAuthorization(
        state="s",
        issuer=ISSUER,
        token_endpoint=TOKEN_ENDPOINT,
        revocation_endpoint=None,
        redirect_uri="http://127.0.0.1/callback",
        verifier="v" * 43,
        dpop_jwk=generate_dpop_jwk(),
        created_at=NOW,
    )
    credentials = ClientCredentials(
        client_id="http://localhost", redirect_uri="http://127.0.0.1/callback", scope="atproto"
    )
    flow = complete_authorization(
        pending, "code", resolver=IdentityResolver(), credentials=credentials, now=NOW
    )
    with pytest.raises(OAuthTokenError, match="not answer a JSON object"):
        answer_with(flow, deep())
