"""The session file format and the mapping from a DID to a store name.

``did:plc:xyz123`` is stored as ``did_plc_xyz123.json`` holding the camelCase
document of `AtpSessionData` (all nine keys, ``null`` included),
pretty-printed with two-space indents as the Rust SDK's
``serde_json::to_string_pretty`` writes it.

The name mapping is injective: ``:`` becomes ``_`` as in the Rust SDK, and a
``_`` of the DID itself becomes ``~`` (a character no DID holds), so
``did:plc:a_b`` (``did_plc_a~b.json``) and ``did:plc:a:b`` (``did_plc_a_b.json``)
never share a file, while every DID without ``_`` (all ``did:plc`` ones) keeps
the seed's name. A DID whose name would pass the store's name limit keeps a
readable prefix and ends in ``+`` and a SHA-256 digest of the whole DID.
"""

from __future__ import annotations

import hashlib
import json
import re

from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.types import AtpSessionData
from sessionkeeper.stores.base import MAX_NAME_BYTES

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


_ESCAPES = str.maketrans({"_": "~", ":": "_"})
#: Hex digits of the SHA-256 digest that ends a long DID's name (128 bits).
DIGEST_CHARS = 32
DIGEST_MARK = "+"


def did_name(did: str, prefix: str, suffix: str) -> str:
    """The injective store name ``prefix + <escaped DID> + suffix`` of a valid ``did``.

    Fits `MAX_NAME_BYTES` for every DID up
    to `MAX_DID_LENGTH`; ``did`` is validated first (``ValueError``).
    """
    validate_did(did)
    stem = did.translate(_ESCAPES)
    if len(prefix) + len(stem) + len(suffix) <= MAX_NAME_BYTES:
        return prefix + stem + suffix
    digest = hashlib.sha256(did.encode("ascii")).hexdigest()[:DIGEST_CHARS]
    keep = MAX_NAME_BYTES - len(prefix) - len(suffix) - len(DIGEST_MARK) - DIGEST_CHARS
    return prefix + stem[:keep] + DIGEST_MARK + digest + suffix


def name_for_did(did: str) -> str:
    """Return the store name of ``did``'s session: ``did_plc_xyz123.json`` for ``did:plc:xyz123``.

    See the module docstring for ``_`` in DIDs and for DIDs too long for a name.
    """
    return did_name(did, "", SESSION_SUFFIX)


def is_session_name(name: str) -> bool:
    """Whether ``name`` is shaped like a password session's store name."""
    return name.startswith(SESSION_PREFIX) and name.endswith(SESSION_SUFFIX)


def parse_json_document(data: bytes, *, what: str, name: str) -> object:
    """Parse stored JSON; raise `CorruptSessionError` naming ``what name`` and why.

    Deep nesting (``RecursionError``) and integers of thousands of digits
    (``ValueError``) are corrupt files too, never a traceback.
    """
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        reason = f"is not UTF-8 text (byte {exc.start})"
    except json.JSONDecodeError as exc:
        reason = f"is not valid JSON (line {exc.lineno}, column {exc.colno})"
    except RecursionError:
        reason = "nests too deeply to be a session"
    except ValueError:
        reason = "holds a number too long to be a session's"
    raise CorruptSessionError(f"{what} {name} {reason}; log in again", name=name)


def encode_session(session: AtpSessionData) -> bytes:
    """Serialise ``session`` to the file format's bytes."""
    return json.dumps(session.to_json_dict(), indent=2, ensure_ascii=False).encode("utf-8")


def decode_session(data: bytes, *, name: str) -> AtpSessionData:
    """Parse file bytes; raise `CorruptSessionError` naming ``name`` if invalid."""
    document = parse_json_document(data, what="session file", name=name)
    session = AtpSessionData.from_json_dict(document, where=f"session file {name}")
    try:
        validate_did(session.did)
    except ValueError:
        raise CorruptSessionError(
            f"session file {name} holds an invalid DID {session.did[:60]!r}", name=name
        ) from None
    return session


def check_name(name: str, did: str, expected: str, what: str) -> None:
    """Raise `CorruptSessionError` unless ``name`` is ``expected``, the name of ``did``."""
    if expected != name:
        raise CorruptSessionError(
            f"{what} {name} holds the session of {did} (stored as {expected})", name=name
        )


def load_named_session(data: bytes, *, name: str) -> AtpSessionData:
    """Decode a session file and check it is the one its name promises.

    What listings, ``store doctor``, ``migrate`` and ``prune`` all accept: a
    file holding another DID's session than its name says is corrupt.
    """
    session = decode_session(data, name=name)
    check_name(name, session.did, name_for_did(session.did), "session file")
    return session
