"""Redis store URLs: passwords with reserved characters, unknown options, redaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from sessionkeeper.maintenance.doctor import display_url
from sessionkeeper.stores import StoreUrlError
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.stores.redis.url import parse_redis_url, redact_url
from sessionkeeper.stores.url import open_store
from sessionkeeper.testing.redis_server import RedisServer
from tests.redis_fixture import require_redis_server
from tests.support import run_store_cli

pytestmark = pytest.mark.timeout(60)

LEFT, RIGHT = "Left5ecretPart", "Right5ecretPart"
RESERVED = ["#", "/", "?", "#/?"]


def _password(mark: str) -> str:
    return f"{LEFT}{mark}{RIGHT}"


def _chain(exc: BaseException) -> str:
    """The text of an exception and of every cause and context behind it."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(texts) < 20:
        texts += [str(seen), repr(seen), repr(seen.args)]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


def _leaks(text: str) -> bool:
    return LEFT in text or RIGHT in text


@pytest.mark.parametrize("mark", RESERVED)
@pytest.mark.parametrize("user", ["", "ops"])
def test_an_unencoded_reserved_character_in_a_password_is_refused_without_showing_it(
    mark: str, user: str
) -> None:
    url = f"redis://{user}:{_password(mark)}@127.0.0.1:6390/0?prefix=p:"
    for opener in (open_store, RedisStore, parse_redis_url):
        with pytest.raises(StoreUrlError, match="percent-encoded") as info:
            opener(url)
        assert not _leaks(_chain(info.value)), _chain(info.value)
    assert not _leaks(redact_url(url))
    assert not _leaks(display_url(url))  # what `store doctor` and `store migrate` print


def test_store_doctor_and_migrate_never_print_such_a_password(tmp_path: Path) -> None:
    # Every character at once; each one alone goes through the same display path above.
    url = f"redis://:{_password('#/?')}@127.0.0.1:6390/0"
    for args in (
        ["doctor", "--store", url],
        ["migrate", "--from", f"dir:{tmp_path}", "--to", url],
    ):
        result = run_store_cli(*args)
        assert result.returncode != 0
        assert not _leaks(result.stdout + result.stderr), result.stdout + result.stderr


def test_a_percent_encoded_password_with_reserved_characters_works() -> None:
    require_redis_server()
    secret = _password("#/?@:")
    with RedisServer(appendonly=False, password=secret) as server:
        url = f"redis://:{quote(secret, safe='')}@127.0.0.1:{server.port}/0?prefix=enc:"
        assert url == server.url + "?prefix=enc:"
        store = open_store(url)
        store.put("k", b"v")
        assert store.get("k") == b"v"
        assert not _leaks(repr(store))
        store.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6390/0?prefx=app:",
        "redis+cluster://127.0.0.1:7000?prefx=app:",
        "redis+sentinel://127.0.0.1:26379/svc?prefx=app:",
    ],
)
def test_an_unknown_option_is_refused_at_the_url_check_naming_it(url: str) -> None:
    for opener in (open_store, RedisStore):
        with pytest.raises(StoreUrlError, match=r"unknown option 'prefx'; known options are"):
            opener(url)


def test_store_doctor_names_an_unknown_option() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sessionkeeper",
            "store",
            "doctor",
            "--store",
            "redis://127.0.0.1:6390/0?prefx=app:",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "unknown option 'prefx'" in result.stdout + result.stderr
    assert "TypeError" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://127.0.0.1:6390/0?lease=soon", "lease"),
        ("redis://127.0.0.1:6390/0?socket_timeout=fast", "socket_timeout"),
        ("redis://127.0.0.1:6390/0?socket_keepalive=maybe", "socket_keepalive"),
        ("redis://127.0.0.1:6390/0?replicas=-1", "replicas"),
        ("redis://127.0.0.1:6390/zero", "database must be a number"),
        ("redis://127.0.0.1:99999/0", "port that is not a number"),
        ("redis://a:1,b:2/0", "redis\\+cluster://"),
        ("redis+cluster://127.0.0.1:7000/3", "database 0 only"),
        ("redis+sentinel://127.0.0.1:26379", "service name"),
        ("redis+sentinel://127.0.0.1:26379/svc/0/extra", "too many path parts"),
        ("redis://127.0.0.1:6390/0?ssl_certfile=x", "unknown option 'ssl_certfile'"),
    ],
)
def test_other_malformed_redis_urls_are_refused_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(StoreUrlError, match=problem):
        open_store(url)


def test_every_url_form_parses_into_its_parts() -> None:
    sentinel = parse_redis_url(
        "redis+sentinel://:pw%40x@10.0.0.1:26379,10.0.0.2/main/2"
        "?sentinel_password=sp&prefix=app:&socket_timeout=1.5"
    )
    assert (sentinel.kind, sentinel.service, sentinel.db, sentinel.password) == (
        "sentinel",
        "main",
        2,
        "pw@x",
    )
    assert sentinel.nodes == (("10.0.0.1", 26379), ("10.0.0.2", 26379))
    assert sentinel.sentinel == {"sentinel_password": "sp"}
    assert sentinel.connection == {"socket_timeout": 1.5}
    assert sentinel.store == {"prefix": "app:"}
    assert "pw" not in repr(sentinel) and "sp" not in sentinel.safe_url
    cluster = parse_redis_url("rediss+cluster://u:p@[::1]:7000,h2:7001?ssl_check_hostname=no")
    assert (cluster.kind, cluster.tls, cluster.username) == ("cluster", True, "u")
    assert cluster.nodes == (("::1", 7000), ("h2", 7001))
    assert cluster.connection == {"ssl_check_hostname": False}
    unix = parse_redis_url("unix:///run/redis.sock?db=3")
    assert (unix.kind, unix.socket_path, unix.db) == ("unix", "/run/redis.sock", 3)


def test_redaction_hides_passwords_in_every_place_they_can_be() -> None:
    assert redact_url("redis://user:pw@h:6379/0") == "redis://user:***@h:6379/0"
    assert redact_url("redis://h:1/0?password=pw&sentinel_password=s") == (
        "redis://h:1/0?password=***&sentinel_password=***"
    )
    # What `display_url` leaves of ``redis://user:pa?ss@h`` after cutting at '?'.
    assert redact_url("redis://user:pa") == "redis://user:***"
    assert redact_url("redis://:p#w@h:1/0") == "redis://:***@h:1/0"
    assert redact_url("redis+sentinel://:pw@a:1,b:2/svc") == "redis+sentinel://:***@a:1,b:2/svc"


def test_a_unix_socket_url_reaches_the_server(tmp_path: Path) -> None:
    require_redis_server()
    socket_path = tmp_path / "redis.sock"
    extra = ["--unixsocket", str(socket_path), "--unixsocketperm", "700"]
    with RedisServer(appendonly=False, extra_args=extra) as server:
        store = open_store(f"unix://{socket_path}?db=2&prefix=sock:")
        store.put("k", b"over the socket")
        tcp = RedisStore(f"redis://127.0.0.1:{server.port}/2?prefix=sock:")
        assert tcp.get("k") == b"over the socket"
        store.close()  # type: ignore[attr-defined]
        tcp.close()
