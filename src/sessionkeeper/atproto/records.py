"""The small records kept beside an ATProto session, removed with it.

A refresh's intent, a server's rate-limit wait and (app passwords) the issuing
service live in their own store entries. When a session is removed (logout,
a dead verdict, pruning, ``clear_session``) its records go too, so a store
does not keep one orphan per account that ever refreshed.
"""

from __future__ import annotations

from sessionkeeper.atproto.backoff import refresh_wait_name
from sessionkeeper.atproto.intent import intent_name
from sessionkeeper.atproto.issuer import issuer_name
from sessionkeeper.core.flow import Delete, Flow


def records_beside(session_name: str, did: str) -> list[str]:
    """The store names of the records that belong to the session stored as ``session_name``."""
    names = [intent_name(session_name, did), refresh_wait_name(session_name, did)]
    if session_name.startswith("did_"):  # an app-password session records its issuer
        names.append(issuer_name(did))
    return names


def remove_session(session_name: str, did: str) -> Flow[bool]:
    """Delete the session stored as ``session_name`` and the records beside it."""
    removed: bool = yield Delete(session_name)
    for name in records_beside(session_name, did):
        yield Delete(name)
    return removed
