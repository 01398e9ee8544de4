"""The ``atproto`` CLI sends a session's tokens only to the host that issued them: the
remembered service, else the PDS of the DID document, else it refuses, naming --service."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from sessionkeeper.cli.atproto.state import STATE_NAME
from sessionkeeper.stores import DirectoryStore
from sessionkeeper.testing._server import LoopbackHandler, LoopbackServer
from sessionkeeper.testing.fake_pds import FakePds
from sessionkeeper.testing.hostile_server import HostileServer
from tests.support import run_atproto_cli

pytestmark = pytest.mark.timeout(120)


class _JsonHandler(LoopbackHandler):
    """Answers every GET with the owner's ``answers[path]`` (404 when absent)."""

    def do_GET(self) -> None:
        owner: _JsonServer = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        owner.count(path)
        answer = owner.answers.get(path)
        body = json.dumps(answer if answer is not None else {"error": "NotFound"}).encode()
        self.send_response(200 if answer is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _JsonServer(LoopbackServer):
    handler_class: type[BaseHTTPRequestHandler] = _JsonHandler

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, object] = {}


@pytest.fixture
def json_server() -> Iterator[_JsonServer]:
    server = _JsonServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pds() -> Iterator[FakePds]:
    with FakePds() as fake:
        fake.create_account("alice.test", "alice-pass")
        yield fake


@pytest.fixture
def sentinel_proxy() -> Iterator[HostileServer]:
    """Every request not to 127.0.0.1 (https://bsky.social included) lands here."""
    with HostileServer("trickle-headers", interval=0.05) as proxy:
        yield proxy


def run(
    session_dir: Path, *args: str, password: str | None = None, **env_extra: str
) -> subprocess.CompletedProcess[str]:
    return run_atproto_cli(session_dir, *args, password=password, env_extra=env_extra)


def _logged_in_without_state(tmp_path: Path, pds: FakePds) -> tuple[Path, str]:
    """A session dir holding alice's session but no CLI state (as after a migration)."""
    sessions = tmp_path / "s"
    logged = run(sessions, "login", "alice.test", "--service", pds.url, password="alice-pass")
    assert logged.returncode == 0, logged.stderr
    store = DirectoryStore(sessions)
    did = json.loads(store.get(STATE_NAME) or b"{}")["current"]
    store.delete(STATE_NAME)
    return sessions, did


def test_without_a_remembered_service_the_did_documents_pds_is_used_and_kept(
    tmp_path: Path, pds: FakePds, json_server: _JsonServer
) -> None:
    sessions, did = _logged_in_without_state(tmp_path, pds)
    json_server.answers[f"/{did}"] = {
        "id": did,
        "service": [
            {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds.url}
        ],
    }
    plc = {"ATP_PLC_DIRECTORY": json_server.url}
    who = run(sessions, "whoami", **plc)
    assert who.returncode == 0, who.stderr
    assert "alice.test" in who.stdout
    again = run(sessions, "whoami", **plc)
    assert again.returncode == 0, again.stderr
    assert json_server.counts[f"/{did}"] == 1  # remembered: resolved once
    state = json.loads(DirectoryStore(sessions).get(STATE_NAME) or b"{}")
    assert state["services"][did] == pds.url


def test_without_any_known_service_the_cli_refuses_and_keeps_the_session(
    tmp_path: Path, pds: FakePds, json_server: _JsonServer, sentinel_proxy: HostileServer
) -> None:
    sessions, did = _logged_in_without_state(tmp_path, pds)
    before = pds.counts["com.atproto.server.getSession"]
    refused = run(
        sessions,
        "whoami",
        ATP_PLC_DIRECTORY=json_server.url,  # answers 404 for the DID
        HTTPS_PROXY=sentinel_proxy.url,
        HTTP_PROXY=sentinel_proxy.url,
        NO_PROXY="127.0.0.1",
    )
    assert refused.returncode == 2, refused.stderr
    assert "--service" in refused.stderr and did in refused.stderr
    assert sentinel_proxy.requests == 0  # nothing went to bsky.social or anywhere else
    assert pds.counts["com.atproto.server.getSession"] == before
    listed = run(sessions, "sessions", "list", "--json")
    assert [row["did"] for row in json.loads(listed.stdout)] == [did]


def test_tokens_are_not_sent_to_a_service_other_than_their_issuer(
    tmp_path: Path, pds: FakePds, json_server: _JsonServer
) -> None:
    sessions = tmp_path / "s"
    logged = run(sessions, "login", "alice.test", "--service", pds.url, password="alice-pass")
    assert logged.returncode == 0, logged.stderr
    other = run(sessions, "--service", json_server.url, "whoami")
    assert other.returncode == 2
    assert "another host" in other.stderr
    assert sum(json_server.counts.values()) == 0


def test_whoami_names_a_get_session_answer_that_is_not_an_object(
    tmp_path: Path, pds: FakePds, json_server: _JsonServer
) -> None:
    sessions, _did = _logged_in_without_state(tmp_path, pds)
    json_server.answers["/xrpc/com.atproto.server.getSession"] = ["not", "an", "object"]
    who = run(sessions, "--service", json_server.url, "whoami")
    assert who.returncode == 1, who.stderr
    assert "not a JSON object" in who.stderr
    assert "Traceback" not in who.stderr
