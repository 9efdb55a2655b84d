"""bench/bench_signals.py at a small size: it replays the windows and derives, and its
`--idle-share` makes partitions that receive nothing, whose end-offset windows take one byte a
point (docs/performance.md, the thirty-first pass)."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_signals.py"


def _windows_stats(*args: str) -> dict:
    done = subprocess.run([sys.executable, str(SCRIPT), "--groups", "20", "--partitions-per-group", "5",
                           "--cycles", "300", "--repeat", "1", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    stats = re.search(r"^windows: (\{.*\})$", done.stdout, re.M)
    assert stats and re.search(r"^derive: wall min \d+ ms", done.stdout, re.M), done.stdout
    return ast.literal_eval(stats[1])


def test_idle_partitions_take_a_byte_a_point_and_busy_ones_four():
    idle = _windows_stats("--idle-share", "1")
    busy = _windows_stats()
    # 300 cycles of 30 s: every series thinned to the same points, whichever its offsets
    assert idle["partitions"] == busy["partitions"] == 100
    assert idle["end_points"] == busy["end_points"] > 100 * 100
    assert idle["end_offset_bytes"] == idle["end_points"]
    # 1-200 records a second: 4 bytes a point, but 2 for the slowest (< 65,536 records in 2.5 h)
    assert 3.5 * busy["end_points"] < busy["end_offset_bytes"] <= 4 * busy["end_points"]


def test_it_refuses_an_idle_share_outside_0_to_1():
    done = subprocess.run([sys.executable, str(SCRIPT), "--idle-share", "1.5"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "--idle-share" in done.stderr
