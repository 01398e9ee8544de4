"""The environment variables that point the CLI and the library elsewhere: one name each.

``ATP_SERVICE`` the PDS or entryway (``sessionkeeper atproto`` reads it; a script
passes it to a manager), ``ATP_PLC_DIRECTORY`` the PLC directory that DIDs
resolve through, ``ATP_HANDLE_RESOLVER`` an XRPC service that answers
``resolveHandle`` instead of DNS and ``/.well-known``. The fakes in
``sessionkeeper.testing`` print these names with their own URL.
"""

from __future__ import annotations

import os

SERVICE_ENV = "ATP_SERVICE"
PLC_DIRECTORY_ENV = "ATP_PLC_DIRECTORY"
HANDLE_RESOLVER_ENV = "ATP_HANDLE_RESOLVER"
DEFAULT_PLC_DIRECTORY = "https://plc.directory"


def plc_directory(given: str | None = None) -> str:
    """``given`` unless it is the public default, then ``$ATP_PLC_DIRECTORY``, else the default."""
    if given and given.rstrip("/") != DEFAULT_PLC_DIRECTORY:
        return given
    return os.environ.get(PLC_DIRECTORY_ENV) or DEFAULT_PLC_DIRECTORY


def handle_resolver(given: str | None = None) -> str | None:
    """``given``, else ``$ATP_HANDLE_RESOLVER``, else ``None`` (DNS and ``/.well-known``)."""
    return given or os.environ.get(HANDLE_RESOLVER_ENV) or None


__all__ = [
    "DEFAULT_PLC_DIRECTORY",
    "HANDLE_RESOLVER_ENV",
    "PLC_DIRECTORY_ENV",
    "SERVICE_ENV",
    "handle_resolver",
    "plc_directory",
]
