"""Fidelity: the original hac-client-core 0.1.2 works against the fake HAC.

The original library is run unchanged in its own venv (a real subprocess with
``requests`` and BeautifulSoup), so what passes here is what a real HAC client
accepts: the login page, the cookies, the 302s, the JSON shapes.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessionkeeper.testing import FakeHac
from tests.support import original_hac_python

pytestmark = pytest.mark.timeout(300)


PRELUDE = """
import json, sys
from hac_client_core import BasicAuthHandler, HacClient, HacAuthenticationError, HacClientError
url = sys.argv[1]
client = HacClient(url, BasicAuthHandler("admin", "nimda"), quiet=True)
out = {}
"""


@pytest.fixture(scope="module")
def original_python() -> str:
    """The python of a private venv holding the original library (built if needed)."""
    return original_hac_python()


@pytest.fixture
def fake() -> Iterator[FakeHac]:
    # The original always talks to /hac, whatever path base_url has.
    with FakeHac(web_root="/hac", route="node1") as server:
        yield server


def run_original(python: str, home: Path, url: str, body: str) -> dict[str, Any]:
    """Run ``body`` with the original library; it fills ``out``, printed as JSON."""
    code = PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    home.mkdir(exist_ok=True)
    result = subprocess.run(
        [python, "-c", code, url],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(home)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_original_client_logs_in_and_runs_groovy(
    original_python: str, fake: FakeHac, tmp_path: Path
) -> None:
    out = run_original(
        original_python,
        tmp_path / "home",
        fake.url,
        """
        client.login()
        result = client.execute_groovy("println 'hi'\\nreturn 42")
        out["output"] = result.output_text
        out["result"] = result.execution_result
        out["stacktrace"] = result.stacktrace_text
        out["route"] = client.session_info.route_cookie
        """,
    )
    assert out == {"output": "hi\n", "result": "42", "stacktrace": "", "route": "ROUTE=.node1"}
    assert fake.logins == 1
    assert fake.counts["POST /j_spring_security_check"] == 1
    assert fake.counts["POST /console/scripting/execute"] == 1
    assert [(r.script, r.commit) for r in fake.groovy_runs] == [("println 'hi'\nreturn 42", False)]
    # Its cache file landed in the isolated HOME.
    assert list((tmp_path / "home" / ".cache" / "hac-client").glob("session_*.json"))


def test_original_client_reuses_its_cached_session_on_the_next_run(
    original_python: str, fake: FakeHac, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    run_original(original_python, home, fake.url, "client.login()")
    fake.reset_counts()
    out = run_original(
        original_python,
        home,
        fake.url,
        """
        client.login()
        out["result"] = client.execute_groovy("return 'again'").execution_result
        """,
    )
    assert out == {"result": "again"}
    # The original validates its cached cookie with GET /hac/ and does not log in.
    assert fake.logins == 0
    assert dict(fake.counts) == {"GET /": 1, "POST /console/scripting/execute": 1}


def test_original_client_reads_flexsearch_and_impex_answers(
    original_python: str, fake: FakeHac, tmp_path: Path
) -> None:
    out = run_original(
        original_python,
        tmp_path / "home",
        fake.url,
        """
        client.login()
        found = client.execute_flexiblesearch("SELECT {code} FROM {Product} WHERE {code}='P-1001'")
        out["rows"] = found.rows
        out["headers"] = found.headers
        broken = client.execute_flexiblesearch("SELECT {code} FROM {Nope}")
        out["exception"] = sorted(broken.exception)
        ok = client.import_impex("INSERT_UPDATE Language;isocode[unique=true]\\n;es")
        out["ok"] = [ok.success, ok.output]
        code = client.import_impex("#%groovy% println 'x'")
        out["code"] = [code.success, code.error, code.validation_errors]
        """,
    )
    assert out["rows"] == [["P-1001"]]
    assert out["headers"] == ["p_code"]
    assert out["exception"] == ["cause", "localizedMessage", "message", "stackTrace", "suppressed"]
    assert out["ok"] == [True, "Import finished successfully"]
    success, error, lines = out["code"]
    assert success is False
    assert error == "Import has encountered problems."
    assert any("code execution is disabled" in line for line in lines)
    # The original's checkbox markers turn code execution off.
    assert fake.last_impex is not None
    assert fake.last_impex.enable_code_execution is False


@pytest.mark.parametrize(("mode", "status"), [("legacy", 403), ("2211", 405)])
def test_original_client_meets_a_dead_session_as_the_real_server_answers(
    original_python: str, tmp_path: Path, mode: str, status: int
) -> None:
    with FakeHac(mode=mode) as fake:  # type: ignore[arg-type]
        run_original(original_python, tmp_path / "home", fake.url, "client.login()")
        fake.kill_all_sessions()
        out = run_original(
            original_python,
            tmp_path / "home",
            fake.url,
            """
            # Skip the cached-session check, as a long-running process would.
            from hac_client_core.models import SessionInfo
            meta = client.session_manager.load_session(url, "admin", "local")
            client.session_info = SessionInfo(meta.session_id, meta.csrf_token, None, True)
            try:
                client.execute_groovy("return 1")
                out["error"] = None
            except HacAuthenticationError as exc:
                out["error"] = ["auth", str(exc)]
            except HacClientError as exc:
                out["error"] = ["client", str(exc)]
            """,
        )
        kind, message = out["error"]
        assert f"{status}" in message
        # 403 is what the original recognises; 2211's 405 escapes its detection.
        assert kind == ("auth" if status == 403 else "client")
        assert fake.groovy_runs == []
