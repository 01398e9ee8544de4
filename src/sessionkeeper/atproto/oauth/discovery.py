"""The discovery steps the OAuth sign-in flows share, in the core's flow vocabulary.

Discovery, PAR, the code exchange and verification are flows of
`sessionkeeper.core.flow` (``Send`` and, for DNS, ``Call``), so the blocking
and the asyncio client run them on the core's two drivers and share every
decision. A DNS TXT lookup is a blocking ``Call`` (the asyncio driver runs it
in a worker thread): dnspython's resolver does the lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessionkeeper.atproto.errors import OAuthResolutionError
from sessionkeeper.atproto.xrpc import json_object
from sessionkeeper.core.flow import Call, Flow, NetworkFailure, Send

#: Seconds a DNS lookup may take before the next resolution method is tried.
DNS_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class TxtQuery:
    """A blocking DNS TXT lookup of ``name``: the TXT strings, or ``[]`` when there are none."""

    name: str

    def __call__(self) -> list[str]:
        """Resolve now (no answer, no such name and timeouts all give ``[]``)."""
        # Here, not at import: dnspython costs ~35 ms that password-only users never need.
        import dns.exception
        import dns.resolver

        try:
            answer = dns.resolver.resolve(self.name, "TXT", lifetime=DNS_TIMEOUT)
        except dns.exception.DNSException:
            return []
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def txt_records(name: str) -> Flow[list[str]]:
    """The TXT strings of ``name`` (``[]`` when DNS has none)."""
    records: list[str] = yield Call(TxtQuery(name))
    return records


def fetch_json(url: str, what: str) -> Flow[dict[str, Any]]:
    """GET ``url`` and return its JSON object; any other outcome names ``what``."""
    response = yield Send("GET", url, {"Accept": "application/json"})
    if isinstance(response, NetworkFailure):
        raise OAuthResolutionError(
            f"{what}: {url} unreachable ({response.reason})", unavailable=True
        )
    if response.status_code != 200:
        status = response.status_code
        raise OAuthResolutionError(
            f"{what}: {url} answered HTTP {status}", unavailable=status == 429 or status >= 500
        )
    body = json_object(response)
    if body is None:
        raise OAuthResolutionError(f"{what}: {url} did not answer a JSON object")
    return body
