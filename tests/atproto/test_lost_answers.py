"""A refresh whose answer was lost (process killed after the server answered) is detected.

App-password sessions recover inside the server's grace period with no
createSession; where the server refuses the spent token, the session is
removed and the error says the answer was lost, and when.

This file is also a worker: ``python test_lost_answers.py oauth-worker DIR URL DID``
restores an OAuth session, refreshes it and hangs once the token endpoint has
answered, before the new set is stored, for the test to SIGKILL it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionkeeper.atproto import (
    AtpSessionEvent,
    OAuthClient,
    PersistentSessionManager,
    SessionExpiredError,
    name_for_did,
)
from sessionkeeper.atproto.intent import decode_intent, intent_name, token_digest
from sessionkeeper.atproto.oauth.session import oauth_name_for_did
from sessionkeeper.stores.directory import DirectoryStore
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth
from sessionkeeper.testing.fake_pds import FakePds
from sessionkeeper.testing.reference_pds import ReferencePds
from tests.atproto.password.test_processes import spawn
from tests.support import REPO

pytestmark = pytest.mark.timeout(120)

REFRESH = "com.atproto.server.refreshSession"
CREATE = "com.atproto.server.createSession"
GET_SESSION = "com.atproto.server.getSession"
WORKER = Path(__file__).resolve()


def kill_after_the_refresh_answer(sessions: Path, url: str, did: str) -> None:
    """Run a process that refreshes and SIGKILL it after the answer, before the store write."""
    victim = spawn("--dir", str(sessions), "--url", url, "--did", did, "--margin", "100000",
                   "--threads", "1", "--calls", "1", "--hang", "after-refresh-answer")  # fmt: skip
    assert victim.stdout is not None
    line = victim.stdout.readline()
    assert line.strip() == "REFRESH_ANSWERED", victim.communicate()
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)


def unfinished_intent(store: DirectoryStore, session_name: str, did: str, token: str) -> bool:
    intent = decode_intent(store.get(intent_name(session_name, did)))
    return intent is not None and intent.digest == token_digest(token)


@pytest.mark.reference_pds
def test_a_lost_answer_is_recovered_inside_the_reference_pds_grace_without_a_login(
    tmp_path: Path, reference_pds: ReferencePds, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = tmp_path / "s"
    store = DirectoryStore(sessions)
    did, handle = reference_pds.create_account(f"lost{time.time_ns() % 10**8}.test", "pw-lost")
    with PersistentSessionManager(None, reference_pds.url, store=store) as manager:
        before = manager.login(handle, "pw-lost")
    reference_pds.reset_counts()

    kill_after_the_refresh_answer(sessions, reference_pds.url, did)

    # The server rotated; the store still holds the spent pair and the unfinished intent.
    stored = json.loads(store.get(name_for_did(did)) or b"")
    assert stored["refreshJwt"] == before.refresh_jwt
    assert unfinished_intent(store, name_for_did(did), did, before.refresh_jwt)
    with PersistentSessionManager(None, reference_pds.url, store=store) as survivor:
        survivor.load_session(did)
        recovered = survivor.refresh_token()
        assert survivor.query(GET_SESSION)["did"] == did
    assert recovered.refresh_jwt != before.refresh_jwt
    assert "a refresh's answer was lost at" in caplog.text and "recovered" in caplog.text
    counts = reference_pds.counts()
    assert counts[REFRESH] == 2 and counts[CREATE] == 0
    assert not unfinished_intent(store, name_for_did(did), did, recovered.refresh_jwt)


def test_a_lost_answer_the_server_refuses_to_repeat_is_named_in_the_error(tmp_path: Path) -> None:
    sessions = tmp_path / "s"
    store = DirectoryStore(sessions)
    with FakePds(grace_period=0) as pds:  # a hosted PDS that revokes at once
        did = pds.create_account("alice.test", "alice-pass")
        with PersistentSessionManager(None, pds.url, store=store) as manager:
            manager.login("alice.test", "alice-pass")
        kill_after_the_refresh_answer(sessions, pds.url, did)
        pds.reset_counts()
        events: list[AtpSessionEvent] = []
        with PersistentSessionManager(None, pds.url, store=store) as survivor:
            survivor.load_session(did)
            survivor.on_session_event(lambda event, _s: events.append(event))
            with pytest.raises(SessionExpiredError, match="a refresh's answer was lost at 20"):
                survivor.refresh_token()
        assert events == [AtpSessionEvent.EXPIRED]
        assert pds.counts[REFRESH] == 1 and pds.counts[CREATE] == 0
        assert store.get(name_for_did(did)) is None  # removed, and its intent with it
        assert store.get(intent_name(name_for_did(did), did)) is None


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        yield server


def oauth_worker(sessions: str, url: str, did: str) -> int:
    """Refresh ``did``'s OAuth session and hang after the token endpoint answered."""

    def hang(response: httpx.Response) -> None:
        if response.url.path.endswith("/oauth/token") and response.status_code == 200:
            response.read()
            print("REFRESH_ANSWERED", flush=True)
            time.sleep(600)

    http = httpx.Client(event_hooks={"response": [hang]})
    store = DirectoryStore(sessions)
    with OAuthClient(store=store, handle_resolver=url, plc_directory=url, http=http) as client:
        client.restore(did).refresh_token()
    return 0


def test_an_oauth_session_whose_refresh_answer_was_lost_is_removed_naming_why(
    tmp_path: Path, fake: FakeOAuth
) -> None:
    sessions = tmp_path / "s"
    store = DirectoryStore(sessions)
    with OAuthClient(store=store, handle_resolver=fake.url, plc_directory=fake.url) as client:
        client.callback(httpx.get(client.authorize(DEFAULT_HANDLE)).headers["location"])
    victim = subprocess.Popen(
        [sys.executable, str(WORKER), "oauth-worker", str(sessions), fake.url, DEFAULT_DID],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},  # the worker imports this test package
    )
    assert victim.stdout is not None
    line = victim.stdout.readline()
    assert line.strip() == "REFRESH_ANSWERED", victim.communicate()
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    assert fake.counts["refresh"] == 1

    events: list[AtpSessionEvent] = []
    with OAuthClient(store=store, handle_resolver=fake.url, plc_directory=fake.url) as client:
        manager = client.restore(DEFAULT_DID)
        manager.on_session_event(lambda event, _s: events.append(event))
        with pytest.raises(SessionExpiredError, match="a refresh's answer was lost at") as caught:
            manager.refresh_token()
        manager.close()
    assert "authorize again" in str(caught.value)
    assert events == [AtpSessionEvent.EXPIRED]
    assert store.get(oauth_name_for_did(DEFAULT_DID)) is None


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "oauth-worker":
    sys.exit(oauth_worker(*sys.argv[2:5]))
