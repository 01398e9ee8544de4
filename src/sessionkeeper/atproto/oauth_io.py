"""The I/O that the OAuth flows describe, and its one blocking and one asyncio driver.

Discovery, PAR, the code exchange and verification are generators that yield
an ``httpx.Request`` (and receive its ``httpx.Response``) or a
:class:`TxtLookup` (and receive the TXT strings). A transport failure is
thrown into the flow at its ``yield``, so the flow decides what a failure
means (try the next resolution method, or name the step that failed). The
blocking client drives them with ``httpx.Client`` and dnspython's resolver,
the asyncio client with ``httpx.AsyncClient`` and ``dns.asyncresolver``.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

import dns.asyncresolver
import dns.exception
import dns.resolver
import httpx

from sessionkeeper.atproto.errors import OAuthResolutionError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TxtLookup:
    """Ask DNS for the TXT records of ``name``; the flow receives ``list[str]``."""

    name: str


class DnsLookupError(Exception):
    """A DNS lookup that gave no answer (no such name, no TXT, timeout)."""


Step = httpx.Request | TxtLookup
OAuthFlow = Generator[Step, Any, T]

_DNS_FAILURES = (dns.exception.DNSException,)


def _txt_strings(answer: Any) -> list[str]:
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def drive(flow: OAuthFlow[T], http: httpx.Client, *, dns_timeout: float = 5.0) -> T:
    """Run ``flow`` with blocking I/O and return its result."""
    reply: Any = None
    failure: BaseException | None = None
    while True:
        try:
            step = flow.throw(failure) if failure is not None else flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        reply, failure = None, None
        if isinstance(step, TxtLookup):
            try:
                answer = dns.resolver.resolve(step.name, "TXT", lifetime=dns_timeout)
                reply = _txt_strings(answer)
            except _DNS_FAILURES as exc:
                failure = DnsLookupError(f"{step.name}: {type(exc).__name__}")
            continue
        try:
            response = http.send(step, stream=True)
            try:
                response.read()
            finally:
                response.close()
            reply = response
        except httpx.TransportError as exc:
            failure = exc


async def drive_async(
    flow: OAuthFlow[T], http: httpx.AsyncClient, *, dns_timeout: float = 5.0
) -> T:
    """Run ``flow`` with asyncio I/O and return its result."""
    reply: Any = None
    failure: BaseException | None = None
    while True:
        try:
            step = flow.throw(failure) if failure is not None else flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        reply, failure = None, None
        if isinstance(step, TxtLookup):
            try:
                answer = await dns.asyncresolver.resolve(step.name, "TXT", lifetime=dns_timeout)
                reply = _txt_strings(answer)
            except _DNS_FAILURES as exc:
                failure = DnsLookupError(f"{step.name}: {type(exc).__name__}")
            continue
        try:
            response = await http.send(step, stream=True)
            try:
                await response.aread()
            finally:
                await response.aclose()
            reply = response
        except httpx.TransportError as exc:
            failure = exc


def fetch_json(url: str, what: str) -> OAuthFlow[dict[str, Any]]:
    """GET ``url`` and return its JSON object; any other outcome names ``what``."""
    try:
        response = yield httpx.Request("GET", url, headers={"Accept": "application/json"})
    except httpx.TransportError as exc:
        raise OAuthResolutionError(f"{what}: {url} unreachable ({type(exc).__name__})") from None
    if response.status_code != 200:
        raise OAuthResolutionError(f"{what}: {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise OAuthResolutionError(f"{what}: {url} did not answer JSON") from None
    if not isinstance(body, dict):
        raise OAuthResolutionError(f"{what}: {url} did not answer a JSON object")
    return body
