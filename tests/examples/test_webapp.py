"""The example web app as a confidential client, against the shipped fake authorization server.

The app and its worker run as real processes (uvicorn, the worker's CLI); the
fake stands in for the PDS and its authorization server. The app is served as
``https://app.example`` behind an imagined TLS proxy and reached on loopback
http; the fake does not fetch client metadata, so the test hands it the
document the app serves. The browser-and-reference-PDS run is
``test_webapp_browser.py``.
"""

from __future__ import annotations

import json
import secrets
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sessionkeeper.atproto.listing import stored_oauth_sessions
from sessionkeeper.stores.url import open_store
from sessionkeeper.testing.fake_oauth import DEFAULT_DID, DEFAULT_HANDLE, FakeOAuth
from sessionkeeper.testing.redis_server import RedisServer
from tests.examples.webapp_process import Browser, app_env, run_worker, running_app
from tests.support import REPO

pytestmark = pytest.mark.timeout(120)

PUBLIC = "https://app.example"
CREATE = "/xrpc/com.atproto.repo.createRecord"


@pytest.fixture
def fake() -> Iterator[FakeOAuth]:
    with FakeOAuth() as server:
        yield server


def env_for(fake: FakeOAuth, tmp_path: Path) -> dict[str, str]:
    return {
        "WEBAPP_URL": PUBLIC,
        "WEBAPP_DATA": str(tmp_path / "data"),
        "ATP_HANDLE_RESOLVER": fake.url,
        "ATP_PLC_DIRECTORY": fake.url,
    }


@pytest.fixture
def app(fake: FakeOAuth, tmp_path: Path) -> Iterator[str]:
    with running_app(env_for(fake, tmp_path), tmp_path / "app.log") as local:
        fake.register_client(httpx.get(f"{local}/client-metadata.json").json())
        yield local


def start_sign_in(browser: Browser, handle: str = DEFAULT_HANDLE) -> str:
    """Start signing in; return where the server sends the browser back (the fake consents)."""
    start = browser.post("/login", {"handle": handle})
    assert start.status_code == 303, start.text
    back = str(httpx.get(start.headers["location"]).headers["location"])
    assert back.startswith(f"{PUBLIC}/oauth/callback?")
    return back


def test_the_app_serves_its_client_metadata_and_public_key(app: str, tmp_path: Path) -> None:
    metadata = httpx.get(f"{app}/client-metadata.json").json()
    assert metadata["client_id"] == f"{PUBLIC}/client-metadata.json"
    assert metadata["redirect_uris"] == [f"{PUBLIC}/oauth/callback"]
    assert metadata["token_endpoint_auth_method"] == "private_key_jwt"
    jwks = httpx.get(f"{app}/jwks.json").json()
    assert jwks == metadata["jwks"] and "d" not in jwks["keys"][0]
    key_file = tmp_path / "data" / "client-key.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert json.loads(key_file.read_text())["x"] == jwks["keys"][0]["x"]


def test_sign_in_post_worker_and_sign_out(app: str, fake: FakeOAuth, tmp_path: Path) -> None:
    browser = Browser(app)
    assert "Sign in" in browser.get("/").text
    done = browser.get(start_sign_in(browser))
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert "user" in browser.cookies and "oauth_state" not in browser.cookies
    assert f"Signed in as {DEFAULT_HANDLE}" in browser.get("/").text
    assert fake.counts["assertion"] >= 2  # PAR and the code exchange were signed
    assert browser.post("/post", {"text": "hello"}).status_code == 303
    assert fake.counts[CREATE] == 1
    # The worker acts for the account through the same store and the same client key.
    worker = run_worker(env_for(fake, tmp_path), "--once")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert json.loads(worker.stdout.splitlines()[-1])["did"] == DEFAULT_DID
    assert fake.counts[CREATE] == 2
    assert browser.post("/logout", {}).status_code == 303
    assert fake.counts["revoked"] == 1
    assert "user" not in browser.cookies and "Sign in" in browser.get("/").text
    again = run_worker(env_for(fake, tmp_path), "--once")  # nobody is signed in any more
    assert again.returncode == 0 and again.stdout == ""
    browser.close()


def test_an_attackers_redirect_opened_in_a_victims_browser_is_refused(
    app: str, fake: FakeOAuth
) -> None:
    attacker, victim, bystander = Browser(app), Browser(app), Browser(app)
    attackers_redirect = start_sign_in(attacker)  # the attacker stops here
    start_sign_in(victim)  # the victim has a sign-in of their own in progress
    for browser in (victim, bystander):  # ... or none at all
        refused = browser.get(attackers_redirect)
        if browser is victim:
            assert refused.status_code == 403, refused.text
            assert "not started in this browser" in refused.text
            assert fake.counts["revoked"] == 1  # the sign-in it carried was ended
        assert "user" not in browser.cookies
        assert "Sign in" in browser.get("/").text
    for browser in (attacker, victim, bystander):
        browser.close()


def test_sign_in_errors_are_pages_that_name_the_problem(app: str, fake: FakeOAuth) -> None:
    browser = Browser(app)
    unknown = browser.post("/login", {"handle": "nobody.test"})
    assert unknown.status_code == 400 and "Account not found" in unknown.text
    assert "nobody.test" in unknown.text and "Traceback" not in unknown.text
    fake.consent = "deny"
    declined = browser.get(start_sign_in(browser))
    assert declined.status_code == 400 and "Sign-in declined" in declined.text
    forged = browser.get("/oauth/callback?code=x&iss=y")
    assert forged.status_code == 400 and "no state parameter" in forged.text
    empty = browser.post("/login", {"handle": " "})
    assert empty.status_code == 400 and "Enter your handle" in empty.text
    browser.close()


def test_a_server_that_stops_answering_is_named_and_the_session_is_kept(
    app: str, fake: FakeOAuth, tmp_path: Path
) -> None:
    browser = Browser(app)
    assert browser.get(start_sign_in(browser)).status_code == 303
    fake.stop()  # the PDS and its authorization server go away
    for page in (browser.get("/"), browser.post("/post", {"text": "hello"})):
        assert page.status_code == 503, page.text
        assert "Your server is unreachable" in page.text and "Traceback" not in page.text
    assert "user" in browser.cookies  # still signed in: nothing was refused
    signing_in = Browser(app).post("/login", {"handle": DEFAULT_HANDLE})  # nor is the account
    assert signing_in.status_code == 503 and "Your server is unreachable" in signing_in.text
    store = open_store(f"sqlite:{tmp_path / 'data' / 'sessions.db'}")
    assert [s.did for s in stored_oauth_sessions(store)] == [DEFAULT_DID]
    browser.close()


def test_the_one_command_development_mode_signs_in_on_the_bundled_fake(tmp_path: Path) -> None:
    """``python -m examples.webapp --fake``: a loopback client on the fake in the same process."""
    with running_app(
        {"WEBAPP_DATA": str(tmp_path / "data")}, tmp_path / "app.log", "--fake"
    ) as app:
        browser = Browser(app)
        start = browser.post("/login", {"handle": DEFAULT_HANDLE})
        assert start.status_code == 303, start.text
        back = httpx.get(start.headers["location"]).headers["location"]
        assert back.startswith(f"{app}/oauth/callback?")  # the app is its own redirect target
        assert browser.get(back).status_code == 303
        assert f"Signed in as {DEFAULT_HANDLE}" in browser.get("/").text
        assert browser.post("/post", {"text": "first post"}).status_code == 303
        assert "<li>first post " in browser.get("/").text  # the post shows among recent posts
        assert httpx.get(f"{app}/client-metadata.json").status_code == 404  # loopback: none
        browser.close()
    assert (tmp_path / "data" / "sessions.db").exists()  # SqliteStore by default


@pytest.mark.redis
def test_one_variable_moves_the_app_and_the_worker_to_redis(
    fake: FakeOAuth, tmp_path: Path, redis_server: RedisServer
) -> None:
    prefix = f"web{secrets.token_hex(3)}:"
    env = {**env_for(fake, tmp_path), "WEBAPP_STORE": f"{redis_server.url}?prefix={prefix}"}
    with running_app(env, tmp_path / "app.log") as app:
        fake.register_client(httpx.get(f"{app}/client-metadata.json").json())
        browser = Browser(app)
        assert browser.get(start_sign_in(browser)).status_code == 303
        browser.close()
    assert not (tmp_path / "data" / "sessions.db").exists()
    store = open_store(env["WEBAPP_STORE"])
    try:
        assert [s.did for s in stored_oauth_sessions(store)] == [DEFAULT_DID]
    finally:
        store.close()  # type: ignore[attr-defined]
    worker = run_worker(env, "--once")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert json.loads(worker.stdout.splitlines()[-1])["did"] == DEFAULT_DID


def test_a_busy_port_is_named_with_the_variable_that_moves_the_app(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "examples.webapp", "--fake"],
            cwd=REPO,
            env=app_env(
                {"WEBAPP_URL": f"http://127.0.0.1:{port}", "WEBAPP_DATA": str(tmp_path / "data")}
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"127.0.0.1:{port} is in use by another program" in done.stderr
    assert f"WEBAPP_URL=http://127.0.0.1:{port + 1} python -m examples.webapp --fake" in done.stderr
    assert "Traceback" not in done.stderr


def test_settings_come_from_the_environment_with_named_errors(tmp_path: Path) -> None:
    from examples.webapp.settings import Settings

    plain = Settings.from_env({"WEBAPP_DATA": str(tmp_path)})
    assert plain.public_url == "http://127.0.0.1:8000" and not plain.confidential
    assert plain.listen == ("127.0.0.1", 8000)
    assert plain.store_url == f"sqlite:{tmp_path / 'sessions.db'}"
    web = Settings.from_env({"WEBAPP_URL": "https://app.example/", "WEBAPP_LISTEN": "[::1]:9000"})
    assert web.confidential and web.redirect_uri == "https://app.example/oauth/callback"
    assert web.listen == ("::1", 9000)
    with pytest.raises(ValueError, match=r"WEBAPP_URL 'app\.example' is not an http"):
        Settings.from_env({"WEBAPP_URL": "app.example"})
