"""Caches interoperate with the original hac-client-core 0.1.2, both ways."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hac_client_core import SessionManager
from tests.support import original_hac_python

URL, USER, ENV = "https://localhost:9002", "admin", "local"

ORIGINAL = """
import json, sys
from pathlib import Path
from hac_client_core import SessionManager
mgr = SessionManager(Path(sys.argv[1]))
action = sys.argv[2]
if action == "save":
    mgr.save_session(*sys.argv[3:6], "ORIGSID", "ORIGCSRF", "ROUTE=.n2")
loaded = mgr.load_session(*sys.argv[3:6])
print(json.dumps(None if loaded is None else loaded.__dict__))
"""


def run_original(cache: Path, action: str) -> dict[str, object] | None:
    output = subprocess.run(
        [original_hac_python(), "-c", ORIGINAL, str(cache), action, URL, USER, ENV],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result: dict[str, object] | None = json.loads(output)
    return result


def test_the_original_loads_a_session_we_saved(tmp_path: Path) -> None:
    SessionManager(tmp_path).save_session(URL, USER, ENV, "OURSID", "OURCSRF", "ROUTE=.n1")
    loaded = run_original(tmp_path, "load")
    assert loaded is not None
    assert (loaded["session_id"], loaded["csrf_token"], loaded["route_cookie"]) == (
        "OURSID",
        "OURCSRF",
        "ROUTE=.n1",
    )


def test_we_load_a_session_the_original_saved(tmp_path: Path) -> None:
    saved = run_original(tmp_path, "save")
    assert saved is not None
    ours = SessionManager(tmp_path).load_session(URL, USER, ENV)
    assert ours is not None
    assert ours.session_id == "ORIGSID" and ours.route_cookie == "ROUTE=.n2"
    assert ours.created_at == saved["created_at"]
    # The bytes we write back are the shape the original writes: nine fields, indent 2.
    SessionManager(tmp_path).touch_session(URL, USER, ENV)
    (path,) = tmp_path.glob("session_*.json")
    assert list(json.loads(path.read_text())) == list(saved)
