"""The session record, its file format, session strings and JWT expiry decoding."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessionkeeper.atproto import (
    AtpSessionData,
    AtpSessionEvent,
    CorruptSessionError,
    MalformedTokenError,
    PersistentSessionManager,
    name_for_did,
    validate_did,
)
from sessionkeeper.atproto.codec import decode_session, encode_session
from sessionkeeper.atproto.jwt import decode_claims, redact, token_expiry, token_expiry_or_none
from sessionkeeper.atproto.types import session_string_endpoint
from sessionkeeper.stores import MemoryStore


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def make_jwt(exp: float | None, typ: str = "at+jwt", **claims: Any) -> str:
    payload = dict(claims)
    if exp is not None:
        payload["exp"] = exp
    return f"{b64({'alg': 'HS256', 'typ': typ})}.{b64(payload)}.c2lnbmF0dXJl"


ACCESS = make_jwt(1_800_000_000, scope="com.atproto.access", sub="did:plc:xyz123abc")
REFRESH = make_jwt(1_900_000_000, typ="refresh+jwt", scope="com.atproto.refresh")

SEED_EXAMPLE = {
    "refreshJwt": REFRESH,
    "accessJwt": ACCESS,
    "handle": "alice.bsky.social",
    "did": "did:plc:xyz123abc",
    "email": "alice@example.com",
    "emailConfirmed": True,
    "emailAuthFactor": False,
    "active": True,
    "status": "deactivated",
}


def full_session() -> AtpSessionData:
    return AtpSessionData(
        refresh_jwt=REFRESH,
        access_jwt=ACCESS,
        handle="alice.bsky.social",
        did="did:plc:xyz123abc",
        email="alice@example.com",
        email_confirmed=True,
        email_auth_factor=False,
        active=True,
        status="deactivated",
    )


def test_file_has_the_nine_camelcase_keys_in_the_seed_order() -> None:
    document = json.loads(encode_session(full_session()))
    assert list(document) == [
        "refreshJwt",
        "accessJwt",
        "handle",
        "did",
        "email",
        "emailConfirmed",
        "emailAuthFactor",
        "active",
        "status",
    ]
    assert document == SEED_EXAMPLE


def test_file_is_pretty_printed_like_serde_json() -> None:
    text = encode_session(full_session()).decode()
    assert text.startswith('{\n  "refreshJwt": "')
    assert text.endswith('\n  "status": "deactivated"\n}')


def test_the_file_always_holds_the_seeds_nine_keys_with_null_for_none() -> None:
    session = AtpSessionData(
        refresh_jwt=REFRESH, access_jwt=ACCESS, handle="a.test", did="did:plc:a"
    )
    document = json.loads(encode_session(session))
    assert list(document) == [
        "refreshJwt",
        "accessJwt",
        "handle",
        "did",
        "email",
        "emailConfirmed",
        "emailAuthFactor",
        "active",
        "status",
    ]
    assert document["status"] is None and document["email"] is None
    assert '"status": null' in encode_session(session).decode()
    assert decode_session(encode_session(session), name="did_plc_a.json") == session


def test_rust_sdk_file_without_optional_keys_and_active_loads() -> None:
    raw = json.dumps(
        {"refreshJwt": REFRESH, "accessJwt": ACCESS, "handle": "a.test", "did": "did:plc:a"}
    ).encode()
    session = decode_session(raw, name="did_plc_a.json")
    assert session.active is True
    assert session.email is None and session.status is None and session.email_confirmed is None


def test_seed_example_with_null_status_loads() -> None:
    raw = json.dumps({**SEED_EXAMPLE, "status": None}).encode()
    session = decode_session(raw, name="x.json")
    assert session.status is None
    assert session.email_confirmed is True


def test_round_trip_through_bytes_is_identity() -> None:
    session = full_session()
    assert decode_session(encode_session(session), name="x.json") == session


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"handle": "a"}', "missing required key"),
        (json.dumps({**SEED_EXAMPLE, "active": "yes"}).encode(), "'active' has the wrong type"),
        (json.dumps({**SEED_EXAMPLE, "did": "not-a-did"}).encode(), "invalid DID"),
    ],
)
def test_corrupt_files_raise_a_named_error_naming_the_file(raw: bytes, fragment: str) -> None:
    with pytest.raises(CorruptSessionError) as info:
        decode_session(raw, name="did_plc_bad.json")
    assert "did_plc_bad.json" in str(info.value)
    assert fragment in str(info.value)
    assert info.value.__cause__ is None or not isinstance(
        info.value.__cause__, json.JSONDecodeError
    )


def test_repr_never_shows_a_token() -> None:
    session = full_session()
    text = repr(session) + str(session)
    assert ACCESS not in text and REFRESH not in text
    assert ACCESS[20:40] not in text
    assert "alice@example.com" not in text
    assert "did:plc:xyz123abc" in text


def test_redact_keeps_a_short_prefix_only() -> None:
    assert redact("abcdefghijkl") == "abcdef..."
    assert redact(None) == "<none>"


def test_did_maps_to_file_name_with_colons_replaced() -> None:
    assert name_for_did("did:plc:xyz123") == "did_plc_xyz123.json"
    assert name_for_did("did:web:example.com%3A8080") == "did_web_example.com%3A8080.json"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plc:xyz",
        "did:PLC:xyz",
        "did:plc:",
        "did:plc:xyz:",
        "did:plc:../../etc/passwd",
        "did:plc:a/b",
        "did:plc:a\x00b",
        "did:web:" + "a" * 2100,
        None,
        42,
    ],
)
def test_invalid_dids_are_rejected_before_any_file_access(bad: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        validate_did(bad)
    manager = PersistentSessionManager(tmp_path / "s", "http://127.0.0.1:9")
    with pytest.raises(ValueError):
        manager.load_session(bad)
    assert [p.name for p in (tmp_path / "s").iterdir()] == []
    manager.close()


@given(st.from_regex(r"did:[a-z]{1,8}:[a-zA-Z0-9._-]{1,40}", fullmatch=True))
def test_every_valid_did_maps_to_a_safe_store_name(did: str) -> None:
    name = name_for_did(did)
    assert "/" not in name and ":" not in name and not name.startswith(".")
    store = MemoryStore()
    store.put(name, b"x")  # validate_name accepts it


def test_expiry_properties_decode_exp_only() -> None:
    session = full_session()
    assert session.access_expires_at == 1_800_000_000.0
    assert session.refresh_expires_at == 1_900_000_000.0


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.!!!.c", f"x.{b64({'sub': 'no exp'})}.y", f"x.{b64({'exp': 'soon'})}.y"],
)
def test_malformed_tokens_give_none_or_a_named_error(token: str) -> None:
    assert token_expiry_or_none(token) is None
    with pytest.raises(MalformedTokenError):
        token_expiry(token)
    session = AtpSessionData(
        refresh_jwt=token or "x", access_jwt=token or "x", handle="h", did="did:plc:a"
    )
    assert session.access_expires_at is None


def test_malformed_token_error_does_not_leak_the_token() -> None:
    secret = "supersecretvalue.notbase64!!.sig"
    with pytest.raises(MalformedTokenError) as info:
        decode_claims(secret)
    assert "notbase64" not in str(info.value)


def test_session_string_round_trip_with_endpoint() -> None:
    session = full_session()
    text = session.to_session_string("https://pds.example.com")
    assert (
        text
        == f"alice.bsky.social:::did:plc:xyz123abc:::{ACCESS}:::{REFRESH}:::https://pds.example.com"
    )
    back = AtpSessionData.from_session_string(text)
    assert (back.handle, back.did, back.access_jwt, back.refresh_jwt) == (
        session.handle,
        session.did,
        session.access_jwt,
        session.refresh_jwt,
    )
    assert session_string_endpoint(text) == "https://pds.example.com"


def test_older_session_string_without_endpoint_parses() -> None:
    text = f"alice.test:::did:plc:a:::{ACCESS}:::{REFRESH}"
    assert AtpSessionData.from_session_string(text).did == "did:plc:a"
    assert session_string_endpoint(text) is None
    assert full_session().to_session_string().count(":::") == 3


@pytest.mark.parametrize("bad", ["", "a:::b", "a:::b:::c:::d:::e:::f", ":::did:plc:a:::x:::y"])
def test_bad_session_strings_raise_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        AtpSessionData.from_session_string(bad)


def test_event_values_are_the_documented_strings() -> None:
    assert {event.name: event.value for event in AtpSessionEvent} == {
        "CREATE": "create",
        "CREATE_FAILED": "create-failed",
        "UPDATE": "update",
        "EXPIRED": "expired",
        "DELETE": "delete",
        "NETWORK_ERROR": "network-error",
        "EXPIRING": "expiring",  # additive: the absolute end is near
    }
