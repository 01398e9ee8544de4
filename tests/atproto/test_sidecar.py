"""Records beside a session are read tolerantly: a hostile one is ignored, never raised."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sessionkeeper.atproto.backoff import decode_wait, refresh_wait_name
from sessionkeeper.atproto.intent import decode_intent, intent_name
from sessionkeeper.atproto.issuer import decode_issuer

HUGE = "1" + "0" * 400  # an integer JSON allows and no float holds


@pytest.mark.parametrize(
    ("decode", "raw"),
    [
        (decode_intent, b'{"at": ' + HUGE.encode() + b', "digest": "d"}'),
        (decode_intent, b'{"at": true, "digest": "d"}'),
        (decode_intent, b'{"at": 1.0, "digest": 7}'),
        (decode_wait, b'{"until": ' + HUGE.encode() + b"}"),
        (decode_wait, b'{"until": -' + HUGE.encode() + b"}"),
        (decode_wait, b'{"until": "soon"}'),
        (decode_issuer, b'{"service": "ftp://x"}'),
        (decode_issuer, b"[" * 100_000),
    ],
)
def test_an_unreadable_record_is_ignored(
    decode: Callable[[bytes | None], Any], raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    assert decode(raw) is None
    assert "ignoring an unreadable" in caplog.text


def test_readable_records_and_their_names() -> None:
    intent = decode_intent(b'{"at": 5, "digest": "d"}')
    assert intent is not None and (intent.at, intent.digest) == (5.0, "d")
    wait = decode_wait(b'{"until": 7.5}')
    assert wait is not None and (wait.until, wait.reason) == (7.5, "")
    assert decode_issuer(b'{"service": "https://pds.example"}') == "https://pds.example"
    assert intent_name("oauth_did_plc_x.json", "did:plc:x") == "intent_oauth_did_plc_x.json"
    assert refresh_wait_name("did_plc_x.json", "did:plc:x") == "wait_did_plc_x.json"
