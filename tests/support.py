"""Helpers shared by tests: required real components and the original library's python."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """Whether a missing real component must fail the run instead of skipping."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_component(message: str) -> None:
    """Skip locally, fail in CI: a real component the suite needs is not there."""
    if in_ci():
        pytest.fail(f"{message}; CI must have every real component (CI=true)")
    pytest.skip(message)


def venv_tool(script: str, what: str) -> str:
    """The path ``scripts/<script>`` prints last once its venv is built; else missing."""
    result = subprocess.run(
        [str(REPO / "scripts" / script)], capture_output=True, text=True, cwd=REPO, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not Path(lines[-1]).exists():
        missing_component(f"cannot build {what}: {result.stderr[-500:]}")
    return lines[-1]


def original_hac_python() -> str:
    """Path of a python that has the original hac-client-core 0.1.2 installed."""
    return venv_tool("orig-hac-venv.sh", "the original hac-client-core venv")


def atproto_cli_command(
    session_dir: Path,
    *args: str,
    password: str | None = None,
    env_extra: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of ``sessionkeeper atproto --session-dir DIR ARGS`` (no ATP_)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATP_", "SESSIONKEEPER_"))}
    env |= {"COLUMNS": "200", **(env_extra or {})}
    if password is not None:
        env["ATP_PASSWORD"] = password
    command = [sys.executable, "-m", "sessionkeeper", "atproto", "--session-dir", str(session_dir)]
    return [*command, *args], env


@functools.cache
def _scratch() -> Path:
    home = Path(tempfile.mkdtemp(prefix="sessionkeeper-home-"))
    atexit.register(shutil.rmtree, home, True)
    return home


def scratch_home() -> dict[str, str]:
    """Variables that put HOME and the XDG data, config and cache dirs in a scratch folder."""
    home = _scratch()
    return {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
    }


def run_store_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``sessionkeeper store ARGS`` as a subprocess, without an inherited store URL.

    The per-user directories point into a scratch home, so a command that falls
    back to the default store never touches the real user's (``env`` may name others).
    """
    full_env = {k: v for k, v in os.environ.items() if k != "SESSIONKEEPER_STORE"}
    full_env.update({"COLUMNS": "250", **scratch_home(), **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "sessionkeeper", "store", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=90,
        check=False,
    )


def run_atproto_cli(
    session_dir: Path,
    *args: str,
    password: str | None = None,
    stdin: str | None = None,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``sessionkeeper atproto --session-dir DIR ARGS`` as a subprocess, no ATP_ leaks."""
    command, env = atproto_cli_command(session_dir, *args, password=password, env_extra=env_extra)
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        input=stdin if stdin is not None else "",
        timeout=60,
    )
