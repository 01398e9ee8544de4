"""ATProto identity: handle -> DID -> DID document -> PDS, each step checked.

A handle resolves through a resolver service's
``com.atproto.identity.resolveHandle`` when one is configured, else through
DNS TXT ``_atproto.<handle>`` and then ``https://<handle>/.well-known/atproto-did``.
A DID resolves through the PLC directory (``did:plc``) or its own host
(``did:web``). The document must name the handle asked for (``alsoKnownAs``)
and a ``#atproto_pds`` service. The steps are sans-I/O flows (see
`sessionkeeper.core.flow`), so the blocking and the asyncio
client share every decision.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

from sessionkeeper.atproto.codec import validate_did
from sessionkeeper.atproto.errors import OAuthResolutionError
from sessionkeeper.atproto.oauth.discovery import fetch_json, txt_records
from sessionkeeper.atproto.oauth.metadata import fetch_issuer_of
from sessionkeeper.atproto.refresh import pds_endpoint
from sessionkeeper.core.flow import Flow, NetworkFailure, Send
from sessionkeeper.redaction import origin

#: The handle syntax of the ATProto spec: DNS labels, a TLD that does not start with a digit.
_HANDLE_RE = re.compile(
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$"
)
_MAX_HANDLE = 253


def normalize_handle(value: str) -> str:
    """``value`` as a handle (``@`` and case dropped); ``OAuthResolutionError`` if it is none."""
    handle = value.strip().removeprefix("@").lower()
    if len(handle) > _MAX_HANDLE or not _HANDLE_RE.match(handle):
        raise OAuthResolutionError(f"{value[:80]!r} is not a handle, a DID or an https URL")
    return handle


def is_did(value: str) -> bool:
    """Whether ``value`` has the DID syntax."""
    try:
        validate_did(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Identity:
    """An account's verified identity: its DID, handle (if verified) and PDS."""

    did: str
    handle: str | None
    pds_url: str
    document: dict[str, Any] = field(repr=False, compare=False)


def document_handles(document: dict[str, Any]) -> list[str]:
    """The handles a DID document claims (``at://`` entries of ``alsoKnownAs``), lowercased."""
    aka = document.get("alsoKnownAs")
    if not isinstance(aka, list):
        return []
    return [item[5:].lower() for item in aka if isinstance(item, str) and item.startswith("at://")]


def did_document_url(did: str, plc_directory: str) -> str:
    """Where the document of ``did`` lives: the PLC directory, or a did:web host."""
    if did.startswith("did:plc:"):
        return f"{plc_directory.rstrip('/')}/{quote(did, safe=':')}"
    if did.startswith("did:web:"):
        # Path segments follow the host after ':'; a port is written %3A.
        encoded_host, *path = did[len("did:web:") :].split(":")
        host = unquote(encoded_host)
        if path or "/" in host:
            raise OAuthResolutionError(f"{did}: did:web with a path is not supported by ATProto")
        scheme = "http" if host.split(":")[0] == "localhost" else "https"
        return f"{scheme}://{host}/.well-known/did.json"
    raise OAuthResolutionError(f"{did}: ATProto supports did:plc and did:web only")


def _did_from_txt(records: list[str]) -> str | None:
    found = {record[4:].strip() for record in records if record.startswith("did=")}
    if len(found) != 1:
        return None  # none, or conflicting records: the spec says fail
    did = found.pop()
    return did if is_did(did) else None


@dataclass(frozen=True, slots=True)
class IdentityResolver:
    """Resolves handles and DIDs; ``handle_resolver`` is an XRPC service URL or ``None``."""

    handle_resolver: str | None = None
    plc_directory: str = "https://plc.directory"

    def resolve_handle(self, handle: str) -> Flow[str]:
        """The DID that ``handle`` points to."""
        if self.handle_resolver is not None:
            query = urlencode({"handle": handle})
            url = f"{self.handle_resolver.rstrip('/')}/xrpc/com.atproto.identity.resolveHandle"
            body = yield from fetch_json(f"{url}?{query}", f"resolving handle {handle}")
            did = body.get("did")
            if not isinstance(did, str) or not is_did(did):
                raise OAuthResolutionError(f"resolving handle {handle}: no valid DID answered")
            return did
        records = yield from txt_records(f"_atproto.{handle}")
        did = _did_from_txt(records)
        if did is not None:
            return did
        url = f"https://{handle}/.well-known/atproto-did"
        response = yield Send("GET", url)
        if isinstance(response, NetworkFailure):
            raise OAuthResolutionError(
                f"handle {handle} has no _atproto TXT record and {url} is unreachable "
                f"({response.reason})"
            )
        text = response.text.strip() if response.status_code == 200 else ""
        if not is_did(text):
            raise OAuthResolutionError(
                f"handle {handle} has no _atproto TXT record and {url} answered "
                f"HTTP {response.status_code} without a DID"
            )
        return text

    def resolve_did(self, did: str) -> Flow[Identity]:
        """The document of ``did`` and the PDS it names (handle not yet verified)."""
        url = did_document_url(did, self.plc_directory)
        document = yield from fetch_json(url, f"resolving {did}")
        if document.get("id") != did:
            raise OAuthResolutionError(f"the DID document at {url} is not the document of {did}")
        pds = pds_endpoint(document)
        if pds is None:
            raise OAuthResolutionError(f"the DID document of {did} names no #atproto_pds service")
        handles = document_handles(document)
        return Identity(did, handles[0] if handles else None, pds, document)

    def resolve(self, handle_or_did: str) -> Flow[Identity]:
        """Resolve a handle or a DID both ways: the document must claim the handle."""
        if is_did(handle_or_did):
            identity = yield from self.resolve_did(handle_or_did)
            claimed = identity.handle
            if claimed is None:
                return identity
            try:
                back = yield from self.resolve_handle(normalize_handle(claimed))
            except OAuthResolutionError:
                back = None
            # A handle that does not point back is not the account's handle.
            return identity if back == identity.did else _without_handle(identity)
        handle = normalize_handle(handle_or_did)
        did = yield from self.resolve_handle(handle)
        identity = yield from self.resolve_did(did)
        if handle not in document_handles(identity.document):
            raise OAuthResolutionError(
                f"handle {handle} resolves to {did}, but the DID document does not claim it "
                f"(it claims {', '.join(document_handles(identity.document)) or 'no handle'})"
            )
        return Identity(did, handle, identity.pds_url, identity.document)


def _without_handle(identity: Identity) -> Identity:
    return Identity(identity.did, None, identity.pds_url, identity.document)


def verify_issuer_flow(
    resolver: IdentityResolver,
    did: str,
    issuer: str,
    pds_url: str | None = None,
    *,
    verify_handle: bool = False,
) -> Flow[Identity]:
    """Check, afresh, that ``did``'s PDS (``pds_url`` if given) names ``issuer``.

    A token answer's ``sub`` proves nothing by itself: the issuer that signed
    it must be the one the account's own PDS delegates to, now. With
    ``verify_handle`` the document's handle is also resolved back (else the
    identity's handle is the document's unverified claim).
    """
    identity = yield from (resolver.resolve(did) if verify_handle else resolver.resolve_did(did))
    if pds_url is not None and origin(identity.pds_url) != origin(pds_url):
        raise OAuthResolutionError(
            f"{did} is now hosted on {identity.pds_url}, not {pds_url}: authorize again"
        )
    named = yield from fetch_issuer_of(identity.pds_url)
    if named != issuer:
        raise OAuthResolutionError(
            f"the PDS of {did} ({identity.pds_url}) delegates to {named}, not to {issuer}, "
            "which issued the tokens"
        )
    return identity


def issuer_check(resolver: IdentityResolver) -> Callable[[Any], Flow[None]]:
    """The ``issuer_check`` hook of `OAuthSessionManager`: before every refresh,
    re-verify the session's DID -> PDS -> issuer, uncached.

    The flow raises `OAuthResolutionError` when they no longer match, so
    the refresh token is never sent to an issuer the account has left.
    """

    def check(session: Any) -> Flow[None]:
        yield from verify_issuer_flow(resolver, session.did, session.issuer, session.pds_url)

    return check
