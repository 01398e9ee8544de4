"""Redis store URLs: parsed strictly, redacted conservatively, standard library only.

Forms (``rediss`` instead of ``redis`` turns TLS on):

- ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]``: one server;
- ``unix://[[USER]:PASSWORD@]/PATH/TO/SOCKET[?db=N&...]``: one server on a socket;
- ``redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...][?OPTIONS]``: Redis
  Cluster, found from any of the nodes (a cluster has database 0 only);
- ``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/SERVICE[/DB][?OPTIONS]``:
  the current master of ``SERVICE`` as the listed Sentinels name it. The user and
  password are the data servers'; ``sentinel_username``/``sentinel_password`` are the
  Sentinels' own, if they ask for one.

Characters that end a URL part (``/ ? # @``) inside a user name or password must
be percent-encoded (``%2F %3F %23 %40``): a URL where they are not is refused with
an error that shows no part of the password, never guessed at.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from sessionkeeper.redaction import HOST, redact_url, split_authority
from sessionkeeper.stores.errors import StoreUrlError

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
#: URL scheme -> (kind of deployment, TLS).
SCHEMES: dict[str, tuple[str, bool]] = {
    "redis": ("server", False),
    "rediss": ("server", True),
    "unix": ("unix", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
#: Query parameters whose values are secrets, hidden by `redact_url`.
SECRET_PARAMS = frozenset({"password", "ssl_password", "sentinel_password"})


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(value)


#: Options of the store itself (checked and converted by RedisStore).
STORE_OPTIONS = ("prefix", "lease", "ttl", "replicas", "replicas_timeout")
#: Options handed to redis-py's connections, with their converters.
CONNECTION_OPTIONS: dict[str, Callable[[str], Any]] = {
    "db": int,
    "username": str,
    "password": str,
    "client_name": str,
    "socket_timeout": float,
    "socket_connect_timeout": float,
    "health_check_interval": int,
    "max_connections": int,
    "socket_keepalive": _flag,
}
TLS_OPTIONS: dict[str, Callable[[str], Any]] = {
    "ssl_cert_reqs": str,
    "ssl_ca_certs": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
    "ssl_password": str,
    "ssl_check_hostname": _flag,
}
SENTINEL_OPTIONS: dict[str, Callable[[str], Any]] = {
    "sentinel_username": str,
    "sentinel_password": str,
}


@dataclass(frozen=True)
class RedisTarget:
    """What a Redis store URL names: where to connect, how, and the store's options."""

    kind: str  #: ``server``, ``unix``, ``cluster`` or ``sentinel``
    tls: bool
    nodes: tuple[tuple[str, int], ...]  #: servers, cluster nodes or sentinels
    socket_path: str | None
    service: str | None  #: the Sentinel service (master group) name
    db: int
    username: str | None
    password: str | None = field(repr=False)
    connection: dict[str, Any] = field(repr=False)  #: redis-py keyword arguments
    sentinel: dict[str, Any] = field(repr=False)  #: redis-py keywords for the Sentinels
    store: dict[str, str]  #: the store's own options, unconverted
    safe_url: str  #: the URL with every secret hidden


def is_redis_url(url: str) -> bool:
    """Whether ``url``'s scheme is one of the Redis store schemes."""
    return url.strip().partition(":")[0].lower() in SCHEMES


def parse_redis_url(url: str, *, ignore: frozenset[str] = frozenset()) -> RedisTarget:
    """Parse a Redis store URL; raise `StoreUrlError` naming what is wrong.

    Query options in ``ignore`` are accepted and left out (``open_store``
    handles ``encrypt`` itself). No error message holds any part of a
    password: a malformed URL is shown through `redact_url`.
    """
    url = url.strip()
    safe = redact_url(url)
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme not in SCHEMES or not sep:
        raise StoreUrlError(
            f"Redis URL {safe!r} must start with one of " + ", ".join(f"{s}://" for s in SCHEMES)
        )
    kind, tls = SCHEMES[scheme]
    if "#" in rest:
        raise StoreUrlError(
            f"Redis URL {safe!r} holds a '#': a store URL has no fragment, so a '#' in a "
            "password must be percent-encoded as %23"
        )
    authority, tail = split_authority(rest)
    if "@" not in authority and "@" in tail:
        raise StoreUrlError(
            f"Redis URL {safe!r} has an '@' after the host: a user name or password "
            "holding '/', '?' or '@' must be percent-encoded (%2F, %3F, %40), and so "
            "must an '@' in an option (%40)"
        )
    userinfo, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    path, _, query = tail.partition("?")
    options = _options(safe, kind, tls, query, ignore)
    username = options["connection"].pop("username", username)
    password = options["connection"].pop("password", password)
    db = options["connection"].pop("db", 0)
    socket_path = service = None
    nodes: tuple[tuple[str, int], ...] = ()
    if kind == "unix":
        if hosts or not path:
            raise StoreUrlError(f"Redis URL {safe!r} needs a socket path: unix:///PATH?db=N")
        socket_path = unquote(path)
    else:
        default = DEFAULT_SENTINEL_PORT if kind == "sentinel" else DEFAULT_PORT
        nodes = _nodes(safe, kind, hosts, default)
        db, service = _path(safe, kind, path, db)
    return RedisTarget(
        kind=kind,
        tls=tls,
        nodes=nodes,
        socket_path=socket_path,
        service=service,
        db=db,
        username=username,
        password=password,
        connection=options["connection"],
        sentinel=options["sentinel"],
        store=options["store"],
        safe_url=safe,
    )


def _nodes(safe: str, kind: str, hosts: str, default: int) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for node in hosts.split(","):
        match = HOST.match(node)
        if match is None or not match.group(1):
            raise StoreUrlError(f"Redis URL {safe!r} needs a host for every node")
        host, port_text = match.group(1).strip("[]"), match.group(2)
        if port_text is None or port_text == "":
            port = default
        elif port_text.isdigit() and 0 < int(port_text) < 65536:
            port = int(port_text)
        else:
            # Never echo the text: it may be the start of a password that lost its '@'.
            raise StoreUrlError(f"Redis URL {safe!r} has a port that is not a number 1-65535")
        found.append((unquote(host), port))
    if len(found) > 1 and kind == "server":
        raise StoreUrlError(
            f"Redis URL {safe!r} lists several hosts: use redis+cluster:// for a cluster "
            "or redis+sentinel:// for Sentinels"
        )
    return tuple(found)


def _path(safe: str, kind: str, path: str, db: int) -> tuple[int, str | None]:
    segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
    service = None
    if kind == "sentinel":
        if not segments:
            raise StoreUrlError(
                f"Redis URL {safe!r} needs the Sentinel service name: "
                "redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]"
            )
        service, segments = segments[0], segments[1:]
    if len(segments) > 1:
        raise StoreUrlError(f"Redis URL {safe!r} has too many path parts")
    if segments:
        if not segments[0].isdigit():
            raise StoreUrlError(f"Redis URL {safe!r}: the database must be a number")
        db = int(segments[0])
    if kind == "cluster" and db != 0:
        raise StoreUrlError(f"Redis URL {safe!r}: Redis Cluster has database 0 only")
    return db, service


def _options(
    safe: str, kind: str, tls: bool, query: str, ignore: frozenset[str]
) -> dict[str, dict[str, Any]]:
    known: dict[str, Callable[[str], Any]] = dict(CONNECTION_OPTIONS)
    if tls:
        known.update(TLS_OPTIONS)
    if kind == "sentinel":
        known.update(SENTINEL_OPTIONS)
    found: dict[str, dict[str, Any]] = {"store": {}, "connection": {}, "sentinel": {}}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in ignore:
            continue
        if key in STORE_OPTIONS:
            found["store"][key] = value
        elif key in known:
            try:
                converted = known[key](value)
            except ValueError:
                shown = "***" if key in SECRET_PARAMS else repr(value)
                raise StoreUrlError(
                    f"Redis URL {safe!r}: option {key!r} has a bad value {shown}"
                ) from None
            section = "sentinel" if key in SENTINEL_OPTIONS else "connection"
            found[section][key] = converted
        else:
            raise StoreUrlError(
                f"Redis URL {safe!r}: unknown option {key!r}; known options are "
                + ", ".join(sorted([*STORE_OPTIONS, *known]))
            )
    return found


__all__ = [
    "SCHEMES",
    "SECRET_PARAMS",
    "RedisTarget",
    "is_redis_url",
    "parse_redis_url",
    "redact_url",
]
