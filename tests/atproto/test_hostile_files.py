"""Hostile and unlucky session entries: each is a named error or a skipped entry, never a crash.

Deep nesting, endless digits and deeply nested token payloads; one bad entry
among good ones (oversized, undecryptable, foreign plaintext); DIDs that used
to share a file name; DIDs too long for a name.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest

from sessionkeeper.atproto import AtpSessionData, PersistentSessionManager, name_for_did
from sessionkeeper.atproto.codec import decode_session, encode_session
from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.jwt import token_expiry_or_none
from sessionkeeper.atproto.listing import stored_oauth_sessions, stored_sessions
from sessionkeeper.atproto.oauth.session import (
    OAuthSession,
    decode_oauth,
    encode_oauth,
    oauth_name_for_did,
)
from sessionkeeper.stores import DirectoryStore, EncryptedStore, MemoryStore, generate_key
from sessionkeeper.stores.base import MAX_NAME_BYTES, validate_name

DEEP = b"[" * 100_000
LONG_NUMBER = b'{"did": ' + b"9" * 5000 + b"}"


def token(payload: bytes) -> str:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part(b'{}')}.{part(payload)}.c2ln"


GOOD = token(b'{"exp": 4102444800}')


def session(did: str, access: str = GOOD) -> AtpSessionData:
    return AtpSessionData(refresh_jwt=GOOD, access_jwt=access, handle="a.test", did=did)


def oauth(did: str) -> OAuthSession:
    return OAuthSession(
        did=did,
        issuer="https://issuer.test",
        token_endpoint="https://issuer.test/token",
        pds_url="https://pds.test",
        client_id="https://app.test/client.json",
        access_token=GOOD,
        dpop_jwk={"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "d"},
        refresh_token="refresh-token",
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(DEEP, "nests too deeply"), (LONG_NUMBER, "number too long")],
    ids=["100k-brackets", "5000-digits"],
)
def test_deep_or_endless_json_is_a_named_corrupt_session(raw: bytes, reason: str) -> None:
    with pytest.raises(CorruptSessionError, match=reason):
        decode_session(raw, name="did_plc_a.json")
    with pytest.raises(CorruptSessionError, match=reason):
        decode_oauth(raw, name="oauth_did_plc_a.json")


@pytest.mark.parametrize("raw", [DEEP, LONG_NUMBER], ids=["100k-brackets", "5000-digits"])
def test_listing_and_loading_survive_a_hostile_file(tmp_path: Path, raw: bytes) -> None:
    store = DirectoryStore(tmp_path)
    store.put(name_for_did("did:plc:good"), encode_session(session("did:plc:good")))
    store.put(name_for_did("did:plc:bad"), raw)
    with PersistentSessionManager(None, "http://127.0.0.1:9", store=store) as manager:
        assert manager.list_sessions() == ["did:plc:good"]
        with pytest.raises(CorruptSessionError, match=r"did_plc_bad\.json"):
            manager.load_session("did:plc:bad")


@pytest.mark.parametrize(
    "payload",
    [
        b'{"exp": ' + b"[" * 100_000 + b"}",
        b'{"exp": 1' + b"0" * 400 + b"}",
        b'{"exp": Infinity}',
        b'{"exp": NaN}',
    ],
    ids=["deeply-nested", "exp-beyond-float", "infinite", "nan"],
)
def test_a_hostile_token_payload_never_breaks_needs_refresh(payload: bytes) -> None:
    hostile = token(payload)
    assert token_expiry_or_none(hostile) is None
    store = MemoryStore()
    with PersistentSessionManager(None, "http://127.0.0.1:9", store=store) as manager:
        manager.store_session(session("did:plc:a", access=hostile))
        assert manager.needs_refresh() is False  # no readable expiry: never due


def test_one_bad_entry_never_hides_the_other_sessions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = generate_key()
    inner = DirectoryStore(tmp_path)
    store = EncryptedStore(inner, key)
    for did in ("did:plc:a", "did:plc:z"):
        store.put(name_for_did(did), encode_session(session(did)))
        store.put(oauth_name_for_did(did), encode_oauth(oauth(did)))
    (tmp_path / "did_plc_huge.json").write_bytes(b" " * (2 * 1024 * 1024))
    (tmp_path / "oauth_did_plc_huge.json").write_bytes(b" " * (2 * 1024 * 1024))
    EncryptedStore(inner, generate_key()).put("did_plc_otherkey.json", b"{}")
    EncryptedStore(inner, generate_key()).put("oauth_did_plc_otherkey.json", b"{}")
    inner.put("did_plc_plaintext.json", encode_session(session("did:plc:plaintext")))
    inner.put("oauth_did_plc_plaintext.json", encode_oauth(oauth("did:plc:plaintext")))
    with caplog.at_level(logging.WARNING):
        assert [s.did for s in stored_sessions(store)] == ["did:plc:a", "did:plc:z"]
        assert [s.did for s in stored_oauth_sessions(store)] == ["did:plc:a", "did:plc:z"]
    for bad in ("huge", "otherkey", "plaintext"):
        assert f"did_plc_{bad}.json" in caplog.text
        assert f"oauth_did_plc_{bad}.json" in caplog.text


def test_dids_that_used_to_share_a_name_get_their_own_files() -> None:
    assert name_for_did("did:plc:a_b") != name_for_did("did:plc:a:b")
    assert oauth_name_for_did("did:plc:a_b") != oauth_name_for_did("did:plc:a:b")
    assert name_for_did("did:plc:xyz123") == "did_plc_xyz123.json"  # the seed's files load
    assert name_for_did("did:plc:a:b") == "did_plc_a_b.json"
    store = MemoryStore()
    for did in ("did:plc:a_b", "did:plc:a:b", "did:web:a_b.test", "did:web:a:b.test"):
        store.put(name_for_did(did), encode_session(session(did)))
    assert len(store.names()) == 4
    assert [s.did for s in stored_sessions(store)] == sorted(
        ["did:plc:a_b", "did:plc:a:b", "did:web:a_b.test", "did:web:a:b.test"]
    )


def test_a_file_holding_another_dids_session_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    # What an older release wrote for did:plc:a_b: now the name of did:plc:a:b.
    store.put("did_plc_a_b.json", encode_session(session("did:plc:a_b")))
    with caplog.at_level(logging.WARNING):
        assert stored_sessions(store) == []
    assert "holds the session of did:plc:a_b" in caplog.text


def test_a_did_web_longer_than_the_name_limit_maps_to_a_digest_suffixed_name(
    tmp_path: Path,
) -> None:
    long_a = "did:web:" + "a" * 1500 + ".example"
    long_b = "did:web:" + "a" * 1500 + ".example2"
    names = {name_for_did(long_a), name_for_did(long_b), oauth_name_for_did(long_a)}
    assert len(names) == 3
    for name in names:
        assert len(name.encode()) <= MAX_NAME_BYTES
        validate_name(name)
    store = DirectoryStore(tmp_path)
    store.put(name_for_did(long_a), encode_session(session(long_a)))
    store.put(oauth_name_for_did(long_a), encode_oauth(oauth(long_a)))
    assert [s.did for s in stored_sessions(store)] == [long_a]
    assert [s.did for s in stored_oauth_sessions(store)] == [long_a]
    with PersistentSessionManager(None, "http://127.0.0.1:9", store=store) as manager:
        loaded = manager.load_session(long_a)
        assert loaded is not None and loaded.did == long_a
    assert json.loads((tmp_path / name_for_did(long_a)).read_bytes())["did"] == long_a
