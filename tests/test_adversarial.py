"""The adversarial benchmark keeps running: on a few hostile projects every command answers (exit 0, 1
where it means "differences", or 2), never a traceback, a crash or a timeout (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ADVERSARIAL = Path(__file__).resolve().parent.parent / "benchmarks" / "adversarial.py"


@pytest.mark.slow
def test_every_command_answers_every_hostile_input():
    result = subprocess.run(
        [sys.executable, str(ADVERSARIAL), "--quick", "--timeout", "120", "--json"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    table, _, raw = result.stdout.rpartition("\n[")
    runs = json.loads("[" + raw)
    assert runs and "| case | command |" in table
    assert {r["command"] for r in runs} == {"validate", "check", "diff", "render X", "build"}
    unanswered = [(r["case"], r["command"], r["exit"], r["first_line"]) for r in runs if not r["answered"]]
    assert unanswered == [], unanswered
    assert result.returncode == 0, result.stderr[-2000:]
