"""A 429's wait is written to the shared store: every process waits, one asks per window."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sessionkeeper.atproto import PersistentSessionManager, RateLimitedError, XrpcError
from sessionkeeper.atproto.backoff import (
    Wait,
    decode_wait,
    encode_wait,
    login_wait_name,
    refresh_wait_name,
)
from sessionkeeper.atproto.codec import name_for_did
from sessionkeeper.core.state import MAX_RETRY_AFTER
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.stores.memory import MemoryStore
from sessionkeeper.testing.fake_pds import FakePds
from tests.atproto.password.test_processes import spawn

pytestmark = pytest.mark.timeout(90)

REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"


def test_processes_sharing_a_store_send_one_refresh_per_rate_limit_window(tmp_path: Path) -> None:
    sessions = tmp_path / "s"
    with FakePds() as pds:
        pds.create_account("alice.test", "alice-pass")
        with PersistentSessionManager(sessions, pds.url) as manager:
            did = manager.login("alice.test", "alice-pass").did
        pds.set_fault("429", nsids={REFRESH})  # Retry-After: 2
        pds.reset_counts()
        go = tmp_path / "go"
        workers = [
            # A margin longer than the token's life: due at once, yet still valid, so each
            # call falls back to the current token after the refused refresh.
            spawn("--dir", str(sessions), "--url", pds.url, "--did", did, "--margin", "86400",
                  "--threads", "2", "--calls", "2", "--ready", str(tmp_path / f"ready{i}"),
                  "--go", str(go))
            for i in range(4)
        ]  # fmt: skip
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready{i}").exists() for i in range(4)):
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.01)
        go.touch()
        reports = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
        assert pds.counts[REFRESH] == 1  # four processes, one attempt in the window
        assert all(report["ok"] == 4 and not report["failed"] for report in reports)
        record = decode_wait(
            DirectoryStore(sessions).get(refresh_wait_name(name_for_did(did), did))
        )
        assert record is not None and "HTTP 429" in record.reason


def test_a_refresh_is_not_sent_while_another_process_recorded_wait_runs(
    pds: FakePds, alice: str
) -> None:
    store = MemoryStore()
    with PersistentSessionManager(None, pds.url, store=store) as manager:
        manager.login("alice.test", "alice-pass", force=True)
        name = refresh_wait_name(name_for_did(alice), alice)
        store.put(name, encode_wait(Wait(pds.clock.time() + 1e9, "HTTP 429 elsewhere")))
        with pytest.raises(RateLimitedError, match="not sent: the server asked") as caught:
            manager.refresh_token()
        # The server answered 429 once; the error says so, and which record holds the wait.
        assert caught.value.status == 429 and caught.value.record == name
        assert f"recorded in the store as {name}" in str(caught.value)
        # A recorded wait is capped as a Retry-After answer is.
        assert caught.value.retry_after is not None
        assert caught.value.retry_after <= MAX_RETRY_AFTER
        assert pds.counts[REFRESH] == 0
    store.put(name, encode_wait(Wait(pds.clock.time() - 1, "spent")))
    with PersistentSessionManager(None, pds.url, store=store) as later:
        later.load_session(alice)
        later.refresh_token()  # a spent record is no obstacle, and is removed
    assert pds.counts[REFRESH] == 1 and store.get(name) is None


def test_a_rate_limited_login_makes_every_process_wait_instead_of_retrying(tmp_path: Path) -> None:
    with FakePds(rate_limits=True) as pds:
        pds.create_account("alice.test", "alice-pass")
        store = DirectoryStore(tmp_path / "s")
        with PersistentSessionManager(None, pds.url, store=store) as manager:
            # force: each asks the server (a valid stored session is otherwise reused).
            for _ in range(30):  # the budget: 30 per 5 minutes
                manager.login("alice.test", "alice-pass", force=True)
            with pytest.raises(XrpcError) as refused:
                manager.login("alice.test", "alice-pass", force=True)
            assert refused.value.status == 429
        assert pds.counts[CREATE] == 31
        # Other processes sharing the store: none of them asks again in the window.
        for _ in range(3):
            with PersistentSessionManager(
                None, pds.url, store=DirectoryStore(tmp_path / "s")
            ) as other:
                with pytest.raises(RateLimitedError, match="not sent") as waited:
                    other.login("alice.test", "alice-pass", force=True)
                assert waited.value.record == login_wait_name(pds.url, "alice.test")
                assert waited.value.retry_after is not None and waited.value.retry_after > 200
        assert pds.counts[CREATE] == 31
        record = decode_wait(store.get(login_wait_name(pds.url, "alice.test")))
        assert record is not None and record.until > time.time() + 200
        # The record names no identifier and holds no secret.
        assert "alice" not in login_wait_name(pds.url, "alice.test")
        assert b"alice-pass" not in (store.get(login_wait_name(pds.url, "alice.test")) or b"")
