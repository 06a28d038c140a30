"""``classmood bench --live`` runs the live worker on a real-photo gallery and reports what it saw."""

from __future__ import annotations

from classmood.benchmarks.live import run_live_bench


def test_live_bench_reports_a_working_worker() -> None:
    result = run_live_bench(seconds=3.0, fps=5.0)
    assert result["analysed"] >= 2
    assert result["faces_seen_median"] == 49  # every tile's face, through the app's own worker
    assert result["submitted_fps"] > 3
    assert set(result["submit_ms"]) == {"p50", "p99", "max"} and result["snapshot_ms"]["max"] >= 0
