"""The sans-I/O decisions: when to refresh, what an answer means, what a flow stores."""

from __future__ import annotations

import base64
import email.utils
import json
from collections.abc import Generator
from typing import Any

import httpx
import pytest

from sessionkeeper.atproto import AtpSessionData, SessionError, XrpcError
from sessionkeeper.atproto.codec import decode_session, encode_session
from sessionkeeper.atproto.kinds import ATPROTO_ERRORS
from sessionkeeper.atproto.password.flows import PasswordRefresh, logout_flow, session_from_answer
from sessionkeeper.atproto.password.kind import PASSWORD
from sessionkeeper.atproto.refresh import pds_endpoint, refresh_verdict
from sessionkeeper.atproto.xrpc import decode_result, is_rejected_access, retry_after, validate_nsid
from sessionkeeper.clock import ManualClock
from sessionkeeper.core.flow import Delete, Get, Locked, NetworkFailure, Op, Put, Send
from sessionkeeper.core.singleflight import Outcome, SingleFlightResult, Verdict, single_flight
from sessionkeeper.core.state import SessionState


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_jwt(exp: float, typ: str = "at+jwt", **claims: Any) -> str:
    return f"{b64({'alg': 'HS256', 'typ': typ})}.{b64({**claims, 'exp': exp})}.c2ln"


NOW = 1_800_000_000.0
DID = "did:plc:alice"


def session(exp: float, *, did: str = DID, tag: str = "a") -> AtpSessionData:
    return AtpSessionData(
        refresh_jwt=make_jwt(exp + 86400, typ="refresh+jwt", jti=tag),
        access_jwt=make_jwt(exp, tag=tag),
        handle="alice.test",
        did=did,
        email="alice@example.com",
    )


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    content = b"" if body is None else json.dumps(body).encode()
    return httpx.Response(status, content=content, headers=headers)


def run(
    flow: Generator[Op, Any, Any], store: dict[str, bytes], replies: list[Any]
) -> tuple[Any, list[Op]]:
    """Perform a flow against a dict and a list of canned HTTP replies (locks are no-ops)."""
    seen: list[Op] = []
    result: Any = None
    try:
        while True:
            op = flow.send(result)
            seen.append(op)
            if isinstance(op, Locked):
                result, inner = run(op.flow, store, replies)
                seen.extend(inner)
            elif isinstance(op, Get):
                result = store.get(op.name)
            elif isinstance(op, Put):
                store[op.name] = op.data
                result = None
            elif isinstance(op, Delete):
                result = store.pop(op.name, None) is not None
            else:
                result = replies.pop(0)
    except StopIteration as stop:
        return stop.value, seen


def refresh_flow(
    known: AtpSessionData, *, service_url: str, now: float
) -> Generator[Op, Any, SingleFlightResult[AtpSessionData]]:
    """The password managers' refresh: the single flight with their policy."""
    return single_flight(PasswordRefresh(known, service_url=service_url, now=now), known)


def state_at(now: float) -> SessionState[AtpSessionData]:
    return SessionState(
        PASSWORD,
        refresh_margin=60.0,
        auto_refresh=True,
        clock=ManualClock(now),
        errors=ATPROTO_ERRORS,
    )


def test_due_when_now_is_past_exp_minus_margin() -> None:
    pair = session(NOW + 100)
    assert state_at(NOW).is_due(pair, 120.0)
    assert not state_at(NOW).is_due(pair, 60.0)
    assert state_at(NOW + 101).is_due(pair, 0.0)


def test_token_without_exp_is_never_proactively_due() -> None:
    pair = AtpSessionData(
        refresh_jwt="not.a.jwt", access_jwt="not.a.jwt", handle="alice.test", did=DID
    )
    assert not state_at(NOW).is_due(pair, 120.0)


def test_adopt_only_a_different_unexpired_pair_of_the_same_did() -> None:
    known = session(NOW - 10, tag="old")
    policy = PasswordRefresh(known, service_url="http://p", now=NOW)
    fresh = session(NOW + 7200, tag="new")
    assert policy.adoptable(fresh, known)
    assert policy.adoptable(session(NOW + 60, tag="new"), known)  # inside the margin: adopted
    assert not policy.adoptable(session(NOW - 1, tag="new"), known)  # expired: refresh instead
    assert not policy.adoptable(known, known)
    assert not policy.adoptable(session(NOW + 7200, did="did:plc:bob", tag="b"), known)
    assert not policy.adoptable(session(NOW - 20, tag="older"), known)  # ours is newer


def test_refresh_flow_with_nothing_stored_refreshes_what_it_holds() -> None:
    known = session(NOW - 5, tag="held")
    new = session(NOW + 7200, tag="new")
    store: dict[str, bytes] = {}
    reply = answer(200, new.to_json_dict())
    result, ops = run(refresh_flow(known, service_url="http://p", now=NOW), store, [reply])
    send = next(op for op in ops if isinstance(op, Send))
    assert send.headers["Authorization"] == f"Bearer {known.refresh_jwt}"
    assert result.outcome is Outcome.REFRESHED and result.session == new


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [
        (200, None, Verdict.FRESH),
        (400, "ExpiredToken", Verdict.DEAD),
        (400, "InvalidToken", Verdict.DEAD),
        (401, "AuthMissing", Verdict.DEAD),
        (401, "AccountTakedown", Verdict.DEAD),
        (400, "AccountTakedown", Verdict.DEAD),
        (500, "InternalServerError", Verdict.UNAVAILABLE),
        (502, None, Verdict.UNAVAILABLE),
        (429, "RateLimitExceeded", Verdict.UNAVAILABLE),
        (400, "InvalidRequest", None),
    ],
)
def test_refresh_verdicts(status: int, error: str | None, verdict: Verdict | None) -> None:
    assert refresh_verdict(status, error) is verdict


def test_rejected_access_is_400_expired_token_or_401() -> None:
    assert is_rejected_access(
        answer(400, {"error": "ExpiredToken", "message": "Token has expired"})
    )
    assert is_rejected_access(answer(401, {"error": "AuthenticationRequired"}))
    assert not is_rejected_access(answer(400, {"error": "InvalidRequest"}))
    assert not is_rejected_access(answer(400, None))
    assert not is_rejected_access(answer(500, {"error": "ExpiredToken"}))


def test_retry_after_seconds_date_and_ratelimit_reset() -> None:
    assert retry_after(httpx.Headers({"Retry-After": "30"}), NOW) == 30.0
    assert retry_after(httpx.Headers({"RateLimit-Reset": str(int(NOW) + 45)}), NOW) == 45.0
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    assert retry_after(httpx.Headers({"Retry-After": date}), NOW) == pytest.approx(30.0)
    assert retry_after(httpx.Headers({}), NOW) is None


def test_pds_endpoint_comes_from_the_atproto_pds_service() -> None:
    doc = {
        "service": [
            {"id": "#other", "serviceEndpoint": "https://other.example"},
            {"id": "#atproto_pds", "serviceEndpoint": "https://pds.example/"},
        ]
    }
    assert pds_endpoint(doc) == "https://pds.example"
    assert pds_endpoint({"service": "nope"}) is None
    assert pds_endpoint(None) is None
    assert pds_endpoint({"service": [{"id": "#atproto_pds", "serviceEndpoint": "ftp://x"}]}) is None


def test_refresh_answer_keeps_email_fields_it_does_not_repeat() -> None:
    previous = session(NOW, tag="old")
    body = {"accessJwt": "a.b.c", "refreshJwt": "d.e.f", "handle": "alice.test", "did": DID}
    fresh, endpoint = session_from_answer(body, previous=previous, where="test")
    assert fresh.email == "alice@example.com"
    assert fresh.active is True and endpoint is None


def test_refresh_flow_adopts_a_pair_refreshed_elsewhere_without_a_request() -> None:
    known = session(NOW - 5, tag="old")
    elsewhere = session(NOW + 7200, tag="new")
    store = {"did_plc_alice.json": encode_session(elsewhere)}
    result, ops = run(refresh_flow(known, service_url="http://pds", now=NOW), store, [])
    assert result.outcome is Outcome.ADOPTED
    assert result.session == elsewhere
    assert not any(isinstance(op, Send) for op in ops)


def test_refresh_flow_uses_the_stored_refresh_token_and_stores_the_new_pair() -> None:
    known = session(NOW - 5, tag="memory")
    stored = session(NOW - 5, tag="stored")  # newer rotation but also due
    store = {"did_plc_alice.json": encode_session(stored)}
    new = session(NOW + 7200, tag="new")
    reply = answer(200, {**new.to_json_dict(), "email": None})
    reply = answer(200, {k: v for k, v in new.to_json_dict().items() if k != "email"})
    result, ops = run(refresh_flow(known, service_url="http://pds", now=NOW), store, [reply])
    send = next(op for op in ops if isinstance(op, Send))
    assert send.headers["Authorization"] == f"Bearer {stored.refresh_jwt}"
    assert send.url == "http://pds/xrpc/com.atproto.server.refreshSession"
    assert result.outcome is Outcome.REFRESHED
    assert decode_session(store["did_plc_alice.json"], name="x") == result.session
    assert result.session.email == "alice@example.com"


def test_refresh_flow_answer_for_another_did_raises_and_stores_nothing() -> None:
    known = session(NOW - 5)
    store = {"did_plc_alice.json": encode_session(known)}
    other = session(NOW + 7200, did="did:plc:bob", tag="b")
    with pytest.raises(SessionError, match="another account"):
        run(
            refresh_flow(known, service_url="http://p", now=NOW),
            store,
            [answer(200, other.to_json_dict())],
        )
    assert decode_session(store["did_plc_alice.json"], name="x") == known


def test_refresh_flow_dead_verdict_deletes_the_stored_session() -> None:
    known = session(NOW - 5)
    store = {"did_plc_alice.json": encode_session(known)}
    reply = answer(400, {"error": "ExpiredToken", "message": "Token has been revoked"})
    result, _ = run(refresh_flow(known, service_url="http://p", now=NOW), store, [reply])
    assert result.outcome is Outcome.REMOVED
    assert store == {}


@pytest.mark.parametrize(
    "reply",
    [
        NetworkFailure("ConnectError"),
        answer(503, {"error": "x"}),
        answer(429, {}, {"Retry-After": "7"}),
    ],
)
def test_refresh_flow_transient_failures_keep_the_session(reply: Any) -> None:
    known = session(NOW - 5)
    store = {"did_plc_alice.json": encode_session(known)}
    result, _ = run(refresh_flow(known, service_url="http://p", now=NOW), store, [reply])
    assert result.outcome is Outcome.UNAVAILABLE
    assert "did_plc_alice.json" in store
    if isinstance(reply, httpx.Response) and reply.status_code == 429:
        assert result.retry_after == 7.0


def test_refresh_flow_other_errors_raise_xrpc_error_and_keep_the_session() -> None:
    known = session(NOW - 5)
    store = {"did_plc_alice.json": encode_session(known)}
    with pytest.raises(XrpcError) as info:
        run(
            refresh_flow(known, service_url="http://p", now=NOW),
            store,
            [answer(400, {"error": "InvalidRequest", "message": "bad"})],
        )
    assert (info.value.status, info.value.error, info.value.message) == (
        400,
        "InvalidRequest",
        "bad",
    )
    assert "did_plc_alice.json" in store


def test_logout_sends_the_newest_refresh_token_stored_or_in_hand() -> None:
    spent = session(NOW - 5, tag="spent")
    ours = session(NOW + 7200, tag="ours")  # rotated here, but the store write failed
    store = {"did_plc_alice.json": encode_session(spent)}
    result, ops = run(logout_flow(ours, service_url="http://p"), store, [answer(200, {})])
    send = next(op for op in ops if isinstance(op, Send))
    assert send.url == "http://p/xrpc/com.atproto.server.deleteSession"
    assert send.headers["Authorization"] == f"Bearer {ours.refresh_jwt}"
    assert result == ours and store == {}


def test_logout_prefers_a_newer_or_equal_stored_pair() -> None:
    known = session(NOW - 5, tag="known")
    for elsewhere in (session(NOW + 7200, tag="new"), session(NOW - 5, tag="same-second")):
        store = {"did_plc_alice.json": encode_session(elsewhere)}
        result, ops = run(logout_flow(known, service_url="http://p"), store, [answer(200, {})])
        send = next(op for op in ops if isinstance(op, Send))
        assert send.headers["Authorization"] == f"Bearer {elsewhere.refresh_jwt}"
        assert result == elsewhere and store == {}


def test_decode_result_json_empty_and_error() -> None:
    assert decode_result(answer(200, {"a": 1}), "com.x.y", now=NOW) == {"a": 1}
    assert decode_result(httpx.Response(200), "com.x.y", now=NOW) is None
    with pytest.raises(XrpcError) as info:
        decode_result(
            answer(429, {"error": "RateLimitExceeded"}, {"Retry-After": "3"}), "com.x.y", now=NOW
        )
    assert info.value.retry_after == 3.0 and info.value.status == 429


@pytest.mark.parametrize("bad", ["", "getSession", "com..x", "com.atproto/../x", "a.b"])
def test_invalid_nsids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        validate_nsid(bad)
