"""OAuth scopes, permission sets included: what an app asks for and what the grant covers.

Since late 2025 apps ask for permission sets, ``include:<nsid>[?aud=<service>]``,
and the authorization server answers with the set expanded into the
permissions its lexicon lists (``repo?collection=app.example.post``,
``rpc:app.example.getThing?aud=...``), the ``include:`` entry itself gone. A
check that wants every requested entry back verbatim would refuse every such
grant, so the check here knows the expansion: a permission set may only grant
``repo`` and ``rpc`` permissions in its own namespace (the NSID without its
last segment), and is covered by any of those. A set the server expanded to
nothing is logged, not refused; any other requested entry missing from the
grant is.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qs

from sessionkeeper.atproto.errors import OAuthError, OAuthTokenError

logger = logging.getLogger(__name__)

INCLUDE = "include:"

#: An NSID: at least three dot-separated segments (the authority reversed, then a name).
NSID_RE = re.compile(
    r"^[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+\.[a-zA-Z][a-zA-Z0-9]{0,62}$"
)


def check_requested(scope: str) -> str:
    """Return ``scope`` if its ``include:`` entries are well formed, else a named error."""
    for entry in scope.split():
        if entry.startswith(INCLUDE):
            nsid, _, query = entry[len(INCLUDE) :].partition("?")
            if not NSID_RE.match(nsid):
                raise OAuthError(
                    f"scope entry {entry!r}: a permission set is include:<NSID>, "
                    "e.g. include:app.example.authFull"
                )
            if query and set(parse_qs(query, keep_blank_values=True)) - {"aud"}:
                raise OAuthError(f"scope entry {entry!r}: include: takes only an aud parameter")
    return scope


def _resources(permission: str) -> list[str]:
    """The NSIDs a ``repo`` or ``rpc`` permission names (none for other permissions)."""
    head, _, query = permission.partition("?")
    resource, _, positional = head.partition(":")
    if resource not in ("repo", "rpc"):
        return []
    params = parse_qs(query)
    named = params.get("collection" if resource == "repo" else "lxm", [])
    return [positional, *named] if positional else named


def covered(entry: str, granted: set[str]) -> bool:
    """Whether the grant covers ``entry``: verbatim, or as a permission set's expansion."""
    if entry in granted:
        return True
    if not entry.startswith(INCLUDE):
        return False
    nsid = entry[len(INCLUDE) :].partition("?")[0]
    namespace = nsid.rpartition(".")[0] + "."
    return any(
        resource.startswith(namespace)
        for permission in granted
        for resource in _resources(permission)
    )


def check_granted(requested: str, granted: str) -> None:
    """Raise `OAuthTokenError` naming requested entries the grant does not cover."""
    have = set(granted.split())
    missing = [entry for entry in requested.split() if not covered(entry, have)]
    sets = [entry for entry in missing if entry.startswith(INCLUDE)]
    if sets:
        logger.warning(
            "the grant holds no permission of %s (the server may have expanded it to nothing)",
            ", ".join(sets),
        )
    refused = [entry for entry in missing if not entry.startswith(INCLUDE)]
    if refused:
        raise OAuthTokenError(
            f"the granted scope {granted!r} lacks {', '.join(refused)}, which was requested"
        )
