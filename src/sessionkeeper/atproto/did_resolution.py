"""Find an account's PDS from its DID document, so tokens go only to the host that holds them.

``did:plc`` documents come from the PLC directory (``GET {plc}/{did}``),
``did:web`` ones from ``https://{host}/.well-known/did.json``; the PDS is the
``#atproto_pds`` service's ``serviceEndpoint``.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from sessionkeeper.atproto.errors import SessionError
from sessionkeeper.http_limits import bounded_client
from sessionkeeper.redaction import redact_url

#: The PLC directory; ``SESSIONKEEPER_PLC_URL`` points elsewhere (a private one, a test's).
DEFAULT_PLC_URL = "https://plc.directory"
PLC_URL_ENV = "SESSIONKEEPER_PLC_URL"
RESOLVE_TIMEOUT = 10.0
#: A DID document is small; anything bigger is not one.
MAX_DID_DOCUMENT = 256 * 1024


class DidResolutionError(SessionError):
    """The DID's document could not be fetched or names no ATProto PDS."""


def did_document_url(did: str, plc_url: str | None = None) -> str:
    """Where the document of ``did`` is published."""
    if did.startswith("did:plc:"):
        base = plc_url or os.environ.get(PLC_URL_ENV) or DEFAULT_PLC_URL
        return f"{base.rstrip('/')}/{did}"
    if did.startswith("did:web:"):
        host, *path = did.removeprefix("did:web:").split(":")
        host = unquote(host)  # a port is written %3A
        if not host or any(c in host for c in "/@?#\\") or not all(path):
            raise DidResolutionError(f"{did} is not a did:web this client can resolve")
        where = "/".join(path) if path else ".well-known"
        return f"https://{host}/{where}/did.json"
    raise DidResolutionError(f"{did} is neither a did:plc nor a did:web")


def pds_endpoint(document: Any, did: str) -> str:
    """The ``#atproto_pds`` service endpoint of a DID document."""
    services = document.get("service") if isinstance(document, dict) else None
    for service in services if isinstance(services, list) else []:
        if not isinstance(service, dict):
            continue
        ident = service.get("id")
        endpoint = service.get("serviceEndpoint")
        if ident in ("#atproto_pds", f"{did}#atproto_pds") and isinstance(endpoint, str):
            parts = urlsplit(endpoint)
            if parts.scheme in ("https", "http") and parts.hostname:
                return endpoint.rstrip("/")
    raise DidResolutionError(f"the DID document of {did} names no #atproto_pds service")


def resolve_pds(did: str, *, plc_url: str | None = None, timeout: float = RESOLVE_TIMEOUT) -> str:
    """The PDS URL of ``did``, read from its DID document."""
    url = did_document_url(did, plc_url)
    try:
        with bounded_client(timeout, max_body=MAX_DID_DOCUMENT) as client:
            response = client.get(url, headers={"Accept": "application/did+ld+json, */*"})
    except httpx.HTTPError as exc:
        raise DidResolutionError(
            f"cannot fetch the DID document of {did} from {redact_url(url)} "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if response.status_code != 200:
        raise DidResolutionError(
            f"the DID document of {did} at {redact_url(url)} answered HTTP {response.status_code}"
        )
    try:
        document = json.loads(response.content)
    except (ValueError, RecursionError) as exc:
        raise DidResolutionError(f"the DID document of {did} is not JSON") from exc
    if isinstance(document, dict) and document.get("id") not in (None, did):
        raise DidResolutionError(f"the document at {redact_url(url)} is not the one of {did}")
    return pds_endpoint(document, did)


__all__ = [
    "DEFAULT_PLC_URL",
    "PLC_URL_ENV",
    "DidResolutionError",
    "did_document_url",
    "pds_endpoint",
    "resolve_pds",
]
