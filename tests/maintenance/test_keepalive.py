"""keepalive refreshes what would lapse, leaves the rest alone and names what needs a person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionkeeper.atproto import OAuthClient, PersistentSessionManager, name_for_did
from sessionkeeper.atproto.issuer import issuer_name
from sessionkeeper.atproto.oauth.dpop import generate_dpop_jwk
from sessionkeeper.atproto.oauth.lifetimes import DAY
from sessionkeeper.atproto.oauth.session import oauth_name_for_did
from sessionkeeper.clock import ManualClock
from sessionkeeper.hac import BasicAuthHandler, HacClient
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.maintenance.keepalive import Action, KeptAlive, exit_code, keepalive
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.fake_hac import FakeHac
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth
from sessionkeeper.testing.fake_pds import FakePds
from tests.atproto.password.test_processes import spawn

pytestmark = pytest.mark.timeout(90)

REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"


def by_account(report: list[KeptAlive]) -> dict[str, KeptAlive]:
    return {row.account: row for row in report}


def log_in(pds: FakePds, store: MemoryStore | DirectoryStore, who: str, clock: ManualClock) -> str:
    with PersistentSessionManager(None, pds.url, store=store, clock=clock) as manager:
        return manager.login(who, who.split(".")[0] + "-pass").did


def test_only_sessions_that_would_lapse_within_the_window_are_refreshed(
    pds: FakePds, alice: str, bob: str, clock: ManualClock
) -> None:
    store = MemoryStore()
    log_in(pds, store, "alice.test", clock)
    clock.advance(85 * DAY)  # alice's refresh token now lapses in 5 days
    log_in(pds, store, "bob.test", clock)  # bob's in 90
    bob_before = store.get(name_for_did(bob))
    pds.reset_counts()

    report = keepalive(store, within=7 * DAY, service=pds.url, clock=clock)

    rows = by_account(report)
    assert rows[alice].action is Action.REFRESHED and rows[alice].kind == "password"
    assert rows[alice].lifetime.refresh_expires_at == pytest.approx(clock.time() + 90 * DAY, abs=2)
    assert rows[bob].action is Action.FINE
    assert store.get(name_for_did(bob)) == bob_before  # untouched
    assert pds.counts[REFRESH] == 1 and pds.counts[CREATE] == 0  # one request: alice's
    assert exit_code(report) == 0
    assert rows[alice].as_json()["refresh_expires_at"].endswith("+00:00")
    assert rows[bob].as_json()["action"] == "fine"


class CountingStore(MemoryStore):
    """A memory store that counts its bulk reads and the names read one by one."""

    def __init__(self) -> None:
        super().__init__()
        self.bulk_reads = 0
        self.read: list[str] = []

    def get(self, name: str) -> bytes | None:
        self.read.append(name)
        return super().get(name)

    def items(self) -> Iterator[tuple[str, bytes]]:
        self.bulk_reads += 1
        return super().items()


def test_one_read_of_the_store_and_nothing_more_for_a_session_that_is_not_due(
    pds: FakePds, alice: str, bob: str, clock: ManualClock
) -> None:
    """A large store costs one bulk read; only a due session's own records are read again."""
    store = CountingStore()
    log_in(pds, store, "alice.test", clock)
    clock.advance(85 * DAY)
    log_in(pds, store, "bob.test", clock)
    store.bulk_reads, store.read = 0, []

    rows = by_account(keepalive(store, within=7 * DAY, service=pds.url, clock=clock))

    assert rows[alice].action is Action.REFRESHED and rows[bob].action is Action.FINE
    assert store.bulk_reads == 1  # every kind from the same read
    assert issuer_name(alice) in store.read
    assert not [name for name in store.read if bob.split(":")[-1] in name]


def test_lapsed_and_server_declared_dead_sessions_need_a_sign_in(
    pds: FakePds, alice: str, bob: str, clock: ManualClock
) -> None:
    store = MemoryStore()
    log_in(pds, store, "alice.test", clock)
    clock.advance(84 * DAY)
    log_in(pds, store, "bob.test", clock)
    clock.advance(7 * DAY)  # alice's refresh token lapsed a day ago; bob's is fine
    pds.revoke_all(bob)  # ... but the server has revoked it
    pds.reset_counts()

    report = keepalive(store, within=90 * DAY, service=pds.url, clock=clock)

    rows = by_account(report)
    assert rows[alice].action is Action.NEEDS_SIGN_IN
    assert "lapsed at" in rows[alice].detail and "sign in again" in rows[alice].detail
    assert rows[bob].action is Action.NEEDS_SIGN_IN and "ExpiredToken" in rows[bob].detail
    assert store.get(name_for_did(bob)) is None  # the server's verdict removes it
    assert pds.counts[REFRESH] == 1  # bob's only: alice's lapsed token is not sent
    assert exit_code(report) == 3


def test_a_due_session_that_cannot_be_refreshed_now_fails_and_is_kept(
    pds: FakePds, alice: str, clock: ManualClock
) -> None:
    store = MemoryStore()
    log_in(pds, store, "alice.test", clock)
    before = store.get(name_for_did(alice))
    clock.advance(85 * DAY)
    pds.set_fault("500", nsids={REFRESH})
    (row,) = keepalive(store, service=pds.url, clock=clock)
    assert row.action is Action.FAILED and "HTTP 500" in row.detail
    assert exit_code([row]) == 1
    store.delete(issuer_name(alice))  # as stored by a version that recorded no issuer
    (unknown,) = keepalive(store, clock=clock)  # no service known: tokens go nowhere
    assert unknown.action is Action.FAILED and "--service" in unknown.detail
    assert store.get(name_for_did(alice)) == before


@pytest.fixture
def oauth_fake(clock: ManualClock) -> Iterator[FakeOAuth]:
    with FakeOAuth(clock) as server:
        yield server


def oauth_client(fake: FakeOAuth, store: MemoryStore, clock: ManualClock) -> OAuthClient:
    return OAuthClient(store=store, handle_resolver=fake.url, plc_directory=fake.url, clock=clock)


def test_oauth_sessions_are_refreshed_within_their_end_and_named_at_it(
    oauth_fake: FakeOAuth, clock: ManualClock
) -> None:
    public, confidential = MemoryStore(), MemoryStore()
    with oauth_client(oauth_fake, public, clock) as client:
        client.callback(httpx.get(client.authorize(DEFAULT_HANDLE)).headers["location"])
    key = {**generate_dpop_jwk(), "kid": "k1"}
    with OAuthClient(
        store=confidential,
        handle_resolver=oauth_fake.url,
        plc_directory=oauth_fake.url,
        clock=clock,
        client_key=key,
        client_id="https://app.example/client-metadata.json",
        redirect_uri="https://app.example/callback",
    ) as web_client:
        oauth_fake.register_client(web_client.client_metadata)
        url = web_client.authorize(DEFAULT_HANDLE)
        web_client.callback(httpx.get(url).headers["location"])
        signed_in = clock.time()
        clock.advance(85 * DAY)  # 5 days before the confidential refresh token lapses

        (web_row,) = keepalive(confidential, clock=clock, oauth_client=web_client)
        assert web_row.kind == "oauth" and web_row.action is Action.REFRESHED
        assert web_row.lifetime.refresh_expires_at == clock.time() + 90 * DAY
        assert web_row.lifetime.session_ends_at == signed_in + 730 * DAY
        assert oauth_fake.counts["refresh"] == 1

    # Without its app's client (and key), a confidential session is not sent anywhere.
    clock.advance(85 * DAY)
    before = confidential.get(oauth_name_for_did(DEFAULT_DID))
    (foreign,) = keepalive(confidential, clock=clock)
    assert foreign.action is Action.FAILED and "refresh it with that app" in foreign.detail
    assert oauth_fake.counts["refresh"] == 1
    assert confidential.get(oauth_name_for_did(DEFAULT_DID)) == before

    # The public client's session ended 2 weeks after sign-in: nothing to refresh.
    (public_row,) = keepalive(public, clock=clock)
    assert public_row.action is Action.NEEDS_SIGN_IN and "session ended at" in public_row.detail
    assert oauth_fake.counts["refresh"] == 1


def test_cli_keepalive_and_bots_crossing_their_expiry_refresh_once(tmp_path: Path) -> None:
    """Three keepalive runs and two bots find the session due at once: one refresh in all."""
    sessions = tmp_path / "s"
    # The server's clock starts 85 days back, so the stored refresh token lapses in 5 days
    # by the real clock the processes use; then it jumps to now (new tokens live 90 days).
    clock = ManualClock(time.time() - 85 * DAY)
    with FakePds(clock=clock, grace_period=0) as pds:
        pds.create_account("alice.test", "alice-pass")
        store = DirectoryStore(sessions)
        did = log_in(pds, store, "alice.test", clock)
        clock.advance(85 * DAY)
        pds.reset_counts()
        go = tmp_path / "go"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ATP_", "SESSIONKEEPER_"))}
        command = [sys.executable, "-m", "sessionkeeper", "-v", "keepalive", "--json",
                   "--store", f"dir:{sessions}", "--service", pds.url]  # fmt: skip
        # Hold the session's lock while every process reads the due session, so each one
        # then waits for it with the old pair in hand: all but the first must adopt.
        with store.lock(name_for_did(did)):
            runs = [
                subprocess.Popen(
                    command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
                )
                for _ in range(3)
            ]
            bots = [
                spawn("--dir", str(sessions), "--url", pds.url, "--did", did,
                      "--threads", "2", "--calls", "1", "--go", str(go))
                for _ in range(2)
            ]  # fmt: skip
            go.touch()
            logs = []
            for run in runs:  # each logs its decision before it takes the lock
                assert run.stderr is not None
                line = run.stderr.readline()
                assert f"refreshing the password session of {did}" in line, line
                logs.append(line)
        outputs = [run.communicate(timeout=60) for run in runs]
        bot_reports = [json.loads(bot.communicate(timeout=60)[0]) for bot in bots]

        assert pds.counts[REFRESH] == 1 and pds.counts[CREATE] == 0
        for run, (stdout, stderr) in zip(runs, outputs, strict=True):
            assert run.returncode == 0, stderr
            (row,) = json.loads(stdout)
            assert row["account"] == did and row["action"] == "refreshed"
            assert row["refresh_expires_at"] is not None and row["kind"] == "password"
        assert all(report["ok"] == 2 and not report["failed"] for report in bot_reports)
        assert len({report["refresh"] for report in bot_reports}) == 1  # one pair for all


def test_cli_keepalive_exit_codes_and_table(tmp_path: Path, pds: FakePds, alice: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATP_", "SESSIONKEEPER_"))}
    env["COLUMNS"] = "250"
    sessions = tmp_path / "s"
    command = [sys.executable, "-m", "sessionkeeper", "keepalive", "--store", f"dir:{sessions}"]
    empty = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert empty.returncode == 0 and "no stored sessions" in empty.stdout
    log_in(pds, DirectoryStore(sessions), "alice.test", pds.clock)  # type: ignore[arg-type]
    (sessions / issuer_name(alice)).unlink()  # as stored by a version that recorded no issuer
    fine = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert fine.returncode == 0 and alice in fine.stdout and "fine" in fine.stdout
    # A window longer than the refresh token's life: due, but no service is known.
    due = subprocess.run([*command, "--within", "100d"], capture_output=True, text=True, env=env)
    assert due.returncode == 1 and "failed" in due.stdout
    bad = subprocess.run([*command, "--within", "soon"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_hac_sessions_are_kept_alive_by_one_request_and_never_logged_in(tmp_path: Path) -> None:
    clock = ManualClock()
    store = DirectoryStore(tmp_path / "hac")
    with FakeHac(clock=clock) as fake:
        manager = SessionManager(store=store, clock=clock)
        with HacClient(
            fake.url, BasicAuthHandler("admin", "nimda"), session_manager=manager, clock=clock
        ) as client:
            client.login()
            assert client.lifetime is not None
            assert client.lifetime.refresh_expires_at == clock.time() + 7200
        clock.advance(3600)  # an hour idle: HAC drops it in one more
        fake.reset_counts()

        (row,) = keepalive(store, clock=clock)
        assert row.kind == "hac" and row.account == "admin@local"
        assert row.action is Action.REFRESHED
        assert row.lifetime.refresh_expires_at == clock.time() + 7200  # idle timer restarted
        assert fake.total_requests == 1 and fake.logins == 0

        fake.kill_all_sessions()  # a restart: the session is gone on the server
        (dropped,) = keepalive(store, clock=clock)
        assert dropped.action is Action.NEEDS_SIGN_IN and "no longer accepts" in dropped.detail
        assert fake.logins == 0  # keepalive holds no credentials and never logs in

        clock.advance(3 * 3600)  # idle past the timeout: nothing to ask
        fake.reset_counts()
        (lapsed,) = keepalive(store, clock=clock)
        assert lapsed.action is Action.NEEDS_SIGN_IN and "idle too long" in lapsed.detail
        assert fake.total_requests == 0
        assert exit_code([row, dropped]) == 3


def test_the_issuer_recorded_at_login_wins_over_a_guessed_service(
    pds: FakePds, alice: str, clock: ManualClock
) -> None:
    store = MemoryStore()
    log_in(pds, store, "alice.test", clock)
    clock.advance(85 * DAY)
    # Another host named on the command line never sees the tokens: the issuer does.
    (row,) = keepalive(store, service="http://127.0.0.1:9", clock=clock)
    assert row.action is Action.REFRESHED
    assert pds.counters()["counts"]["com.atproto.server.refreshSession"] == 1


def test_cli_keepalive_without_the_stores_key_is_one_json_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATP_", "SESSIONKEEPER_"))}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    store = f"dir:{tmp_path / 's'}?encrypt=1"
    run = subprocess.run(
        [sys.executable, "-m", "sessionkeeper", "keepalive", "--store", store, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr
    answer = json.loads(run.stdout)
    assert answer["error"] == "store" and "SESSIONKEEPER_KEY" in answer["message"]
