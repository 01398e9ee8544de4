"""Scene 1: two separate processes share one HAC session through the cache directory.

The first process saves a session as a login would; the second, a new process,
loads it, lists the cache and touches it. Nothing is sent over the network.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

SAVER = """
import sys
from pathlib import Path
from hac_client_core import SessionManager
SessionManager(Path(sys.argv[1])).save_session(
    "https://localhost:9002", "admin", "local", "4F2A9C0D1E7B", "csrf-7f3e", "ROUTE=.node1")
"""

READER = """
import json, sys, time
from pathlib import Path
from hac_client_core import SessionManager
mgr = SessionManager(Path(sys.argv[1]))
before = mgr.load_session("https://localhost:9002", "admin", "local")
time.sleep(0.05)
mgr.touch_session("https://localhost:9002", "admin", "local")
after = mgr.load_session("https://localhost:9002", "admin", "local")
print(json.dumps({
    "found": before is not None,
    "listed": [s.environment for s in mgr.list_sessions()],
    "same_session": before is not None and after is not None
        and before.session_id == after.session_id,
    "created_kept": before is not None and after is not None
        and before.created_at == after.created_at,
    "touched": before is not None and after is not None
        and after.last_used_at > before.last_used_at,
}))
"""


def main() -> int:
    console = Console()
    console.rule("[bold]Scene 1: one HAC session, two processes, one cache directory")
    with tempfile.TemporaryDirectory(prefix="sessionkeeper-demo-") as tmp:
        cache = Path(tmp) / "hac-client"
        subprocess.run([sys.executable, "-c", SAVER, str(cache)], check=True)
        (session_file,) = cache.glob("session_*.json")
        mode = stat.S_IMODE(session_file.stat().st_mode)
        console.print(
            f"Process 1 saved a session to [cyan]{session_file.name}[/] "
            f"(mode {mode:o}, directory mode {stat.S_IMODE(cache.stat().st_mode):o})."
        )
        output = subprocess.run(
            [sys.executable, "-c", READER, str(cache)], check=True, capture_output=True, text=True
        ).stdout
        report = json.loads(output)
        console.print(
            f"Process 2 found it: {report['found']}; listed environments: {report['listed']}; "
            f"same session id: {report['same_session']}."
        )
        console.print(
            f"Process 2 touched it: last use moved forward: {report['touched']}, "
            f"creation time kept: {report['created_kept']}."
        )
        fields = list(json.loads(session_file.read_text()))
        console.print(f"The file holds the original library's nine fields: {len(fields) == 9}.")
        ok = (
            report["found"]
            and report["listed"] == ["local"]
            and report["same_session"]
            and report["touched"]
            and report["created_kept"]
            and mode == 0o600
            and len(fields) == 9
        )
    if ok:
        console.print("[green]Shared: the second process used the first one's session as is.[/]")
        return 0
    console.print("[red]The session was not shared as expected.[/]")
    return 1


if __name__ == "__main__":
    sys.exit(main())
