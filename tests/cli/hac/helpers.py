"""Running ``hac`` as a subprocess in a clean environment, shared by the hac CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO, missing_component


def hac_env(home: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``hac`` run: HOME in ``home``, no HAC_/SESSIONKEEPER_ variables."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HAC_", "SESSIONKEEPER_", "PYTHON_KEYRING"))
    }
    clean.update(
        HOME=str(home),
        COLUMNS="200",
        PYTHONPATH=str(REPO),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    clean.update(env or {})
    return clean


#: The ``hac`` console script of this environment (``make install`` puts it there).
HAC_SCRIPT = Path(sys.executable).parent / "hac"


def run_hac(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    script: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m sessionkeeper hac ARGS`` (or the ``hac`` script) in a clean environment."""
    if script and not HAC_SCRIPT.exists():
        missing_component("the hac console script is not installed in this environment")
    argv = [str(HAC_SCRIPT)] if script else [sys.executable, "-m", "sessionkeeper", "hac"]
    return subprocess.run(
        [*argv, *args],
        env=hac_env(home, env),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def write_config(home: Path, text: str) -> Path:
    """Write ``text`` as the default config file under ``home``; return its path."""
    path = home / ".config" / "hac-client" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
