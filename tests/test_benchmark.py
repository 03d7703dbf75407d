"""The benchmark keeps running: at N=10 it prints every figure it promises (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"


@pytest.mark.slow
def test_benchmark_runs_and_reports_its_figures():
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--sizes",
            "10",
            "--kustomize-sample",
            "2",
            "--runs",
            "1",
            "--hydrate-size",
            "5",
            "--json",
            "--settle",
            "0",  # (the tests beside it keep the disk busy: flush only)
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    table, _, raw = result.stdout.partition("\n{")
    figures = json.loads("{" + raw)
    (row,) = figures["sizes"]
    assert row["environments"] == 10
    for key in (
        "build_cold",
        "build_noop",
        "check_fast",
        "check_fast_remembered",
        "check_full",
        "diff_one_change",
        "build_env_one_change",
        "floor",
        "write_floor",
        "peak_rss_mib",
    ):
        assert row[key] > 0, key
    assert set(figures["startup"]) == {"python_pass", "version", "validate_example"}
    assert "cold/" in table and "kustomize" in table and "start-up:" in table
    hydration = figures["hydration"]
    assert hydration["environments"] == 5 and hydration["build_cold_rendered"] > 0
    assert hydration["hydrate_first"] > 0 and hydration["hydrate_unchanged"] > 0
    assert "hydration at N=5" in table and "kompile hydrate" in table
