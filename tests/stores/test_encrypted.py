"""EncryptedStore: real AES-GCM, fresh nonces, names bound, named errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionkeeper.stores import (
    DecryptionError,
    DirectoryStore,
    EncryptedStore,
    MemoryStore,
    MissingKeyError,
    generate_key,
    open_store,
)


def test_bytes_at_rest_are_not_the_plaintext(tmp_path: Path) -> None:
    inner = DirectoryStore(tmp_path)
    EncryptedStore(inner, generate_key()).put("k", b'{"accessJwt": "eyJsecret"}')
    raw = (tmp_path / "k").read_bytes()
    assert b"eyJsecret" not in raw
    assert raw.startswith(b"SKE1")


def test_every_write_uses_a_fresh_nonce() -> None:
    inner = MemoryStore()
    store = EncryptedStore(inner, generate_key())
    store.put("k", b"same")
    first = inner.get("k")
    store.put("k", b"same")
    assert inner.get("k") != first
    assert store.get("k") == b"same"


def test_a_wrong_key_raises_a_named_error_never_garbage() -> None:
    inner = MemoryStore()
    EncryptedStore(inner, generate_key()).put("k", b"v")
    with pytest.raises(DecryptionError, match="wrong key or tampered"):
        EncryptedStore(inner, generate_key()).get("k")


def test_tampered_bytes_raise() -> None:
    inner = MemoryStore()
    key = generate_key()
    EncryptedStore(inner, key).put("k", b"value")
    blob = bytearray(inner.get("k") or b"")
    blob[-1] ^= 1
    inner.put("k", bytes(blob))
    with pytest.raises(DecryptionError):
        EncryptedStore(inner, key).get("k")


def test_a_value_moved_to_another_name_does_not_open() -> None:
    inner = MemoryStore()
    key = generate_key()
    EncryptedStore(inner, key).put("alice", b"alice's tokens")
    inner.put("bob", inner.get("alice") or b"")
    with pytest.raises(DecryptionError, match="'bob'"):
        EncryptedStore(inner, key).get("bob")


def test_plaintext_left_in_the_inner_store_is_reported() -> None:
    inner = MemoryStore()
    inner.put("k", b'{"plain": true}')
    with pytest.raises(DecryptionError, match="not encrypted"):
        EncryptedStore(inner, generate_key()).get("k")


def test_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = generate_key()
    monkeypatch.setenv("SESSIONKEEPER_KEY", key)
    inner = MemoryStore()
    EncryptedStore(inner).put("k", b"v")
    assert EncryptedStore(inner, key).get("k") == b"v"


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SESSIONKEEPER_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="SESSIONKEEPER_KEY"):
        EncryptedStore(MemoryStore())


@pytest.mark.parametrize("bad", ["short", "z" * 64, ""])
def test_malformed_keys_are_refused(bad: str) -> None:
    with pytest.raises(MissingKeyError):
        EncryptedStore(MemoryStore(), bad if bad else b"")


def test_hex_and_base64_keys_are_equivalent() -> None:
    raw = bytes(range(32))
    inner = MemoryStore()
    EncryptedStore(inner, raw.hex()).put("k", b"v")
    import base64

    assert EncryptedStore(inner, base64.urlsafe_b64encode(raw).decode()).get("k") == b"v"
    assert EncryptedStore(inner, raw).get("k") == b"v"


def test_store_url_encrypt_flag_wraps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONKEEPER_KEY", generate_key())
    store = open_store(f"dir:{tmp_path}?encrypt=1")
    assert isinstance(store, EncryptedStore)
    store.put("k", b"v")
    assert (tmp_path / "k").read_bytes().startswith(b"SKE1")
