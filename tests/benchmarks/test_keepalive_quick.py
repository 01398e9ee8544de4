"""The keepalive benchmark at small sizes, as a correctness check: counts, never timings."""

from __future__ import annotations

from tests.benchmarks.quick import run_quick


def test_keepalive_sends_one_refresh_per_due_session_and_recovers_lost_answers() -> None:
    """1% due on every store: exactly those refreshed, none the second time; no fresh login."""
    results = run_quick("bench_keepalive.py")
    assert sorted(results["points"]) == ["dir", "redis", "sqlite"]
    for points in results["points"].values():
        assert [p["sessions"] for p in points] == [200, 1000]
        for figures in points:
            assert figures["due"] == figures["sessions"] // 100 > 0, figures
            assert figures["sent"] == figures["refreshed"] == figures["due"], figures
            assert figures["fine"] == figures["sessions"] - figures["due"], figures
            assert figures["idle_fine"] == figures["sessions"], figures  # nothing due again
    lost = results["lost"]
    assert lost["recovered"] == lost["killed"] > 0 and lost["create_sessions"] == 0, lost
