"""Start-up of the ``sessionkeeper`` command against ``hac``'s, in one run, one install.

Both console scripts come from one venv holding sessionkeeper alone (no dev
extras), as a user installs it, and run as whole processes, interleaved with
``paired()`` so both see the same machine load. ``sessionkeeper --help`` lists
its groups without importing any of them; ``sessionkeeper atproto whoami`` (no
session stored: it says so and exits 1) imports the app-password path only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _table import paired, print_table, verdict

REPO = Path(__file__).resolve().parent.parent
REPEAT = int(os.environ.get("BENCH_REPEAT", "21"))
#: ``sessionkeeper --help`` may take at most this many times ``hac --help``.
TARGET = 1.5


def process(argv: list[str], env: dict[str, str]) -> Callable[[], None]:
    """A function that runs ``argv`` to completion (its exit status is not the point)."""

    def run() -> None:
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return run


def main() -> int:
    built = subprocess.run(
        [str(REPO / "scripts" / "ours-hac-venv.sh")], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        print(f"could not build the venv: {built.stderr.strip()}", file=sys.stderr)
        return 1
    bin_dir = Path(built.stdout.strip().splitlines()[-1]).parent
    with tempfile.TemporaryDirectory(prefix="sessionkeeper-bench-cli-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SESSIONKEEPER_", "XDG_"))}
        env["HOME"] = home
        hac_help = process([str(bin_dir / "hac"), "--help"], env)
        rows: list[list[str]] = []
        ratios: dict[str, float] = {}
        for label, argv in {
            "sessionkeeper --help": [str(bin_dir / "sessionkeeper"), "--help"],
            "sessionkeeper atproto whoami (none stored)": [
                str(bin_dir / "sessionkeeper"),
                "atproto",
                "whoami",
            ],
        }.items():
            mine, base = paired(process(argv, env), hac_help, repeat=REPEAT)
            ratios[label] = mine / base
            rows.append([label, f"{mine * 1000:.0f}", f"{base * 1000:.0f}", f"{mine / base:.2f}x"])
    print_table(
        f"sessionkeeper start-up against hac --help, median of {REPEAT} interleaved runs",
        ["command", "ms", "hac --help ms", "ratio"],
        rows,
        save="cli-startup",
    )
    ratio = ratios["sessionkeeper --help"]
    print_table(
        "Target",
        ["target", "measured", ""],
        [
            [
                f"sessionkeeper --help / hac --help <= {TARGET}",
                f"{ratio:.2f}x",
                verdict(ratio <= TARGET),
            ]
        ],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
