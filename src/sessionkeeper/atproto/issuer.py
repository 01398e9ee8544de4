"""Which service issued a stored app-password session: its tokens go back there and nowhere else.

The session file keeps the seed's nine keys, so the issuing service is a small
record beside it, written with the session by every createSession. A login
reuses a stored session only when this record names the service it is asked to
log in at; a session without one (stored by an older version or another tool)
is never reused, since sending its tokens to a guessed host could hand them to
a server that did not issue them.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sessionkeeper.atproto.codec import did_name
from sessionkeeper.atproto.sidecar import RECORD_SUFFIX, decode_record
from sessionkeeper.core.flow import Flow, Get, Put

logger = logging.getLogger(__name__)

ISSUER_PREFIX = "issuer_"
ISSUER_SUFFIX = RECORD_SUFFIX


def issuer_name(did: str) -> str:
    """The issuer record of ``did``'s app-password session."""
    return did_name(did, ISSUER_PREFIX, ISSUER_SUFFIX)


def encode_issuer(service_url: str) -> bytes:
    """Serialise a record."""
    return json.dumps({"service": service_url.rstrip("/")}).encode()


def decode_issuer(raw: bytes | None) -> str | None:
    """The service a record names, or ``None`` when absent or unreadable (logged)."""
    return decode_record(raw, _service, "session issuer")


def _service(data: Any) -> str:
    service = data["service"]
    if not isinstance(service, str) or not service.startswith(("http://", "https://")):
        raise ValueError("service is not an http(s) URL")
    return service


def same_service(a: str, b: str) -> bool:
    """Whether two service URLs name the same service (a trailing slash aside)."""
    return a.rstrip("/") == b.rstrip("/")


def read_issuer(did: str) -> Flow[str | None]:
    """The recorded issuer of ``did``'s session, if any."""
    raw: bytes | None = yield Get(issuer_name(did))
    return decode_issuer(raw)


def record_issuer(did: str, service_url: str) -> Flow[None]:
    """Note that ``service_url`` issued ``did``'s stored session."""
    yield Put(issuer_name(did), encode_issuer(service_url))
