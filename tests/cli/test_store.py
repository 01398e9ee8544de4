"""``sessionkeeper store migrate|prune|doctor`` run as real subprocesses on real stores."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from sessionkeeper.maintenance.migrate import CopyOutcome, migrate
from sessionkeeper.maintenance.prune import prune
from sessionkeeper.stores import DirectoryStore, SqliteStore
from sessionkeeper.stores.redis.store import RedisStore
from sessionkeeper.testing.redis_server import RedisServer
from tests.redis_fixture import require_redis_server
from tests.support import REPO, run_store_cli

pytestmark = pytest.mark.timeout(120)

HOUR = 3600.0
T = TypeVar("T")


def hac_name(base_url: str, username: str, environment: str) -> str:
    digest = hashlib.md5(f"{base_url}:{username}:{environment}".encode()).hexdigest()
    return f"session_{digest}.json"


def hac_session(*, idle: float, base_url: str = "https://hac.example:9002") -> bytes:
    now = time.time()
    document = {
        "session_id": "0123456789ABCDEF0123456789ABCDEF",
        "csrf_token": "c5f8a2e4-1111-2222-3333-444455556666",
        "route_cookie": None,
        "environment": "dev",
        "base_url": base_url,
        "username": "admin",
        "created_at": now - idle - 60,
        "last_used_at": now - idle,
        "is_authenticated": True,
    }
    return json.dumps(document, indent=2).encode()


def jwt(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'refresh+jwt'})}.{part(claims)}.c2lnbmF0dXJl"


def atproto_session(did: str, *, refresh_expires_in: float) -> bytes:
    now = time.time()
    document = {
        "accessJwt": jwt({"sub": did, "exp": now + 2 * HOUR, "scope": "com.atproto.access"}),
        "refreshJwt": jwt({"sub": did, "exp": now + refresh_expires_in, "jti": "j1"}),
        "handle": "alice.test",
        "did": did,
        "active": True,
    }
    return json.dumps(document, indent=2).encode()


def atproto_name(did: str) -> str:
    return did.replace(":", "_") + ".json"


def write(directory: Path, name: str, data: bytes, mode: int = 0o600) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def legacy_caches(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """An original hac-client cache dir and a Rust SDK session dir, with foreign files."""
    hac_dir = tmp_path / "hac-client"
    rust_dir = tmp_path / "rust-sessions"
    sessions = {
        hac_name("https://a:9002", "admin", "dev"): hac_session(idle=60),
        hac_name("https://b:9002", "admin", "prod"): hac_session(idle=120),
        atproto_name("did:plc:alice"): atproto_session("did:plc:alice", refresh_expires_in=HOUR),
    }
    for name, data in sessions.items():
        write(rust_dir if name.startswith("did_") else hac_dir, name, data, 0o644)
    write(hac_dir, "notes.txt", b"not a session")
    write(rust_dir, "config.toml", b"x = 1")
    return hac_dir, rust_dir, sessions


def test_migrate_copies_original_hac_cache_and_rust_sessions_and_skips_the_rest(
    tmp_path: Path, legacy_caches: tuple[Path, Path, dict[str, bytes]]
) -> None:
    hac_dir, rust_dir, sessions = legacy_caches
    target = f"sqlite:{tmp_path / 'all.db'}"
    first = run_store_cli("migrate", "--from", f"dir:{hac_dir}", "--to", target)
    assert first.returncode == 0, first.stderr
    assert "copied 2, skipped identical 0, conflicts 0, failed 0, ignored 1" in first.stdout
    second = run_store_cli("migrate", "--from", f"dir:{rust_dir}", "--to", target)
    assert "copied 1, skipped identical 0" in second.stdout
    again = run_store_cli("migrate", "--from", f"dir:{hac_dir}", "--to", target)
    assert "copied 0, skipped identical 2" in again.stdout
    store = SqliteStore(tmp_path / "all.db")
    assert {name: store.get(name) for name in store.names()} == sessions


def test_migrate_dry_run_writes_nothing(
    tmp_path: Path, legacy_caches: tuple[Path, Path, dict[str, bytes]]
) -> None:
    hac_dir, _rust, _sessions = legacy_caches
    result = run_store_cli(
        "migrate", "--from", f"dir:{hac_dir}", "--to", f"dir:{tmp_path / 'new'}", "--dry-run"
    )
    assert result.returncode == 0, result.stderr
    assert "would copy 2" in result.stdout
    assert DirectoryStore(tmp_path / "new").names() == []


def test_migrate_keeps_a_different_destination_unless_told_to_overwrite(
    tmp_path: Path, legacy_caches: tuple[Path, Path, dict[str, bytes]]
) -> None:
    _hac, rust_dir, sessions = legacy_caches
    name = atproto_name("did:plc:alice")
    newer = atproto_session("did:plc:alice", refresh_expires_in=90 * 24 * HOUR)
    dest = DirectoryStore(tmp_path / "dest")
    dest.put(name, newer)
    kept = run_store_cli("migrate", "--from", f"dir:{rust_dir}", "--to", f"dir:{dest.path}")
    assert kept.returncode == 0
    assert "conflicts 1" in kept.stdout
    assert dest.get(name) == newer
    replaced = run_store_cli(
        "migrate", "--from", f"dir:{rust_dir}", "--to", f"dir:{dest.path}", "--overwrite"
    )
    assert "copied 1" in replaced.stdout
    assert dest.get(name) == sessions[name]


def test_migrate_reports_corrupt_sessions_as_failed_and_copies_the_others(
    tmp_path: Path, legacy_caches: tuple[Path, Path, dict[str, bytes]]
) -> None:
    hac_dir, _rust, _sessions = legacy_caches
    broken = hac_name("https://c:9002", "admin", "dev")
    write(hac_dir, broken, b'{"session_id": "half-writ')
    result = run_store_cli("migrate", "--from", f"dir:{hac_dir}", "--to", f"dir:{tmp_path / 'd'}")
    assert result.returncode == 1
    assert "copied 2, skipped identical 0, conflicts 0, failed 1" in result.stdout
    assert f"failed {broken} (hac session: it is not valid JSON" in result.stdout
    assert broken not in DirectoryStore(tmp_path / "d").names()


def test_migrate_into_redis_shares_sessions_with_every_machine(
    redis_server: RedisServer, legacy_caches: tuple[Path, Path, dict[str, bytes]]
) -> None:
    hac_dir, _rust, sessions = legacy_caches
    url = f"{redis_server.url}?prefix=cli-migrate:"
    result = run_store_cli("migrate", "--from", f"dir:{hac_dir}", "--to", url)
    assert result.returncode == 0, result.stderr
    store = RedisStore(redis_server.url, prefix="cli-migrate:")
    assert store.names() == sorted(n for n in sessions if n.startswith("session_"))


def test_migrate_refuses_a_missing_source_without_creating_it(tmp_path: Path) -> None:
    result = run_store_cli("migrate", "--from", f"dir:{tmp_path / 'nope'}", "--to", "memory:")
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize(
    "spelling",
    ["dir:{path}", "dir:{path}/", "file:{path}/../{leaf}", "dir:{path}?encrypt=1"],
)
def test_migrate_to_the_same_store_is_a_usage_error(tmp_path: Path, spelling: str) -> None:
    # Copying a store onto itself would wait on its own locks, then fail every session.
    path = tmp_path / "sessions"
    path.mkdir()
    to_url = spelling.format(path=path, leaf=path.name)
    result = run_store_cli("migrate", "--from", f"dir:{path}", "--to", to_url)
    assert result.returncode == 2, result.stdout
    assert "same store" in result.stderr


@pytest.fixture
def mixed_store(tmp_path: Path) -> Path:
    """Live and dead sessions of both protocols, a foreign file and a stale temp file."""
    directory = tmp_path / "store"
    write(directory, hac_name("https://h", "u", "idle3h"), hac_session(idle=3 * HOUR))
    write(directory, hac_name("https://h", "u", "idle1h"), hac_session(idle=1 * HOUR))
    write(
        directory,
        atproto_name("did:plc:dead"),
        atproto_session("did:plc:dead", refresh_expires_in=-HOUR),
    )
    write(
        directory,
        atproto_name("did:plc:live"),
        atproto_session("did:plc:live", refresh_expires_in=30 * 24 * HOUR),
    )
    write(directory, "foreign.txt", b"keep me")
    temp = write(directory, ".did_plc_live.json.0a1b2c.tmp", b"{half")
    old = time.time() - 60
    os.utime(temp, (old, old))
    return directory


def test_prune_dry_run_lists_dead_sessions_and_removes_nothing(mixed_store: Path) -> None:
    def listing() -> list[str]:  # lock files appear as names are locked; they hold no data
        return sorted(n for n in os.listdir(mixed_store) if not n.endswith(".lock"))

    before = listing()
    result = run_store_cli("prune", "--store", f"dir:{mixed_store}", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would remove 3 (1 idle HAC, 1 expired ATProto, 1 temp files); kept 2" in result.stdout
    assert listing() == before


def test_prune_removes_idle_hac_expired_atproto_and_stale_temp_files(mixed_store: Path) -> None:
    result = run_store_cli("prune", "--store", f"dir:{mixed_store}")
    assert result.returncode == 0, result.stderr
    assert "removed 3" in result.stdout
    assert sorted(os.listdir(mixed_store)) == sorted(
        [
            hac_name("https://h", "u", "idle1h"),
            atproto_name("did:plc:live"),
            "foreign.txt",
        ]
        + [n for n in os.listdir(mixed_store) if n.endswith(".lock")]
    )


def test_prune_idle_limit_is_configurable_and_store_comes_from_the_environment(
    mixed_store: Path,
) -> None:
    result = run_store_cli(
        "prune", "--idle", "30m", env={"SESSIONKEEPER_STORE": f"dir:{mixed_store}"}
    )
    assert result.returncode == 0, result.stderr
    assert "(2 idle HAC, 1 expired ATProto, 1 temp files)" in result.stdout
    assert not (mixed_store / hac_name("https://h", "u", "idle1h")).exists()


def test_prune_with_a_bad_duration_is_a_usage_error(tmp_path: Path) -> None:
    bad = run_store_cli("prune", "--store", f"dir:{tmp_path}", "--idle", "soon")
    assert bad.returncode == 2
    assert "not a duration" in bad.stderr


def test_doctor_finds_every_problem_with_its_fix_and_changes_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "loose"
    good = write(directory, hac_name("https://h", "u", "ok"), hac_session(idle=60), 0o644)
    write(directory, hac_name("https://h", "u", "bad"), b"\xff\xfe not json")
    write(directory, atproto_name("did:plc:shape"), json.dumps({"did": "did:plc:shape"}).encode())
    temp = write(directory, ".x.json.abcdef.tmp", b"{")
    os.utime(temp, (time.time() - 60, time.time() - 60))
    write(directory, ".gone.json.lock", b"")
    directory.chmod(0o755)
    result = run_store_cli("doctor", "--store", f"dir:{directory}")
    assert result.returncode == 1
    out = result.stdout
    assert "directory is mode 0755; other users can list the sessions" in out
    assert f"fix: chmod 700 {directory}" in out
    assert f"fix: chmod 600 {good}" in out
    assert "is a corrupt hac session: it is not UTF-8 text" in out
    assert "is a corrupt atproto session: session file did_plc_shape.json: missing required" in out
    assert "is a temp file left by a writer that died" in out
    assert "is the lock file of 'gone.json', which no longer exists" in out
    assert "5 problems, 1 notes" in out
    assert stat.S_IMODE(directory.stat().st_mode) == 0o755
    assert stat.S_IMODE(good.stat().st_mode) == 0o644
    assert temp.exists()


def test_doctor_passes_a_healthy_store(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "fine")
    store.put(hac_name("https://h", "u", "ok"), hac_session(idle=60))
    store.put(atproto_name("did:plc:ok"), atproto_session("did:plc:ok", refresh_expires_in=HOUR))
    result = run_store_cli("doctor", "--store", f"dir:{store.path}")
    assert result.returncode == 0, result.stdout
    assert "0 problems, 0 notes" in result.stdout


def test_doctor_reports_an_unreachable_redis_without_its_password() -> None:
    require_redis_server()
    with RedisServer(appendonly=False, password="doctor-secret") as server:
        url = server.url
    result = run_store_cli("doctor", "--store", url)
    assert result.returncode == 1
    assert "unavailable" in result.stdout
    assert "doctor-secret" not in result.stdout + result.stderr


TOUCHING_HOLDER = """
import json, sys, time
from sessionkeeper.stores.url import open_store
store = open_store(sys.argv[1])
name = sys.argv[2]
with store.lock(name):
    print("locked", flush=True)
    sys.stdin.readline()
    document = json.loads(store.get(name))
    document["last_used_at"] = time.time()  # the session was just used
    store.put(name, json.dumps(document).encode())
"""


def beside_a_touching_holder(store: DirectoryStore, name: str, action: Callable[[], T]) -> T:
    """Run ``action`` while another process holds the lock of ``name`` and then touches it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", TOUCHING_HOLDER, f"dir:{store.path}", name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    results: list[T] = []
    worker = threading.Thread(target=lambda: results.append(action()))
    worker.start()
    worker.join(0.5)  # let it reach the lock; the outcome must not depend on this
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.wait(timeout=30) == 0
    worker.join(timeout=30)
    assert results, "the action did not finish"
    return results[0]


def test_prune_decides_on_the_value_read_under_the_lock(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "store")
    name = hac_name("https://h", "u", "busy")
    store.put(name, hac_session(idle=3 * HOUR))
    report = beside_a_touching_holder(store, name, lambda: prune(store, lock_timeout=30))
    assert report.removed == []
    assert store.get(name) is not None


def test_a_deeply_nested_session_file_is_reported_corrupt_not_a_crash(tmp_path: Path) -> None:
    from sessionkeeper.atproto.jwt import token_expiry_or_none as jwt_expiry
    from sessionkeeper.maintenance.doctor import Severity, diagnose_directory

    store = DirectoryStore(tmp_path / "s")
    name = hac_name("https://h", "u", "deep")
    store.put(name, b"[" * 200_000)
    deep_claims = base64.urlsafe_b64encode(b"[" * 200_000).decode().rstrip("=")
    assert jwt_expiry(f"e30.{deep_claims}.c2ln") is None
    report = prune(store)
    assert (report.removed, report.unreadable) == ([], [])
    assert store.get(name) is not None  # corrupt files are the doctor's, never pruned
    findings = diagnose_directory(store.path)
    assert [(f.severity, "corrupt" in f.message) for f in findings] == [(Severity.PROBLEM, True)]


def test_migrate_copies_the_value_a_lock_holder_wrote_not_the_one_before(tmp_path: Path) -> None:
    source = DirectoryStore(tmp_path / "source")
    destination = SqliteStore(tmp_path / "destination.db")
    name = hac_name("https://h", "u", "busy")
    source.put(name, hac_session(idle=3 * HOUR))
    report = beside_a_touching_holder(
        source, name, lambda: migrate(source, destination, lock_timeout=30)
    )
    assert report.count(CopyOutcome.COPIED) == 1
    assert destination.get(name) == source.get(name)  # the holder's touch, not the stale copy


def test_doctor_runs_beside_a_busy_writer_whose_temp_files_come_and_go(tmp_path: Path) -> None:
    from sessionkeeper.maintenance.doctor import diagnose_directory

    store = DirectoryStore(tmp_path / "busy")
    for i in range(50):
        store.put(hac_name("https://h", "u", f"env{i}"), hac_session(idle=60))
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            store.put(hac_name("https://h", "u", "hot"), hac_session(idle=1))

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        # Each pass lists the directory, then looks at every entry: a temp file renamed
        # in between must be passed over, not crash the check.
        for _ in range(300):
            assert diagnose_directory(store.path) == []
    finally:
        stop.set()
        thread.join()


def _hac_with(**fields: object) -> bytes:
    document = json.loads(hac_session(idle=60))
    document.update(fields)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "name, data",
    [
        (hac_name("https://h", "u", "digits"), b'{"created_at": ' + b"7" * 5000 + b"}"),
        (hac_name("https://h", "u", "huge"), _hac_with(last_used_at=10**400)),
        (hac_name("https://h", "u", "nan"), _hac_with(created_at=float("nan"))),
        (
            atproto_name("did:plc:huge"),
            json.dumps(
                {
                    "accessJwt": jwt({"exp": 1}),
                    "refreshJwt": jwt({"exp": 10**400}),
                    "handle": "h.test",
                    "did": "did:plc:huge",
                }
            ).encode(),
        ),
    ],
    ids=["5000-digit number", "10**400 time", "NaN time", "10**400 exp claim"],
)
def test_out_of_range_numbers_never_crash_prune_migrate_or_doctor(
    tmp_path: Path, name: str, data: bytes
) -> None:
    from sessionkeeper.maintenance.doctor import diagnose_directory
    from sessionkeeper.stores import MemoryStore

    store = DirectoryStore(tmp_path / "s")
    store.put(name, data)
    report = prune(store)
    assert (report.removed, report.unreadable) == ([], [])
    assert store.get(name) == data
    migrate(store, MemoryStore())
    corrupt = [f for f in diagnose_directory(store.path) if "corrupt" in f.message]
    # The HAC loader refuses such times too; a JWT whose exp cannot be read is kept.
    assert len(corrupt) == (1 if name.startswith("session_") else 0)


def test_a_store_path_that_is_a_file_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    not_a_dir = write(tmp_path, "plain-file", b"x")
    source = DirectoryStore(tmp_path / "source")
    for args in (
        ("prune", "--store", f"dir:{not_a_dir}"),
        ("migrate", "--from", f"dir:{source.path}", "--to", f"dir:{not_a_dir}"),
    ):
        result = run_store_cli(*args)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert "cannot open" in result.stderr and "plain-file" in result.stderr
    # A keyring store keeps its lock files in the user cache dir: here a file, too.
    keyring_env = {
        "PYTHON_KEYRING_BACKEND": "tests.stores.test_keyring.FileKeyring",
        "SESSIONKEEPER_TEST_KEYRING_FILE": str(tmp_path / "keyring.json"),
        "PYTHONPATH": str(REPO),
        "XDG_CACHE_HOME": str(not_a_dir),
    }
    doctor = run_store_cli("doctor", "--store", "keyring:svc", env=keyring_env)
    assert doctor.returncode == 1, doctor.stderr
    assert "Traceback" not in doctor.stderr
    assert "cannot be opened" in doctor.stdout and "plain-file" in doctor.stdout
