"""bench/bench_parent_memory.py against a real broker: it runs the parent's work with the collector
in its child, and prints a line a cycle and the mean it is used for."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kafka_helpers import commit, create_topic, produce

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_parent_memory.py"


def test_it_prints_the_parents_memory_cycle_by_cycle(kafka_broker, unique_name):
    topic, group = unique_name("t"), unique_name("g")
    create_topic(kafka_broker.bootstrap, topic, 2)
    produce(kafka_broker.bootstrap, topic, per_partition=3, partitions=2)
    commit(kafka_broker.bootstrap, group, {(topic, 0): 1, (topic, 1): 2})
    done = subprocess.run([sys.executable, str(SCRIPT), "--bootstrap", kafka_broker.bootstrap, "--cycles", "4"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    cycles = [re.match(r"cycle +(\d+): anonymous +([\d.]+) MB, pymalloc (\d+) arenas \(([\d.]+) MB in blocks\), "
                       r"glibc heap ([\d.]+) MB", line) for line in lines[:-1]]
    assert all(cycles) and [int(m[1]) for m in cycles] == [0, 1, 2, 3], lines
    for m in cycles:
        anonymous, arenas, in_blocks = float(m[2]), int(m[3]), float(m[4])
        assert 20 < anonymous < 2000 and arenas > 0 and 0 < in_blocks <= arenas  # 1 MiB arenas
    mean = re.fullmatch(r"mean of cycles 3-3: anonymous ([\d.]+) MB, ([\d.]+) pymalloc arenas", lines[-1])
    # the mean of one cycle: its figure, printed to 0.1 MB in its line and 0.01 MB in the mean
    assert mean and float(mean[1]) == pytest.approx(float(cycles[3][2]), abs=0.051), lines[-1]


def test_it_refuses_fewer_cycles_than_its_mean_needs():
    done = subprocess.run([sys.executable, str(SCRIPT), "--bootstrap", "127.0.0.1:1", "--cycles", "3"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--cycles: 4 or more" in done.stderr
