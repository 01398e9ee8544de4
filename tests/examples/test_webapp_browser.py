"""The example web app in headless Chromium against the reference PDS, with its worker.

Chromium signs in through the PDS's own sign-in and consent pages, posts from
the app's form; the worker posts for the same account across a forced expiry
(one refresh at the server for app and worker together); sign out revokes, and
the PDS then refuses both tokens. The reference PDS refuses a confidential
client served locally (see the OAuth guide), so the app runs here as a
loopback client; ``test_webapp.py`` covers its confidential path on the fake.

A screenshot of the signed-in home page is written to
``$SESSIONKEEPER_SCREENSHOT_DIR/oauth-webapp-home.png`` (the OAuth guide's
picture) or, without the variable, into the test's temporary folder.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from sessionkeeper.atproto import OAuthSession, OAuthSessionManager
from sessionkeeper.stores.url import open_store
from sessionkeeper.testing.reference_pds import ReferencePds
from tests.atproto.oauth.test_reference_pds import (
    access_refused,
    refresh_refused,
    successful_refreshes,
)
from tests.examples.webapp_process import run_worker, running_app
from tests.support import missing_component

pytestmark = [pytest.mark.reference_pds, pytest.mark.timeout(240)]

PASSWORD = "webapp-pass-1"


def wait_for(cdp: Any, expression: str, what: str, timeout: float = 30) -> Any:
    """Poll ``expression`` in the page until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = cdp.evaluate(expression)
        except RuntimeError:
            value = None  # the page is navigating
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"the page never showed {what}: {cdp.evaluate('document.title')!r}")


def stored_session(data: Path, did: str) -> OAuthSession:
    with OAuthSessionManager(None, store=open_store(f"sqlite:{data / 'sessions.db'}")) as m:
        session = m.load_session(did)
        assert session is not None
        return session


def force_expiry(data: Path, did: str) -> None:
    """Make the stored access token look expired to every process (as after an hour)."""
    with OAuthSessionManager(None, store=open_store(f"sqlite:{data / 'sessions.db'}")) as m:
        session = m.load_session(did)
        assert session is not None
        m.store_session(dataclasses.replace(session, expires_at=time.time() - 1))


def test_the_example_app_in_chromium_against_the_reference_pds(
    reference_pds: ReferencePds, tmp_path: Path
) -> None:
    from tests.chromium_cdp import chromium_binary, chromium_page, sign_in_and_consent_in_page

    if chromium_binary() is None:
        missing_component("chromium-headless-shell is not installed (scripts/install-chromium.sh)")
    did, handle = reference_pds.create_account(f"wa{secrets.token_hex(4)}.test", PASSWORD)
    data = tmp_path / "data"
    env = {
        "WEBAPP_DATA": str(data),
        "ATP_HANDLE_RESOLVER": reference_pds.url,
        "ATP_PLC_DIRECTORY": reference_pds.plc_url,
    }
    posts = "document.querySelector('#posts') && document.querySelector('#posts').innerText"
    with running_app(env, tmp_path / "app.log") as local, chromium_page() as cdp:
        worker_env = {**env, "WEBAPP_URL": local}
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            width=900,
            height=760,
            deviceScaleFactor=1,
            mobile=False,
        )
        cdp.call("Page.navigate", url=f"{local}/")
        wait_for(cdp, "!!document.querySelector('input[name=handle]')", "the sign-in form")
        cdp.type_into("input[name=handle]", handle)
        cdp.click_button("Sign in")
        sign_in_and_consent_in_page(cdp, handle, PASSWORD, f"{local}/oauth/callback")
        title = wait_for(
            cdp, "document.title.startsWith('Signed in') && document.title", "the home page"
        )
        assert title == f"Signed in as {handle}"

        cdp.type_into("textarea[name=text]", "Hello from Chromium")
        cdp.click_button("Post")
        wait_for(cdp, f"({posts} || '').includes('Hello from Chromium')", "the post")
        shots = Path(os.environ.get("SESSIONKEEPER_SCREENSHOT_DIR") or tmp_path)
        shots.mkdir(parents=True, exist_ok=True)
        shot = cdp.call("Page.captureScreenshot", format="png")["data"]
        (shots / "oauth-webapp-home.png").write_bytes(base64.b64decode(shot))

        # The access token expires; the worker and the app both act for the account.
        force_expiry(data, did)
        reference_pds.reset_counts()
        worker = run_worker(worker_env, "--once", "--text", "Posted by the worker")
        assert worker.returncode == 0, worker.stdout + worker.stderr
        assert json.loads(worker.stdout.splitlines()[-1])["did"] == did
        cdp.call("Page.navigate", url=f"{local}/")  # the app still holds the old set
        wait_for(cdp, f"({posts} || '').includes('Posted by the worker')", "the worker's post")
        cdp.type_into("textarea[name=text]", "After the expiry")
        cdp.click_button("Post")
        wait_for(cdp, f"({posts} || '').includes('After the expiry')", "the second post")
        assert successful_refreshes(reference_pds) == 1  # one refresh, app and worker together

        before = stored_session(data, did)
        cdp.click_button("Sign out")
        wait_for(cdp, "!!document.querySelector('input[name=handle]')", "the sign-in form again")
    assert access_refused(before)
    assert refresh_refused(before)


def test_an_attackers_redirect_opened_in_another_chromium_is_refused(
    reference_pds: ReferencePds, tmp_path: Path
) -> None:
    """Login CSRF in real browsers: the attacker stops at their redirect; the victim opens it."""
    from tests.chromium_cdp import chromium_binary, chromium_page, sign_in_and_consent_in_page

    if chromium_binary() is None:
        missing_component("chromium-headless-shell is not installed (scripts/install-chromium.sh)")
    _, handle = reference_pds.create_account(f"ak{secrets.token_hex(4)}.test", PASSWORD)
    data = tmp_path / "data"
    env = {
        "WEBAPP_DATA": str(data),
        "ATP_HANDLE_RESOLVER": reference_pds.url,
        "ATP_PLC_DIRECTORY": reference_pds.plc_url,
    }
    with running_app(env, tmp_path / "app.log") as local:
        with chromium_page() as attacker:
            # The attacker's browser never loads its own redirect back to the app: the
            # request is intercepted (Fetch) and failed.
            attacker.call("Fetch.enable", patterns=[{"urlPattern": f"{local}/oauth/callback*"}])
            attacker.call("Page.navigate", url=f"{local}/")
            wait_for(attacker, "!!document.querySelector('input[name=handle]')", "the form")
            attacker.type_into("input[name=handle]", handle)
            attacker.click_button("Sign in")
            redirect = sign_in_and_consent_in_page(
                attacker, handle, PASSWORD, f"{local}/oauth/callback"
            )
        with chromium_page() as victim:
            victim.call("Page.navigate", url=f"{local}/")
            wait_for(victim, "!!document.querySelector('input[name=handle]')", "the form")
            victim.call("Page.navigate", url=redirect)
            wait_for(victim, "document.title === 'Sign-in refused'", "the refusal page")
            text = victim.evaluate("document.body.innerText")
            assert "not started in this browser" in text
            victim.call("Page.navigate", url=f"{local}/")
            wait_for(victim, "!!document.querySelector('input[name=handle]')", "the form again")
        # Nobody is signed in, and the sign-in the attacker started was revoked and removed.
        with OAuthSessionManager(None, store=open_store(f"sqlite:{data / 'sessions.db'}")) as m:
            assert m.list_sessions() == []
