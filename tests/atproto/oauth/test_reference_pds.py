"""ATProto OAuth against the reference PDS's own authorization server (@atproto/oauth-provider).

Sign-in and consent are completed over HTTP by the harness, and once in headless
Chromium; then refresh, restore in another process, eight processes refreshing at
once, reactive refresh after another process rotated, and logout.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionkeeper.atproto import (
    OAuthClient,
    OAuthSession,
    OAuthSessionManager,
    SessionExpiredError,
    XrpcError,
)
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.oauth_consent import sign_in_and_consent
from sessionkeeper.testing.reference_pds import ReferencePds
from tests.support import REPO

pytestmark = [pytest.mark.reference_pds, pytest.mark.timeout(180)]

PASSWORD = "oauth-test-pass-1"
GET_SESSION = "com.atproto.server.getSession"
HERE = Path(__file__).resolve()


def new_account(pds: ReferencePds) -> tuple[str, str]:
    return pds.create_account(f"oa{secrets.token_hex(4)}.test", PASSWORD)


def client_for(pds: ReferencePds, where: Path) -> OAuthClient:
    return OAuthClient(where, handle_resolver=pds.url, plc_directory=pds.plc_url)


def signed_in(pds: ReferencePds, where: Path) -> tuple[str, OAuthSession]:
    did, handle = new_account(pds)
    with client_for(pds, where) as client:
        redirect = sign_in_and_consent(client.authorize(handle), handle, PASSWORD)
        manager = client.callback(redirect)
        session = manager.session
        assert session is not None
        return did, session


def successful_refreshes(pds: ReferencePds) -> int:
    """Token endpoint answers of 200 since the last reset: code exchanges and refreshes."""
    return sum(1 for r in pds.requests() if r.url.startswith("/oauth/token") and r.status == 200)


def probe(session: OAuthSession) -> OAuthSessionManager:
    """A manager holding a copy of ``session`` that never refreshes by itself."""
    manager = OAuthSessionManager(None, store=MemoryStore(), auto_refresh=False)
    manager.store_session(session)
    return manager


def access_refused(session: OAuthSession) -> bool:
    """Whether the PDS answers 401 to ``session``'s access token."""
    with probe(session) as manager:
        try:
            manager.query(GET_SESSION)
        except XrpcError as exc:
            return exc.status == 401
    return False


def refresh_refused(session: OAuthSession) -> bool:
    """Whether the authorization server declares ``session``'s refresh token dead."""
    with probe(session) as manager:
        try:
            manager.refresh_token()
        except SessionExpiredError:
            return True
    return False


@pytest.fixture
def session_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "sessions"


def test_sign_in_with_consent_over_http_then_call_and_refresh(
    reference_pds: ReferencePds, session_dir: Path
) -> None:
    did, handle = new_account(reference_pds)
    with client_for(reference_pds, session_dir) as client:
        url = client.authorize(handle)
        assert url.startswith(f"{reference_pds.public_url}/oauth/authorize?")
        manager = client.callback(sign_in_and_consent(url, handle, PASSWORD))
        first = manager.session
        assert first is not None and first.did == did and first.handle == handle
        assert first.issuer == reference_pds.public_url and "atproto" in first.scope.split()
        assert manager.query(GET_SESSION)["did"] == did
        reference_pds.reset_counts()
        second = manager.refresh_token()
        assert second.refresh_token != first.refresh_token
        assert manager.query(GET_SESSION)["handle"] == handle
        assert successful_refreshes(reference_pds) == 1
    # The rotated-out access token died at once.
    assert access_refused(first)


def test_sign_in_through_headless_chromium(reference_pds: ReferencePds, session_dir: Path) -> None:
    from tests.chromium_cdp import authorize_in_chromium, chromium_binary
    from tests.support import missing_component

    if chromium_binary() is None:
        missing_component("chromium-headless-shell is not installed (scripts/install-chromium.sh)")
    did, handle = new_account(reference_pds)
    with client_for(reference_pds, session_dir) as client:
        url = client.authorize(handle)
        redirect = authorize_in_chromium(url, handle, PASSWORD, "http://127.0.0.1/callback")
        manager = client.callback(redirect)
        assert manager.query(GET_SESSION)["did"] == did


def run_worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE), "worker", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_restore_in_a_new_process(reference_pds: ReferencePds, session_dir: Path) -> None:
    did, _ = signed_in(reference_pds, session_dir)
    worker = run_worker("call", str(session_dir), did, "none")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["did"] == did


@pytest.mark.timeout(240)
def test_eight_processes_forced_to_refresh_at_once_refresh_exactly_once(
    reference_pds: ReferencePds, session_dir: Path, tmp_path: Path
) -> None:
    did, before = signed_in(reference_pds, session_dir)
    reference_pds.reset_counts()
    go = tmp_path / "go"
    workers = [run_worker("refresh", str(session_dir), did, str(go)) for _ in range(8)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("go.ready-*"))) < 8:
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers)
        time.sleep(0.02)
    go.touch()
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        reports.append(json.loads(out.splitlines()[-1]))
    assert successful_refreshes(reference_pds) == 1
    assert {r["refresh"] for r in reports} != {before.refresh_token}
    assert len({(r["access"], r["refresh"]) for r in reports}) == 1  # one token set for all
    assert all(r["did"] == did for r in reports)  # each called the PDS with it
    with client_for(reference_pds, session_dir) as client:
        manager = client.restore(did)
        assert (
            manager.session is not None and manager.session.refresh_token == reports[0]["refresh"]
        )
        assert manager.query(GET_SESSION)["did"] == did  # the session is alive


#: Six holders' clocks, seconds off the true time: machines that disagree by up to 20 minutes.
SKEWS = (0.0, 600.0, -600.0, 300.0, -300.0, 17.0)
RACE_ROUNDS = 8


def wait_for(paths: Path, count: int, pattern: str, workers: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 60
    while len(list(paths.glob(pattern))) < count:
        assert time.monotonic() < deadline and all(w.poll() is None for w in workers), [
            w.stderr.read() if w.stderr and w.poll() is not None else "" for w in workers
        ]
        time.sleep(0.005)


@pytest.mark.timeout(240)
def test_six_processes_forcing_a_refresh_round_after_round_lose_nothing(
    reference_pds: ReferencePds, session_dir: Path, tmp_path: Path
) -> None:
    """The forced-refresh race, repeated: each round six processes restore the stored set
    (with the issuer re-check), meet at a barrier, ``refresh_token()``, then getSession.

    Their clocks disagree by up to 20 minutes, as on six machines, so no ordering may
    come from a clock. 0 lost: every call succeeds, the server rotates once per round
    and never sees a spent refresh token.
    """
    did, _ = signed_in(reference_pds, session_dir)
    reference_pds.reset_counts()
    go = tmp_path / "go"
    workers = [
        run_worker(
            "race",
            str(session_dir),
            did,
            f"{go}|{RACE_ROUNDS}|{skew}|{reference_pds.url}|{reference_pds.plc_url}",
        )
        for skew in SKEWS
    ]
    reports: list[dict[str, Any]] = []
    try:
        for round_ in range(RACE_ROUNDS):
            wait_for(tmp_path, len(SKEWS), f"go-{round_}.ready-*", workers)
            (tmp_path / f"go-{round_}").touch()
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
            reports.extend(json.loads(line) for line in out.splitlines() if line.startswith("{"))
    finally:
        for worker in workers:  # a failed round leaves the others waiting at the barrier
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert len(reports) == RACE_ROUNDS * len(SKEWS)
    # A spent refresh token would have ended the session: a worker's call would fail.
    assert successful_refreshes(reference_pds) == RACE_ROUNDS  # one rotation per round
    for round_ in range(RACE_ROUNDS):
        sets = {r["refresh"] for r in reports if r["round"] == round_}
        assert len(sets) == 1 and all(r["did"] == did for r in reports)
    with client_for(reference_pds, session_dir) as client:
        assert client.restore(did).query(GET_SESSION)["did"] == did


def test_reactive_refresh_after_another_process_rotated(
    reference_pds: ReferencePds, session_dir: Path
) -> None:
    did, _ = signed_in(reference_pds, session_dir)
    with client_for(reference_pds, session_dir) as client:
        manager = client.restore(did)
        assert manager.query(GET_SESSION)["did"] == did
        reference_pds.reset_counts()
        other = run_worker("refresh", str(session_dir), did, "none")
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err
        rotated = json.loads(out.splitlines()[-1])
        # Our access token died with the rotation: the 401 makes us adopt the stored set.
        assert manager.query(GET_SESSION)["did"] == did
        assert manager.session is not None and manager.session.refresh_token == rotated["refresh"]
        assert successful_refreshes(reference_pds) == 1


def test_logout_from_a_fresh_process_ends_the_session_on_the_server(
    reference_pds: ReferencePds, session_dir: Path
) -> None:
    did, session = signed_in(reference_pds, session_dir)
    worker = run_worker("logout", str(session_dir), did, "none")
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    assert access_refused(session)
    assert refresh_refused(session)
    with client_for(reference_pds, session_dir) as client:
        assert client.store.names() == []


def worker(mode: str, directory: str, did: str, go: str) -> int:
    """One process: restore the session, then call, refresh (after ``go``) or log out."""
    with OAuthSessionManager(directory) as manager:
        if manager.load_session(did) is None:
            print(f"no stored session for {did}", file=sys.stderr)
            return 1
        if mode == "logout":
            manager.logout()
            print(json.dumps({"did": did}))
            return 0
        if mode == "refresh":
            if go != "none":
                Path(f"{go}.ready-{os.getpid()}").touch()
                while not os.path.exists(go):
                    time.sleep(0.002)
            manager.refresh_token()
        answer = manager.query(GET_SESSION)
        session = manager.session
        assert session is not None
        report = {
            "did": answer["did"],
            "access": session.access_token,
            "refresh": session.refresh_token,
        }
        print(json.dumps(report))
    return 0


class SkewedClock:
    """This machine's idea of the time: the true time plus ``offset`` seconds."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def race_worker(directory: str, did: str, spec: str) -> int:
    """One holder of the race: each round restore, wait at the barrier, refresh, call."""
    go, rounds, skew, pds_url, plc_url = spec.split("|")
    for round_ in range(int(rounds)):
        with OAuthClient(
            directory,
            handle_resolver=pds_url,
            plc_directory=plc_url,
            clock=SkewedClock(float(skew)),
        ) as client:
            # Restored before the barrier, so all six hold the same set when they force.
            manager = client.restore(did)
            Path(f"{go}-{round_}.ready-{os.getpid()}").touch()
            deadline = time.monotonic() + 120  # never outlive a test that gave up
            while not os.path.exists(f"{go}-{round_}"):
                if time.monotonic() > deadline:
                    return 3
                time.sleep(0.002)
            manager.refresh_token()
            answer = manager.query(GET_SESSION)
            session = manager.session
            assert session is not None
            report = {"round": round_, "did": answer["did"], "refresh": session.refresh_token}
            print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__" and len(sys.argv) == 6:
    if sys.argv[1] == "worker" and sys.argv[2] == "race":
        sys.exit(race_worker(*sys.argv[3:6]))
    sys.exit(worker(*sys.argv[2:6]) if sys.argv[1] == "worker" else 2)
