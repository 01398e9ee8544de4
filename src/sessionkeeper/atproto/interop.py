"""Moving sessions in and out: Rust SDK session directories, MarshalX strings, other stores.

These are the migration tools: a Rust SDK ``sessions/`` directory imports
into any store byte for byte, sessions copy between stores (for example from
files into an encrypted or Redis store), and a MarshalX session string
becomes a stored session.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sessionkeeper.atproto.codec import SESSION_SUFFIX, decode_session, encode_session, name_for_did
from sessionkeeper.atproto.errors import CorruptSessionError
from sessionkeeper.atproto.listing import stored_sessions
from sessionkeeper.atproto.types import AtpSessionData, parse_session_string
from sessionkeeper.stores.base import MAX_VALUE_BYTES, Store

logger = logging.getLogger(__name__)


def _store_one(store: Store, session: AtpSessionData, raw: bytes, *, overwrite: bool) -> bool:
    name = name_for_did(session.did)
    with store.lock(name):
        if not overwrite and store.get(name) is not None:
            logger.info("not importing %s: the store already holds a session for it", session.did)
            return False
        store.put(name, raw)
    return True


def import_session_dir(
    source: str | os.PathLike[str], store: Store, *, overwrite: bool = False
) -> list[str]:
    """Copy the session files of a Rust SDK ``session_dir`` into ``store``; return the DIDs.

    Files are validated and kept byte for byte; corrupt ones and files whose
    name does not match their DID are skipped with a warning. Sessions the
    store already has are kept unless ``overwrite``.
    """
    imported = []
    for path in sorted(Path(source).expanduser().glob(f"*{SESSION_SUFFIX}")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.stat().st_size > MAX_VALUE_BYTES:
            logger.warning("skipping %s: too large to be a session", path.name)
            continue
        raw = path.read_bytes()
        try:
            session = decode_session(raw, name=path.name)
        except CorruptSessionError as exc:
            logger.warning("skipping %s", exc)
            continue
        if name_for_did(session.did) != path.name:
            logger.warning("skipping %s: it holds the session of %s", path.name, session.did)
            continue
        if _store_one(store, session, raw, overwrite=overwrite):
            imported.append(session.did)
    return imported


def copy_sessions(source: Store, target: Store, *, overwrite: bool = False) -> list[str]:
    """Copy every valid session from ``source`` to ``target``; return the DIDs copied."""
    copied = []
    for session in stored_sessions(source):
        if _store_one(target, session, encode_session(session), overwrite=overwrite):
            copied.append(session.did)
    return copied


def import_session_string(
    text: str, store: Store, *, overwrite: bool = True
) -> tuple[AtpSessionData, str | None]:
    """Store the session of a MarshalX session string; return it and its PDS endpoint.

    A string of another shape, or whose endpoint is not an http(s) URL with a
    host (the tokens would be sent there), raises `SessionStringError` and
    stores nothing.
    """
    _, did, _, _, endpoint = parse_session_string(text)
    name_for_did(did)  # ValueError for a string that does not carry a valid DID
    session = AtpSessionData.from_session_string(text)
    if not _store_one(store, session, encode_session(session), overwrite=overwrite):
        raise FileExistsError(f"the store already holds a session for {did}")
    return session, endpoint
