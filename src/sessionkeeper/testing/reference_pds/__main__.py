"""``python -m sessionkeeper.testing.reference_pds install``: install the reference PDS."""

from __future__ import annotations

import os
import subprocess
import sys

from sessionkeeper.testing.reference_pds import INSTALLER, default_tools_dir


def main(argv: list[str]) -> int:
    """Run the bundled installer into ``default_tools_dir()``; print where it went."""
    if argv != ["install"]:
        print(
            "usage: python -m sessionkeeper.testing.reference_pds install\n"
            "  installs @atproto/pds and an in-memory PLC (needs node, npm, a C++ toolchain)\n"
            f"  into $PDS_TOOLS_DIR (now: {default_tools_dir()})",
            file=sys.stderr,
        )
        return 2
    env = {**os.environ, "PDS_TOOLS_DIR": str(default_tools_dir())}
    return subprocess.run(["bash", str(INSTALLER)], env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
