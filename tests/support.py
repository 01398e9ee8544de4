"""Helpers shared by tests: required real components and the original library's python."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def in_ci() -> bool:
    """Whether a missing real component must fail the run instead of skipping."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_component(message: str) -> None:
    """Skip locally, fail in CI: a real component the suite needs is not there."""
    if in_ci():
        pytest.fail(f"{message} (required when CI=true)")
    pytest.skip(message)


def original_hac_python() -> str:
    """Path of a python that has the original hac-client-core 0.1.2 installed."""
    result = subprocess.run(
        [str(REPO / "scripts" / "orig-hac-venv.sh")],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    if result.returncode != 0:
        missing_component(f"cannot build the original hac-client-core venv: {result.stderr[-500:]}")
    return result.stdout.strip().splitlines()[-1]
