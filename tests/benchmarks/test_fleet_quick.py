"""The fleet benchmark at small sizes, as a correctness check: counts, never timings."""

from __future__ import annotations

from tests.benchmarks.quick import run_quick


def test_fleet_refreshes_once_per_expiry_and_loses_nothing() -> None:
    """Workers on shared stores, every token expiring twice: one refresh per expiry used."""
    results = run_quick("bench_fleet.py")
    assert [r["store"] for r in results] == ["dir", "redis"]
    for figures in results:
        # Two expiries crossed, and every account used after each of them.
        assert figures["expected_refreshes"] >= figures["accounts"], figures
        assert figures["refreshes"] == figures["expected_refreshes"], figures
        assert figures["create_sessions"] == 0, figures
        assert figures["lost"] == 0, figures
        assert figures["failed"] == 0, figures
        assert figures["calls"] == figures["rounds"] * figures["workers"] * 9, figures
        assert figures["client"] == "sessionkeeper", figures
