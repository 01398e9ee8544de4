"""HacClient when things go wrong: odd dead-session answers, killed processes, lost servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from sessionkeeper.hac.auth import BasicAuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.errors import HacAuthenticationError, HacClientError
from sessionkeeper.hac.session import SessionManager
from sessionkeeper.testing._server import LoopbackServer
from sessionkeeper.testing.fake_hac import FakeHac

pytestmark = pytest.mark.timeout(120)

GROOVY = "POST /console/scripting/execute"

LOGIN_PAGE = (
    '<html><head><meta name="_csrf" content="TOKEN-{n}"></head><body>'
    '<form action="/hac/j_spring_security_check" method="POST">'
    '<input name="j_username"><input name="j_password">'
    '<input type="hidden" name="_csrf" value="TOKEN-{n}"></form></body></html>'
)


class _LoginPageHandler(BaseHTTPRequestHandler):
    """A HAC whose console answers a dead session with 200 and the login page."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _reply(self, status: int, body: str, headers: dict[str, str]) -> None:
        data = body.encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _session(self) -> str | None:
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "JSESSIONID":
                return value
        return None

    def do_GET(self) -> None:
        owner: LoginPageHac = self.server.owner  # type: ignore[attr-defined]
        owner.count(f"GET {self.path}")
        if self.path == "/hac/login":
            owner.issued += 1
            self._reply(
                200,
                LOGIN_PAGE.format(n=owner.issued),
                {"Set-Cookie": f"JSESSIONID=anon{owner.issued}; Path=/hac"},
            )
        elif self.path == "/hac/" and self._session() == owner.valid:
            self._reply(200, '<meta name="_csrf" content="AUTH-TOKEN">You\'re admin', {})
        else:
            self._reply(302, "", {"Location": "/hac/login"})

    def do_POST(self) -> None:
        owner: LoginPageHac = self.server.owner  # type: ignore[attr-defined]
        owner.count(f"POST {self.path}")
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/hac/j_spring_security_check":
            owner.logins += 1
            owner.valid = f"auth{owner.logins}"
            headers = {"Location": "/hac/", "Set-Cookie": f"JSESSIONID={owner.valid}; Path=/hac"}
            self._reply(302, "", headers)
        elif self._session() == owner.valid and self.headers.get("X-CSRF-TOKEN") == "AUTH-TOKEN":
            body = '{"outputText": "", "executionResult": "fine", "stacktraceText": ""}'
            self._reply(200, body, {"Content-Type": "application/json"})
        else:
            self._reply(200, LOGIN_PAGE.format(n=0), {"Content-Type": "text/html"})


class LoginPageHac(LoopbackServer):
    """Minimal HAC imitation for the 200-with-login-page answer."""

    handler_class = _LoginPageHandler

    def __init__(self) -> None:
        super().__init__()
        self.issued = 0
        self.logins = 0
        self.valid: str | None = None


def test_a_login_page_in_a_200_body_is_a_dead_session(tmp_path: Path) -> None:
    with LoginPageHac() as server:
        manager = SessionManager(tmp_path)
        auth = BasicAuthHandler("admin", "nimda")
        with HacClient(server.url, auth, session_manager=manager) as client:
            assert client.execute_groovy("return 1").execution_result == "fine"
            server.valid = "expired-elsewhere"
            server.reset_counts()
            assert client.execute_groovy("return 1").execution_result == "fine"
        assert server.counts[GROOVY.replace("/console", "/hac/console")] == 2
        assert server.logins == 2


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    with FakeHac() as server:
        yield server


def test_a_json_answer_that_mentions_the_login_form_is_not_a_dead_session(
    fake: FakeHac, tmp_path: Path
) -> None:
    with HacClient(
        fake.url, BasicAuthHandler("admin", "nimda"), session_manager=SessionManager(tmp_path)
    ) as client:
        client.login()
        fake.reset_counts()
        result = client.execute_groovy("""println 'j_spring_security_check name="j_username"'""")
    assert "j_spring_security_check" in result.output_text
    assert dict(fake.counts) == {GROOVY: 1}
    assert len(fake.groovy_runs) == 1


def test_a_wrong_web_root_names_the_url_instead_of_looping(fake: FakeHac, tmp_path: Path) -> None:
    with (
        HacClient(
            fake.url + "/wrong",
            BasicAuthHandler("admin", "nimda"),
            session_manager=SessionManager(tmp_path),
        ) as client,
        pytest.raises(HacAuthenticationError, match="is this the HAC URL"),
    ):
        client.execute_groovy("return 1")
    assert fake.total_requests == 1


def test_a_lost_server_is_an_error_that_keeps_the_cached_session(tmp_path: Path) -> None:
    manager = SessionManager(tmp_path)
    with FakeHac() as fake:
        url = fake.url
        with HacClient(url, BasicAuthHandler("admin", "nimda"), session_manager=manager) as c:
            c.login()
    before = manager.load_session(url, "admin", "local")
    assert before is not None
    with HacClient(url, BasicAuthHandler("admin", "nimda"), session_manager=manager) as client:
        with pytest.raises(HacClientError, match="cannot reach HAC") as caught:
            client.execute_groovy("return 1")
        assert not isinstance(caught.value, HacAuthenticationError)
    after = manager.load_session(url, "admin", "local")
    assert after is not None
    assert after.session_id == before.session_id


class _UnavailableHandler(BaseHTTPRequestHandler):
    """A HAC that is starting or failing: 503 for every request."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner.count(f"GET {self.path}")  # type: ignore[attr-defined]
        body = b"<h1>503 Service Unavailable</h1>"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class UnavailableHac(LoopbackServer):
    """Answers 503 to everything."""

    handler_class = _UnavailableHandler


def test_a_failing_server_during_login_is_not_an_authentication_verdict(tmp_path: Path) -> None:
    with (
        UnavailableHac() as server,
        HacClient(
            server.url, BasicAuthHandler("admin", "nimda"), session_manager=SessionManager(tmp_path)
        ) as client,
    ):
        with pytest.raises(HacClientError, match="HTTP 503") as caught:
            client.execute_groovy("return 1")
        assert not isinstance(caught.value, HacAuthenticationError)
        assert "password" not in str(caught.value)
        assert dict(server.counts) == {"GET /hac/login": 1}


LOGIN_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sessionkeeper.hac.auth import BasicAuthHandler
    from sessionkeeper.hac.client import HacClient
    from sessionkeeper.hac.session import SessionManager

    manager = SessionManager(Path(sys.argv[2]))
    with HacClient(sys.argv[1], BasicAuthHandler("admin", "nimda"), session_manager=manager) as c:
        print(c.execute_groovy("return 'done'").execution_result)
    """
)


def test_a_process_killed_while_logging_in_does_not_block_the_next_one(
    fake: FakeHac, tmp_path: Path
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(LOGIN_WORKER)
    cache_dir = tmp_path / "cache"
    fake.latency = 0.5
    victim = subprocess.Popen([sys.executable, str(script), fake.url, str(cache_dir)])
    try:
        # Wait until the victim is inside the login (it holds the session's lock then).
        while fake.counts["GET /login"] == 0:
            assert victim.poll() is None, "the first process ended before logging in"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGKILL)
    finally:
        victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    fake.latency = 0.0
    survivor = subprocess.run(
        [sys.executable, str(script), fake.url, str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert survivor.returncode == 0, survivor.stderr
    assert survivor.stdout.strip() == "done"
    cached = SessionManager(cache_dir).load_session(fake.url, "admin", "local")
    assert cached is not None
    assert fake.groovy_runs[-1].script == "return 'done'"
