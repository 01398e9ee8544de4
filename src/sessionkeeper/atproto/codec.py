"""The session file format and the mapping from a DID to a store name.

``did:plc:xyz123`` is stored as ``did_plc_xyz123.json`` holding the camelCase
document of :class:`AtpSessionData`, pretty-printed with two-space indents as
the Rust SDK's ``serde_json::to_string_pretty`` writes it.
"""

from __future__ import annotations

import json
import re

from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.types import AtpSessionData

#: The ATProto DID syntax: ``did:<lowercase method>:<id>``, id chars ``A-Za-z0-9._:%-``,
#: not ending in ``:`` or ``%``, at most 2 KiB.
DID_RE = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
MAX_DID_LENGTH = 2048
SESSION_PREFIX = "did_"
SESSION_SUFFIX = ".json"


def validate_did(did: object) -> str:
    """Return ``did`` if it has the ATProto DID syntax, else raise ``ValueError``."""
    if not isinstance(did, str):
        raise ValueError(f"a DID is a string, not {type(did).__name__}")
    if len(did) > MAX_DID_LENGTH or not DID_RE.match(did):
        raise ValueError(f"{did[:60]!r} is not a valid DID (expected did:<method>:<id>)")
    return did


def name_for_did(did: str) -> str:
    """Return the store name of ``did``'s session: ':' and '/' become '_', plus ``.json``."""
    validate_did(did)
    return did.replace(":", "_").replace("/", "_") + SESSION_SUFFIX


def encode_session(session: AtpSessionData) -> bytes:
    """Serialise ``session`` to the file format's bytes."""
    return json.dumps(session.to_json_dict(), indent=2, ensure_ascii=False).encode("utf-8")


def decode_session(data: bytes, *, name: str) -> AtpSessionData:
    """Parse file bytes; raise :class:`CorruptSessionError` naming ``name`` if invalid."""
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptSessionError(
            f"session file {name} is not UTF-8 text (byte {exc.start}); log in again",
            name=name,
        ) from None
    except json.JSONDecodeError as exc:
        raise CorruptSessionError(
            f"session file {name} is not valid JSON (line {exc.lineno}, column {exc.colno})",
            name=name,
        ) from None
    session = AtpSessionData.from_json_dict(document, where=f"session file {name}")
    try:
        validate_did(session.did)
    except ValueError:
        raise CorruptSessionError(
            f"session file {name} holds an invalid DID {session.did[:60]!r}", name=name
        ) from None
    return session
