"""Against the reference ATProto PDS (``@atproto/pds`` on loopback).

First the facts the clients rely on, checked with raw HTTP; then the
session manager against the real server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from sessionkeeper.atproto import (
    AsyncPersistentSessionManager,
    AtpSessionEvent,
    NoSessionError,
    PersistentSessionManager,
    SessionExpiredError,
)
from sessionkeeper.clock import ManualClock
from sessionkeeper.testing.reference_pds import (
    ReferencePds,
    ReferencePdsError,
    ReferencePdsUnavailable,
    is_installed,
)
from tests.reference_pds_fixture import require_reference_pds
from tests.support import REPO

pytestmark = [pytest.mark.reference_pds, pytest.mark.timeout(120)]

PASSWORD = "correct-horse-battery"


def new_handle() -> str:
    """A handle no other test uses (the PDS lives for the whole session)."""
    return f"t{secrets.token_hex(5)}.test"


def xrpc(pds: ReferencePds, nsid: str) -> str:
    return f"{pds.url}/xrpc/{nsid}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def create_session(pds: ReferencePds, handle: str) -> dict[str, Any]:
    response = httpx.post(
        xrpc(pds, "com.atproto.server.createSession"),
        json={"identifier": handle, "password": PASSWORD},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(pds: ReferencePds, refresh_jwt: str) -> httpx.Response:
    return httpx.post(
        xrpc(pds, "com.atproto.server.refreshSession"), headers=bearer(refresh_jwt), timeout=30
    )


@pytest.fixture
def account(reference_pds: ReferencePds) -> tuple[str, str]:
    """A fresh account ``(did, handle)`` with password :data:`PASSWORD`."""
    return reference_pds.create_account(new_handle(), PASSWORD)


# -- the harness ---------------------------------------------------------------


def test_missing_install_is_a_named_error_that_says_how_to_install(tmp_path: Path) -> None:
    assert not is_installed(tmp_path)
    with pytest.raises(
        ReferencePdsUnavailable, match=r"python -m sessionkeeper\.testing\.reference_pds install"
    ):
        ReferencePds(tools_dir=tmp_path).start()


def test_the_wheel_carries_the_launcher_and_installer_the_harness_needs(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("sessionkeeper-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    folder = "sessionkeeper/testing/reference_pds/"
    for part in (
        "__init__.py",
        "__main__.py",
        "run.mjs",
        "install.sh",
        "package.json",
        "package-lock.json",
    ):
        assert folder + part in names, part


def test_pds_and_plc_listen_on_loopback_only(reference_pds: ReferencePds) -> None:
    listening = _listening_addresses()
    if listening is None:
        pytest.skip("/proc/net/tcp is not available on this system")
    for url in (reference_pds.url, reference_pds.plc_url):
        port = int(url.rsplit(":", 1)[1])
        assert listening.get(port) == {"127.0.0.1"}, (url, listening.get(port))


def test_counts_are_per_nsid_and_reset(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    _did, handle = account
    reference_pds.reset_counts()
    session = create_session(reference_pds, handle)
    for _ in range(3):
        response = httpx.get(
            xrpc(reference_pds, "com.atproto.server.getSession"),
            headers=bearer(session["accessJwt"]),
        )
        assert response.status_code == 200
    assert reference_pds.count("com.atproto.server.createSession") == 1
    assert reference_pds.count("com.atproto.server.getSession") == 3
    assert reference_pds.count("com.atproto.server.refreshSession") == 0
    reference_pds.reset_counts()
    assert reference_pds.counts() == {}


def test_a_failed_call_counts_once_with_its_status(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    _did, handle = account
    reference_pds.reset_counts()
    wrong = httpx.post(
        xrpc(reference_pds, "com.atproto.server.createSession"),
        json={"identifier": handle, "password": "not-the-password"},
        timeout=30,
    )
    assert wrong.status_code == 401
    assert refresh(reference_pds, "not-a-token").status_code == 400
    create_session(reference_pds, handle)

    assert reference_pds.count("com.atproto.server.createSession") == 2
    assert reference_pds.count("com.atproto.server.createSession", status=401) == 1
    assert reference_pds.count("com.atproto.server.createSession", status=200) == 1
    assert reference_pds.count("com.atproto.server.refreshSession") == 1
    assert [(r.method, r.nsid, r.status) for r in reference_pds.requests()] == [
        ("POST", "com.atproto.server.createSession", 401),
        ("POST", "com.atproto.server.refreshSession", 400),
        ("POST", "com.atproto.server.createSession", 200),
    ]


@pytest.mark.timeout(180)
def test_rate_limits_turn_on_with_the_flag(reference_pds: ReferencePds) -> None:
    handle = new_handle()
    reference_pds.create_account(handle, PASSWORD)
    unlimited = httpx.post(
        xrpc(reference_pds, "com.atproto.server.createSession"),
        json={"identifier": handle, "password": PASSWORD},
        timeout=30,
    )
    assert "RateLimit-Limit" not in unlimited.headers

    with ReferencePds(rate_limits=True) as limited_pds:
        limited_pds.create_account(handle, PASSWORD)
        limited = httpx.post(
            xrpc(limited_pds, "com.atproto.server.createSession"),
            json={"identifier": handle, "password": PASSWORD},
            timeout=30,
        )
    assert limited.status_code == 200
    assert limited.headers["RateLimit-Policy"] == "30;w=300"
    assert limited.headers["RateLimit-Limit"] == "30"
    assert int(limited.headers["RateLimit-Remaining"]) == 29


def test_create_account_reports_a_refusal_by_name(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    _did, handle = account
    with pytest.raises(ReferencePdsError, match=r"createAccount for .* answered 400"):
        reference_pds.create_account(handle, PASSWORD)


@pytest.mark.timeout(180)
def test_stop_ends_the_process_and_removes_its_data() -> None:
    require_reference_pds()
    with ReferencePds() as pds:
        pid = pds.pid
        assert pid is not None
        workdir = pds.log_path.parent
        assert httpx.get(f"{pds.url}/xrpc/_health").status_code == 200
        url = pds.url
    assert pds.pid is None
    assert not workdir.exists()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/xrpc/_health", timeout=2)
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


@pytest.mark.timeout(180)
def test_a_killed_owner_leaves_no_server_behind() -> None:
    require_reference_pds()
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()
        assert line, owner.stderr.read() if owner.stderr else ""
        node_pid, url, workdir = line.split()
        assert httpx.get(f"{url}/xrpc/_health").status_code == 200
        assert Path(workdir).is_dir()
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 60
    while Path(f"/proc/{node_pid}").exists() and not _is_zombie(int(node_pid)):
        assert time.monotonic() < deadline, "the PDS outlived its killed owner"
        time.sleep(0.1)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/xrpc/_health", timeout=2)
    assert not Path(workdir).exists()


#: A process that starts the PDS, reports it, and waits to be killed.
OWNER = """
import time
import zipfile
from sessionkeeper.testing.reference_pds import ReferencePds
pds = ReferencePds().start()
print(pds.pid, pds.url, pds.log_path.parent, flush=True)
time.sleep(600)
"""


# -- ATProto facts, raw HTTP -------------------------------------------------------


def test_create_session_returns_an_access_and_refresh_pair(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    did, handle = account
    session = create_session(reference_pds, handle)
    assert session["did"] == did
    assert session["handle"] == handle
    access, refresh_claims = claims(session["accessJwt"]), claims(session["refreshJwt"])
    assert jwt.get_unverified_header(session["accessJwt"])["typ"] == "at+jwt"
    assert access["scope"] == "com.atproto.access"
    assert access["sub"] == did
    assert access["exp"] - access["iat"] == 2 * 3600
    assert refresh_claims["scope"] == "com.atproto.refresh"
    assert refresh_claims["exp"] - refresh_claims["iat"] == 90 * 24 * 3600


def test_wrong_password_is_401_authentication_required(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    _did, handle = account
    response = httpx.post(
        xrpc(reference_pds, "com.atproto.server.createSession"),
        json={"identifier": handle, "password": "not-the-password"},
        timeout=30,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "AuthenticationRequired"


def test_get_session_with_the_access_token(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    did, handle = account
    session = create_session(reference_pds, handle)
    response = httpx.get(
        xrpc(reference_pds, "com.atproto.server.getSession"), headers=bearer(session["accessJwt"])
    )
    assert response.status_code == 200
    assert response.json()["did"] == did
    assert response.json()["handle"] == handle
    missing = httpx.get(xrpc(reference_pds, "com.atproto.server.getSession"))
    assert missing.status_code == 401
    assert missing.json()["error"] == "AuthMissing"


def test_refresh_rotates_and_reuse_inside_the_grace_returns_the_same_jti(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    did, handle = account
    session = create_session(reference_pds, handle)
    first = refresh(reference_pds, session["refreshJwt"])
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["did"] == did
    assert rotated["refreshJwt"] != session["refreshJwt"]
    assert claims(rotated["refreshJwt"])["jti"] != claims(session["refreshJwt"])["jti"]

    again = refresh(reference_pds, session["refreshJwt"])
    assert again.status_code == 200, again.text
    assert claims(again.json()["refreshJwt"])["jti"] == claims(rotated["refreshJwt"])["jti"]

    # The rotated token is itself good for one more rotation.
    onward = refresh(reference_pds, rotated["refreshJwt"])
    assert onward.status_code == 200, onward.text


def test_refresh_with_an_access_token_is_invalid_token(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    _did, handle = account
    session = create_session(reference_pds, handle)
    response = refresh(reference_pds, session["accessJwt"])
    assert response.status_code == 400
    assert response.json()["error"] == "InvalidToken"


def test_delete_session_then_refresh_is_expired_token(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    _did, handle = account
    session = create_session(reference_pds, handle)
    deleted = httpx.post(
        xrpc(reference_pds, "com.atproto.server.deleteSession"),
        headers=bearer(session["refreshJwt"]),
    )
    assert deleted.status_code == 200
    response = refresh(reference_pds, session["refreshJwt"])
    assert response.status_code == 400
    assert response.json() == {"error": "ExpiredToken", "message": "Token has been revoked"}
    # Access tokens are stateless: the old one keeps working until it expires.
    still = httpx.get(
        xrpc(reference_pds, "com.atproto.server.getSession"), headers=bearer(session["accessJwt"])
    )
    assert still.status_code == 200


def test_an_expired_access_token_is_400_expired_token(
    reference_pds: ReferencePds, account: tuple[str, str]
) -> None:
    did, _handle = account
    url = xrpc(reference_pds, "com.atproto.server.getSession")
    fresh = httpx.get(url, headers=bearer(reference_pds.mint_access_token(did, expires_in=600)))
    assert fresh.status_code == 200, fresh.text  # the minted token is one the PDS accepts
    expired = httpx.get(url, headers=bearer(reference_pds.mint_access_token(did)))
    assert expired.status_code == 400
    assert expired.json() == {"error": "ExpiredToken", "message": "Token has expired"}


# -- the session manager against the real server ------------------------------------


def test_manager_logs_in_calls_and_refreshes_against_the_reference_pds(
    reference_pds: ReferencePds, account: tuple[str, str], tmp_path: Path
) -> None:
    did, handle = account
    reference_pds.reset_counts()
    events: list[AtpSessionEvent] = []
    with PersistentSessionManager(tmp_path, reference_pds.url) as manager:
        manager.on_session_event(lambda event, _session: events.append(event))
        session = manager.login(handle, PASSWORD)
        assert session.did == did
        assert manager.list_sessions() == [did]
        assert manager.query("com.atproto.server.getSession")["did"] == did

        before = session
        after = manager.refresh_token()
        assert after.refresh_jwt != before.refresh_jwt
        assert claims(after.refresh_jwt)["jti"] != claims(before.refresh_jwt)["jti"]
        assert manager.query("com.atproto.server.getSession")["handle"] == handle
        stored = json.loads((tmp_path / session_file_name(did)).read_text())
        assert stored["refreshJwt"] == after.refresh_jwt
        assert stored["accessJwt"] == after.access_jwt

        # The previous refresh token, reused inside the grace, yields the same rotation.
        reused = refresh(reference_pds, before.refresh_jwt)
        assert reused.status_code == 200, reused.text
        assert claims(reused.json()["refreshJwt"])["jti"] == claims(after.refresh_jwt)["jti"]

    assert events == [AtpSessionEvent.CREATE, AtpSessionEvent.UPDATE]
    assert reference_pds.count("com.atproto.server.createSession") == 1
    assert reference_pds.count("com.atproto.server.refreshSession") == 2
    assert reference_pds.count("com.atproto.server.getSession") == 2


def test_a_stale_holder_refreshing_inside_the_grace_gets_the_same_rotation(
    reference_pds: ReferencePds, account: tuple[str, str], tmp_path: Path
) -> None:
    _did, handle = account
    with (
        PersistentSessionManager(tmp_path / "a", reference_pds.url) as first,
        PersistentSessionManager(tmp_path / "b", reference_pds.url) as stale,
    ):
        stale.store_session(first.login(handle, PASSWORD))
        rotated = first.refresh_token()
        again = stale.refresh_token()
        assert claims(again.refresh_jwt)["jti"] == claims(rotated.refresh_jwt)["jti"]
        assert stale.query("com.atproto.server.getSession")["handle"] == handle


def test_refresh_after_logout_is_expired_event_and_error(
    reference_pds: ReferencePds, account: tuple[str, str], tmp_path: Path
) -> None:
    did, handle = account
    with (
        PersistentSessionManager(tmp_path, reference_pds.url) as bot,
        PersistentSessionManager(tmp_path, reference_pds.url) as other,
    ):
        bot.login(handle, PASSWORD)
        assert other.load_session(did) is not None
        events: list[tuple[AtpSessionEvent, str | None]] = []
        other.on_session_event(
            lambda event, session: events.append((event, session.did if session else None))
        )
        bot.logout()
        assert bot.session is None
        assert not (tmp_path / session_file_name(did)).exists()
        with pytest.raises(NoSessionError):
            bot.refresh_token()

        with pytest.raises(SessionExpiredError) as caught:
            other.refresh_token()
        assert caught.value.error == "ExpiredToken"
        assert caught.value.status == 400
        assert events == [(AtpSessionEvent.EXPIRED, did)]
        assert other.session is None
        assert other.list_sessions() == []


def test_manager_refreshes_and_retries_once_when_the_server_says_expired(
    reference_pds: ReferencePds, account: tuple[str, str], tmp_path: Path
) -> None:
    did, handle = account
    # The manager's clock runs an hour behind, so it believes the token is fresh
    # and only the server's 400 ExpiredToken can make it refresh.
    clock = ManualClock(time.time() - 3600)
    with PersistentSessionManager(tmp_path, reference_pds.url, clock=clock) as manager:
        session = manager.login(handle, PASSWORD)
        manager.store_session(replace(session, access_jwt=reference_pds.mint_access_token(did)))
        assert not manager.needs_refresh()
        reference_pds.reset_counts()

        assert manager.query("com.atproto.server.getSession")["did"] == did

        assert reference_pds.count("com.atproto.server.getSession", status=400) == 1
        assert reference_pds.count("com.atproto.server.getSession", status=200) == 1
        assert reference_pds.count("com.atproto.server.refreshSession") == 1
        assert manager.session is not None
        assert manager.session.refresh_jwt != session.refresh_jwt


def test_auth_on_a_plain_httpx_client_refreshes_and_retries_once(
    reference_pds: ReferencePds, account: tuple[str, str], tmp_path: Path
) -> None:
    did, handle = account
    clock = ManualClock(time.time() - 3600)
    with PersistentSessionManager(tmp_path, reference_pds.url, clock=clock) as manager:
        session = manager.login(handle, PASSWORD)
        manager.store_session(replace(session, access_jwt=reference_pds.mint_access_token(did)))
        reference_pds.reset_counts()
        with httpx.Client(auth=manager.auth) as client:
            response = client.get(xrpc(reference_pds, "com.atproto.server.getSession"))
        assert response.status_code == 200
        assert response.json()["did"] == did
        assert reference_pds.count("com.atproto.server.refreshSession") == 1
        assert reference_pds.count("com.atproto.server.getSession") == 2


def test_async_manager_against_the_reference_pds(
    reference_pds: ReferencePds, account: tuple[str, str], tmp_path: Path
) -> None:
    did, handle = account

    async def scenario() -> list[AtpSessionEvent]:
        events: list[AtpSessionEvent] = []
        clock = ManualClock(time.time() - 3600)
        async with AsyncPersistentSessionManager(
            tmp_path, reference_pds.url, clock=clock
        ) as manager:
            manager.on_session_event(lambda event, _session: events.append(event))
            session = await manager.login(handle, PASSWORD)
            await manager.store_session(
                replace(session, access_jwt=reference_pds.mint_access_token(did))
            )
            answer = await manager.query("com.atproto.server.getSession")
            assert answer["did"] == did
            await manager.logout()
            assert await manager.list_sessions() == []
        return events

    reference_pds.reset_counts()
    events = asyncio.run(scenario())
    assert events == [
        AtpSessionEvent.CREATE,
        AtpSessionEvent.CREATE,
        AtpSessionEvent.UPDATE,
        AtpSessionEvent.DELETE,
    ]
    assert reference_pds.count("com.atproto.server.createSession") == 1
    assert reference_pds.count("com.atproto.server.refreshSession") == 1
    assert reference_pds.count("com.atproto.server.deleteSession") == 1


@pytest.mark.timeout(240)
def test_four_processes_due_at_once_make_exactly_one_refresh(
    reference_pds: ReferencePds, account: tuple[str, str], tmp_path: Path
) -> None:
    did, handle = account
    sessions = tmp_path / "sessions"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    with PersistentSessionManager(sessions, reference_pds.url) as manager:
        original = manager.login(handle, PASSWORD)
    reference_pds.reset_counts()

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(sessions), reference_pds.url, str(barrier), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    try:
        _wait_for(lambda: len(list(barrier.glob("ready-*"))) == WORKERS, workers)
        (barrier / "go").touch()
        outputs = [worker.communicate(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-2000:]
    results = [json.loads(out) for out, _err in outputs]

    assert reference_pds.count("com.atproto.server.refreshSession") == 1
    assert reference_pds.count("com.atproto.server.createSession") == 0
    assert reference_pds.count("com.atproto.server.getSession") == WORKERS
    assert {result["did"] for result in results} == {did}

    stored = json.loads((sessions / session_file_name(did)).read_text())
    assert stored["refreshJwt"] != original.refresh_jwt
    pair = {"access": digest(stored["accessJwt"]), "refresh": digest(stored["refreshJwt"])}
    assert all(result["pair"] == pair for result in results), results
    check = httpx.get(
        xrpc(reference_pds, "com.atproto.server.getSession"), headers=bearer(stored["accessJwt"])
    )
    assert check.status_code == 200
    assert check.json()["did"] == did
    onward = refresh(reference_pds, stored["refreshJwt"])
    assert onward.status_code == 200, onward.text


WORKERS = 4

#: One bot process: load the shared session, wait at the barrier, make one call with a
#: refresh margin longer than the access token's whole life (so the call must refresh or
#: adopt), then report the pair it ended with (as digests: tokens stay out of output).
WORKER = """
import hashlib, json, sys, time
from pathlib import Path
from sessionkeeper.atproto import PersistentSessionManager

sessions, url, barrier, index = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
manager = PersistentSessionManager(sessions, url, refresh_margin=10_000.0)
[did] = manager.list_sessions()
manager.load_session(did)
(barrier / f"ready-{index}").touch()
while not (barrier / "go").exists():
    time.sleep(0.001)
answer = manager.query("com.atproto.server.getSession")
session = manager.session
digest = lambda token: hashlib.sha256(token.encode()).hexdigest()[:16]
print(json.dumps({
    "did": answer["did"],
    "pair": {"access": digest(session.access_jwt), "refresh": digest(session.refresh_jwt)},
}))
"""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def session_file_name(did: str) -> str:
    return did.replace(":", "_").replace("/", "_") + ".json"


def _wait_for(
    condition: Callable[[], bool], workers: list[subprocess.Popen[str]], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for worker in workers:
            if worker.poll() is not None:
                _out, err = worker.communicate()
                pytest.fail(f"a worker exited early ({worker.returncode}): {err[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail("the workers never reached the barrier")
        time.sleep(0.01)


# -- helpers ---------------------------------------------------------------------


def _listening_addresses() -> dict[int, set[str]] | None:
    """Port -> IPv4/IPv6 addresses in LISTEN state, from /proc/net/tcp{,6}."""
    found: dict[int, set[str]] = {}
    any_table = False
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        any_table = True
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state != "0A":  # TCP_LISTEN
                continue
            address_hex, port_hex = local.split(":")
            raw = bytes.fromhex(address_hex)
            # The kernel prints each 32-bit word in host (little-endian) order.
            words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            found.setdefault(int(port_hex, 16), set()).add(socket.inet_ntop(family, words))
    return found if any_table else None


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (OSError, IndexError):
        return True
