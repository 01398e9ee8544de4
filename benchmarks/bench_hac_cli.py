"""Start-up of the ``hac`` command and of ``import hac_client_core``, ours against the originals.

Whole processes, timed from outside, interleaved with ``paired()`` so both see
the same machine load: ``hac --help``; a warm ``hac groovy "return 1"`` (a
session already cached, the fake answering after 20 ms); and a python that
imports the library (``import hac_client_core`` and, as scripts do,
``from hac_client_core import HacClient, BasicAuthHandler``); and a whole
library script, import to a warm ``execute_groovy`` answered. Ours loads its
HTTP stack with the first client, not with the import, so the script row
shows what a script that does send pays in all. The originals are
hac-client-cli 0.3.2 and hac-client-core 0.1.2, each in its own venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _table import paired, print_table, verdict
from sessionkeeper.testing.fake_hac import spawn

REPO = Path(__file__).resolve().parent.parent
REPEAT = int(os.environ.get("BENCH_REPEAT", "21"))
FROM_IMPORT = "from hac_client_core import HacClient, BasicAuthHandler"
#: A library script: import, one client, one Groovy run on its cached session.
SCRIPT = (
    FROM_IMPORT + "\nimport sys\n"
    'HacClient(sys.argv[1], BasicAuthHandler("admin", "nimda")).execute_groovy("return 1")'
)
TARGETS = {"hac --help": 0.8, 'warm hac groovy "return 1"': 0.7, "import hac_client_core": 0.6}


def venv_hac(script: str) -> str | None:
    """The ``hac`` script of a venv ``script`` builds on demand; ``None`` if unavailable."""
    result = subprocess.run(
        [str(REPO / "scripts" / script)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip().splitlines()[-1] if result.returncode == 0 else None


def process(argv: list[str], env: dict[str, str]) -> Callable[[], None]:
    """A function that runs ``argv`` to completion and insists it succeeded."""

    def run() -> None:
        subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )

    return run


def workspace(root: Path, url: str, hac: str) -> dict[str, str]:
    """A HOME with a config for ``url``, a session started by ``hac``, one by its library."""
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAC_", "XDG_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))
    for argv, stdin in (
        (["env", "add", "local"], ""),
        (["endpoint", "add", "local", "hac", "--url", url, "--set-default"], ""),
        (["session", "start", "local", "--username", "admin"], "nimda\n"),
    ):
        subprocess.run(
            [hac, *argv], env=env, input=stdin, text=True, capture_output=True, check=True
        )
    python = str(Path(hac).parent / "python")
    subprocess.run([python, "-c", SCRIPT, url], env=env, capture_output=True, check=True)
    return env


def main() -> int:
    # Both sides installed alone, as a user installs them: this repository's dev venv
    # holds packages (click, through MarshalX atproto) that make ``import httpx`` load
    # httpx's own command line, which a plain install does not.
    theirs_hac = venv_hac("orig-hac-cli-venv.sh")
    ours_hac = venv_hac("ours-hac-venv.sh")
    if theirs_hac is None or ours_hac is None:
        print("the original's or our HAC venv is unavailable", file=sys.stderr)
        return 1
    theirs_python = str(Path(theirs_hac).parent / "python")
    ours_python = str(Path(ours_hac).parent / "python")
    fake, url = spawn("--latency", "0.02")
    rows: list[list[str]] = []
    ratios: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="sessionkeeper-bench-hac-cli-") as name:
            ours_env = workspace(Path(name) / "ours", url, ours_hac)
            theirs_env = workspace(Path(name) / "theirs", url, theirs_hac)
            cases = {
                "hac --help": ([ours_hac, "--help"], [theirs_hac, "--help"]),
                'warm hac groovy "return 1"': (
                    [ours_hac, "groovy", "return 1"],
                    [theirs_hac, "groovy", "return 1"],
                ),
                "import hac_client_core": (
                    [ours_python, "-c", "import hac_client_core"],
                    [theirs_python, "-c", "import hac_client_core"],
                ),
                "from hac_client_core import HacClient": (
                    [ours_python, "-c", FROM_IMPORT],
                    [theirs_python, "-c", FROM_IMPORT],
                ),
                "library script, warm execute_groovy": (
                    [ours_python, "-c", SCRIPT, url],
                    [theirs_python, "-c", SCRIPT, url],
                ),
            }
            for label, (ours_argv, theirs_argv) in cases.items():
                mine, other = paired(
                    process(ours_argv, ours_env), process(theirs_argv, theirs_env), repeat=REPEAT
                )
                ratios[label] = mine / other
                rows.append(
                    [label, f"{mine * 1000:.0f}", f"{other * 1000:.0f}", f"{mine / other:.2f}x"]
                )
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    print_table(
        f"hac start-up, whole processes, median of {REPEAT} interleaved runs "
        "(original: hac-client-cli 0.3.2 / hac-client-core 0.1.2)",
        ["command", "ours ms", "original ms", "ours/original"],
        rows,
        save="hac-cli",
    )
    print_table(
        "Targets",
        ["target", "measured", ""],
        [
            [
                f"{label} ours/original <= {limit}",
                f"{ratios[label]:.2f}x",
                verdict(ratios[label] <= limit),
            ]
            for label, limit in TARGETS.items()
        ],
        save="hac-cli-targets",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
