"""A small Chrome DevTools Protocol client: sign in and consent in headless Chromium.

Runs Debian's ``chromium-headless-shell`` (``scripts/install-chromium.sh``),
talks CDP over its websocket with the ``websockets`` package, and clicks
through the reference PDS's authorization pages like a user: type the
password, press the sign-in button, press the accept button, then report the
URL the browser is sent to (the client's ``redirect_uri?iss&state&code``).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

#: The binary itself: /usr/bin/chromium-headless-shell is a wrapper that does not exec,
#: so terminating it would leave the browser behind.
CANDIDATES = ("/usr/lib/chromium/chromium-headless-shell", "/usr/lib/chromium/chromium")


def chromium_binary() -> str | None:
    """The headless Chromium to run, or ``None`` when it is not installed."""
    return next((path for path in CANDIDATES if os.access(path, os.X_OK)), None)


# What is on the page now: the sign-in form, a button to press, or nothing yet.
_PAGE_STATE = r"""
(() => {
  const shown = (e) => e && e.offsetParent !== null && !e.disabled;
  const label = (e) => (e.innerText || e.value || e.getAttribute('aria-label') || '').trim();
  const password = document.querySelector('input[name="password"]');
  const username = document.querySelector('input[name="username"]');
  const buttons = [...document.querySelectorAll('button, [role="button"], input[type="submit"]')]
    .filter(shown);
  const avoid = /cancel|deny|reject|back|forgot|another account|sign up|create|decline/i;
  if (shown(password)) {
    const submit = buttons.find((b) => /^(sign in|next|continue|log in)$/i.test(label(b)));
    return JSON.stringify({view: 'sign-in', needUser: shown(username) && !username.value,
                           empty: !password.value, button: submit ? label(submit) : null});
  }
  const accept = /authori[sz]e|accept|allow|approve|grant|continue/i;
  const button = buttons.find((b) => accept.test(label(b)) && !avoid.test(label(b)));
  return JSON.stringify({view: button ? 'consent' : 'wait', button: button ? label(button) : null});
})()
"""


class Cdp:
    """One CDP session on a page target: commands, and the events seen meanwhile."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its result."""
        ident = next(self._ids)
        self._ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=30))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if message.get("method") == "Fetch.requestPaused":
                # A request matching a ``Fetch.enable`` pattern: the browser cannot load it
                # (a held one would stall the page, and every evaluate with it).
                request_id = message["params"]["requestId"]
                failed = {"requestId": request_id, "errorReason": "BlockedByClient"}
                self._ws.send(
                    json.dumps(
                        {"id": next(self._ids), "method": "Fetch.failRequest", "params": failed}
                    )
                )
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page; return its value."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def click_button(self, label: str) -> None:
        """Click the button labelled ``label`` with real mouse events."""
        finder = (
            '[...document.querySelectorAll(\'button, [role="button"], input[type="submit"]\')]'
            ".find((e) => (e.innerText || e.value || e.getAttribute('aria-label') || '')"
            f".trim() === {json.dumps(label)})"
        )
        x, y = self.evaluate(
            f"(() => {{ const e = {finder}; e.scrollIntoView();"
            " const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        """Focus ``selector`` and type ``text`` as keyboard input."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)


def _redirect_seen(events: list[dict[str, Any]], prefix: str) -> str | None:
    for event in events:
        if event.get("method") == "Network.requestWillBeSent":
            url = str(event["params"]["request"]["url"])
            if url.startswith(prefix):
                return url
    return None


def authorize_in_chromium(
    authorize_url: str, username: str, password: str, redirect_prefix: str, *, timeout: float = 60
) -> str:
    """Sign in and consent at ``authorize_url``; return the redirect URL the browser follows."""
    with chromium_page() as cdp:
        cdp.call("Page.navigate", url=authorize_url)
        return sign_in_and_consent_in_page(cdp, username, password, redirect_prefix, timeout)


@contextmanager
def chromium_page() -> Iterator[Cdp]:
    """Headless Chromium with one page, its page and network events on; stopped afterwards."""
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium-headless-shell is not installed")
    profile = tempfile.mkdtemp(prefix="oauth-chromium-")
    browser = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or browser.poll() is not None:
                raise RuntimeError("headless Chromium did not open its DevTools port")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
        page = next(t for t in targets if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=50_000_000) as ws:
            cdp = Cdp(ws)
            cdp.call("Page.enable")
            cdp.call("Network.enable")
            yield cdp
    finally:
        os.killpg(browser.pid, signal.SIGTERM)
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def sign_in_and_consent_in_page(
    cdp: Cdp, username: str, password: str, redirect_prefix: str, timeout: float = 60
) -> str:
    """Click through the server's sign-in and consent pages until the browser heads for
    ``redirect_prefix``; return that URL (the browser goes on loading it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        found = _redirect_seen(cdp.events, redirect_prefix)
        if found is not None:
            return found
        cdp.events.clear()
        try:
            state = json.loads(cdp.evaluate(_PAGE_STATE) or "{}")
        except RuntimeError:
            continue  # the page is navigating
        if state.get("view") == "sign-in":
            if state["needUser"]:
                cdp.type_into('input[name="username"]', username)
            if state["empty"]:
                cdp.type_into('input[name="password"]', password)
            if state.get("button"):
                cdp.click_button(state["button"])
                time.sleep(0.5)
        elif state.get("view") == "consent":
            cdp.click_button(state["button"])
            time.sleep(0.5)
    raise TimeoutError(f"the browser was not sent to {redirect_prefix} within {timeout:.0f} s")
