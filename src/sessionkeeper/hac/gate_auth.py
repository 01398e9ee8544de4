"""The HAC gate as an ``httpx.Auth`` (imported with the HTTP stack, on the first client)."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from sessionkeeper.hac.transport import HacGate


class GateAuth(httpx.Auth):
    """Passes each request through a `HacGate` (for requests without a session)."""

    def __init__(self, gate: HacGate) -> None:
        self._gate = gate

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send the gated request once."""
        yield self._gate.apply(request)


__all__ = ["GateAuth"]
