"""JWT ``exp`` decoding lives once in the core; hostile payloads are malformed tokens,
never crashes; the ATProto module keeps its names and its error class."""

from __future__ import annotations

import base64
import json

import pytest

from sessionkeeper import jwt as core
from sessionkeeper.atproto import MalformedTokenError as AtprotoMalformedTokenError
from sessionkeeper.atproto import jwt as atproto_jwt


def _token(payload: bytes) -> str:
    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part(b'{}')}.{part(payload)}.sig"


def test_a_deeply_nested_payload_is_a_malformed_token_not_a_recursion_error() -> None:
    deep = _token(b'{"exp": 1, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert core.token_expiry_or_none(deep) is None
    with pytest.raises(core.MalformedTokenError):
        core.decode_claims(deep)
    with pytest.raises(AtprotoMalformedTokenError):
        atproto_jwt.token_expiry(deep)


def test_an_oversized_token_is_refused_before_decoding() -> None:
    huge = _token(json.dumps({"exp": 5, "pad": "x" * core.MAX_TOKEN_CHARS}).encode())
    assert core.token_expiry_or_none(huge) is None


def test_the_atproto_module_reexports_the_core_decoder() -> None:
    token = _token(b'{"exp": 1700000000}')
    assert atproto_jwt.token_expiry_or_none is core.token_expiry_or_none
    assert atproto_jwt.token_expiry(token) == core.token_expiry(token) == 1_700_000_000.0
    assert atproto_jwt.decode_claims(token) == {"exp": 1_700_000_000}
    assert atproto_jwt.redact(token) == f"{token[:6]}..."
