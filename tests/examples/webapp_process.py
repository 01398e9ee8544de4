"""Run the example web app and its worker as real processes; a cookie-keeping test browser."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.support import REPO


def free_port() -> int:
    """A port nobody listens on now (the app must know it before it starts: redirect URIs)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def app_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment of an app or worker process: ours without WEBAPP_/ATP_ leftovers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBAPP_", "ATP_"))}
    return {**env, "PYTHONPATH": str(REPO), **extra}


@contextmanager
def running_app(env: dict[str, str], log: Path, *args: str) -> Iterator[str]:
    """Serve ``python -m examples.webapp ARGS``; yield its local base URL until the block ends."""
    port = free_port()
    local = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        app = subprocess.Popen(
            [sys.executable, "-m", "examples.webapp", *args],
            cwd=REPO,
            env=app_env({"WEBAPP_URL": local, **env, "WEBAPP_LISTEN": f"127.0.0.1:{port}"}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(local + "/", timeout=5)
                    break
                except httpx.TransportError:
                    if app.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the app did not start: {log.read_text()}") from None
                    time.sleep(0.1)
            yield local
        finally:
            app.terminate()
            try:
                app.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait(timeout=15)


def run_worker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """One ``python -m examples.webapp.worker`` run."""
    return subprocess.run(
        [sys.executable, "-m", "examples.webapp.worker", *args],
        cwd=REPO,
        env=app_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class Browser:
    """A browser stand-in on ``httpx``: keeps its own cookies, follows nothing by itself.

    The app's cookies are ``Secure`` when it is served as https behind a proxy;
    the tests reach it over loopback http, so cookies are kept by hand here, as
    the browser in front of that proxy would.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self._http = httpx.Client(timeout=30)

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def request(self, method: str, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        """One request to the app (``url`` absolute, or a path on the app)."""
        parts = urlsplit(url)
        target = f"{self.base}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        header = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self._http.request(
            method, target, data=data, headers={"cookie": header} if header else {}
        )
        for line in response.headers.get_list("set-cookie"):
            for name, morsel in SimpleCookie(line).items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, url: str) -> httpx.Response:
        """GET ``url``."""
        return self.request("GET", url)

    def post(self, url: str, data: dict[str, Any]) -> httpx.Response:
        """POST a form to ``url``."""
        return self.request("POST", url, data={k: str(v) for k, v in data.items()})
