"""JWT ``exp`` decoding: hostile payloads are malformed tokens, never crashes, and the one
``MalformedTokenError`` is a ``SessionError`` (and a ``ValueError``)."""

from __future__ import annotations

import base64
import json

import pytest

from sessionkeeper.atproto import MalformedTokenError, SessionError, jwt


def _token(payload: bytes) -> str:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part(b'{}')}.{part(payload)}.sig"


def test_a_deeply_nested_payload_is_a_malformed_token_not_a_recursion_error() -> None:
    deep = _token(b'{"exp": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert jwt.token_expiry_or_none(deep) is None
    with pytest.raises(MalformedTokenError):
        jwt.decode_claims(deep)
    with pytest.raises(SessionError):
        jwt.token_expiry(deep)
    with pytest.raises(ValueError):
        jwt.token_expiry(deep)


def test_an_oversized_token_is_refused_before_decoding() -> None:
    huge = _token(json.dumps({"exp": 5, "pad": "x" * jwt.MAX_TOKEN_CHARS}).encode())
    assert jwt.token_expiry_or_none(huge) is None
    with pytest.raises(MalformedTokenError, match="more than"):
        jwt.decode_claims(huge)


def test_a_good_token_decodes_its_exp() -> None:
    token = _token(b'{"exp": 1700000000}')
    assert jwt.token_expiry(token) == jwt.token_expiry_or_none(token) == 1_700_000_000.0
