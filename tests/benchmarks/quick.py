"""Running a benchmark at its small ``--quick`` sizes: its last stdout line is its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.redis_fixture import require_redis_server

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_quick(script: str) -> Any:
    """Run ``benchmarks/SCRIPT --quick --json`` (it needs redis-server) and parse its figures."""
    require_redis_server()
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
