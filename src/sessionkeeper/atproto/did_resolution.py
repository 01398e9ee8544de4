"""Find an account's PDS from its DID document, so tokens go only to the host that holds them.

A thin blocking face over the identity resolution OAuth sign-in uses
(`IdentityResolver`): ``did:plc``
documents come from the PLC directory, ``did:web`` ones from the host's
``/.well-known/did.json``; the PDS is the ``#atproto_pds`` service.
"""

from __future__ import annotations

from sessionkeeper.atproto.errors import OAuthResolutionError, SessionError
from sessionkeeper.atproto.identity import IdentityResolver
from sessionkeeper.atproto.variables import PLC_DIRECTORY_ENV, plc_directory
from sessionkeeper.core.flow import BlockingDriver
from sessionkeeper.http_limits import bounded_client
from sessionkeeper.stores.memory import MemoryStore

#: The PLC directory; ``ATP_PLC_DIRECTORY`` points elsewhere (a private one, a test's).
DEFAULT_PLC_URL = "https://plc.directory"
PLC_URL_ENV = PLC_DIRECTORY_ENV
RESOLVE_TIMEOUT = 10.0
#: A DID document is small; anything bigger is not one.
MAX_DID_DOCUMENT = 256 * 1024


class DidResolutionError(SessionError):
    """The DID's document could not be fetched or names no ATProto PDS."""


def resolve_pds(did: str, *, plc_url: str | None = None, timeout: float = RESOLVE_TIMEOUT) -> str:
    """The PDS URL of ``did``, read from its DID document."""
    plc = plc_directory(plc_url)
    resolver = IdentityResolver(plc_directory=plc)
    with bounded_client(timeout, max_body=MAX_DID_DOCUMENT) as client:
        try:
            # The flow does no store I/O; the driver still wants a store to hand it.
            identity = BlockingDriver(MemoryStore(), client).run(resolver.resolve_did(did))
        except OAuthResolutionError as exc:
            raise DidResolutionError(str(exc)) from exc
    return identity.pds_url


__all__ = ["DEFAULT_PLC_URL", "PLC_URL_ENV", "DidResolutionError", "resolve_pds"]
