"""One redaction rule set: URLs, cookies, credential headers and session ids never reach
logs, reprs or error text, whatever their shape."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from sessionkeeper.hac.auth import BasicAuthHandler
from sessionkeeper.hac.client import HacClient
from sessionkeeper.hac.errors import HacClientError
from sessionkeeper.hac.log_redaction import install_cookie_redaction
from sessionkeeper.hac.models import SessionInfo
from sessionkeeper.http_limits import bounded_client
from sessionkeeper.redaction import origin, redact_secret, redact_text, redact_url
from sessionkeeper.testing._server import LoopbackHandler, LoopbackServer

SESSION_ID = "0123456789ABCDEF0123456789ABCDEF"
QUOTED_COOKIE = "it's-a-secret-value-with-a-quote"


class _RedirectingHandler(LoopbackHandler):
    def do_GET(self) -> None:
        if ";jsessionid=" in self.path:
            body = b"<html>home</html>"
            self.send_response(200)
        else:
            body = b""
            self.send_response(302)
            self.send_header("Location", f"/hac/login;jsessionid={SESSION_ID}")
            self.send_header("Set-Cookie", f"JSESSIONID={SESSION_ID}; Path=/hac; HttpOnly")
            self.send_header("Set-Cookie", f"ROUTE={QUOTED_COOKIE}; Path=/")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _RedirectingServer(LoopbackServer):
    handler_class: type[BaseHTTPRequestHandler] = _RedirectingHandler


@pytest.fixture
def redirecting() -> Iterator[_RedirectingServer]:
    server = _RedirectingServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_session_ids_in_redirects_and_cookies_stay_out_of_httpx_and_httpcore_logs(
    redirecting: _RedirectingServer, caplog: pytest.LogCaptureFixture
) -> None:
    install_cookie_redaction()
    caplog.set_level(logging.DEBUG)
    with bounded_client(5, follow_redirects=True) as client:
        response = client.get(redirecting.url + "/hac/")
    assert response.status_code == 200
    assert ";jsessionid=" in caplog.text  # the traces were really captured...
    assert "Set-Cookie" in caplog.text
    assert SESSION_ID[6:] not in caplog.text  # ...without the session id
    assert QUOTED_COOKIE[6:] not in caplog.text
    assert "secret" not in caplog.text


@pytest.mark.parametrize(
    ("url", "hidden", "shown"),
    [
        ("https://alice:hunter2@pds.example/", "hunter2", "https://alice:***@pds.example/"),
        ("redis://:pa#ss@h:6379/0", "pa#ss", "redis://:***@h:6379/0"),
        ("redis://u:pa/ss@h/0?prefix=p", "pa/ss", "redis://u:***@h/0?prefix=p"),
        ("redis://u:p?ss@h/0", "p?ss", "redis://u:***@h/0"),
        ("redis://h:1/0?password=pw&db=2", "pw&", "redis://h:1/0?password=***&db=2"),
        (
            "https://h/hac/x;jsessionid=ABCDEF123?a=1",
            "ABCDEF123",
            "https://h/hac/x;jsessionid=***?a=1",
        ),
        ("https://h/cb?code=abc123&state=s", "abc123", "https://h/cb?code=***&state=s"),
        ("https://bsky.app/profile/@alice", "\0", "https://bsky.app/profile/@alice"),
    ],
)
def test_redact_url_hides_every_credential_shape(url: str, hidden: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert hidden not in redact_url(url)


def test_a_cookie_value_holding_a_quote_is_hidden_past_its_prefix() -> None:
    trace = (
        "receive_response_headers.complete return_value=(b'HTTP/1.1', 302, b'Found', "
        f"""[(b'Set-Cookie', b"ROUTE={QUOTED_COOKIE}; Path=/"), """
        rf"(b'Cookie', b'A=it\'s-another-secret; B=x\"y-secret-too')])"
    )
    shown = redact_text(trace)
    assert "secret" not in shown
    assert "ROUTE=it's-a..." in shown


def test_credential_headers_in_text_show_only_a_prefix() -> None:
    token = "eyJhbGciOiJFUzI1NksifQ.eyJleHAiOjF9.signature-part"
    assert redact_text(f"Authorization: Bearer {token}") == f"Authorization: Bearer {token[:6]}..."
    assert redact_text(f"DPoP: {token}") == f"DPoP: {token[:6]}..."
    assert redact_secret(token) == f"{token[:6]}..."
    assert redact_secret(None) == "<none>"


def test_session_reprs_use_the_same_prefix_rule() -> None:
    info = SessionInfo(session_id=SESSION_ID, csrf_token="csrf-token-secret")
    assert SESSION_ID[6:] not in repr(info)
    assert f"'{SESSION_ID[:6]}...'" in repr(info)


def test_credentials_in_a_hac_base_url_stay_out_of_its_errors() -> None:
    client = HacClient(
        "http://admin:hunter2@127.0.0.1:1/hac",
        BasicAuthHandler("admin", "nimda"),
        timeout=2,
        session_persistence=False,
    )
    with client, pytest.raises(HacClientError) as caught:
        client.login()
    assert "hunter2" not in str(caught.value)
    assert "http://127.0.0.1:1/hac" in str(caught.value)


def test_the_log_filter_rewrites_formatted_arguments(caplog: pytest.LogCaptureFixture) -> None:
    install_cookie_redaction()
    caplog.set_level(logging.INFO, logger="httpx")
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s"', "GET", httpx.URL("https://u:pw123@h/a;jsessionid=S3CR3T"), "200"
    )
    assert "pw123" not in caplog.text
    assert "S3CR3T" not in caplog.text
    assert "https://u:***@h/a;jsessionid=***" in caplog.text


def test_credentials_in_a_hac_base_url_go_as_basic_auth_but_never_into_reprs_or_the_cache(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sessionkeeper.hac.session import SessionManager
    from sessionkeeper.testing.fake_hac import FakeHac

    caplog.set_level(logging.DEBUG)
    cache = tmp_path / "cache"
    with FakeHac() as fake:
        url = fake.url.replace("://", "://gate:s3cr3t-gate@", 1)
        with HacClient(
            url, BasicAuthHandler("admin", "nimda"), session_manager=SessionManager(cache)
        ) as client:
            client.login()
            result = client.execute_flexiblesearch("SELECT {pk} FROM {Product}")
            assert result is not None
            assert "s3cr3t-gate" not in repr(client)
            assert client.http_session.auth is not None  # still sent, as Basic auth
    files = list(cache.rglob("*"))
    assert files
    for path in files:
        if path.is_file():
            assert b"s3cr3t-gate" not in path.read_bytes()
    assert "s3cr3t-gate" not in caplog.text


def test_verbose_cli_output_shows_no_session_id_and_no_url_password(
    redirecting: _RedirectingServer, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAC_", "SESSIONKEEPER_"))}
    env |= {"HOME": str(tmp_path), "HAC_USERNAME": "admin", "HAC_PASSWORD": "nimda"}
    url = redirecting.url.replace("://", "://gate:gate-pw-123@", 1) + "/hac"
    done = subprocess.run(
        [sys.executable, "-m", "sessionkeeper", "-v", "hac", "--url", url, "groovy", "return 1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert "HTTP Request: GET" in output  # the verbose lines are there...
    assert ";jsessionid=***" in output
    assert SESSION_ID[6:] not in output  # ...without the session id
    assert "gate-pw-123" not in output and "nimda" not in output


def test_an_origin_names_scheme_host_and_port_only_and_keeps_ipv6_brackets() -> None:
    assert origin("https://user:pw@pds.example:8443/xrpc/x?token=t") == "https://pds.example:8443"
    assert origin("http://[::1]:2583/oauth/token") == "http://[::1]:2583"
