"""bench/bench_side_by_side.py against a real broker: it starts `run` from each checkout given,
measures each after the cycles asked, and stops what it started."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.kafka_helpers import commit, create_topic, produce

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "bench_side_by_side.py"
LINE = re.compile(r"(.+): after cycle (\d+): alone ([\d.]+) MB, RSS ([\d.]+) MB \(parent ([\d.]+) MB\), PSS ([\d.]+) MB")


def test_it_measures_each_checkout_after_each_cycle_asked(kafka_broker, unique_name, tmp_path):
    topic, group = unique_name("t"), unique_name("g")
    create_topic(kafka_broker.bootstrap, topic, 2)
    produce(kafka_broker.bootstrap, topic, per_partition=3, partitions=2)
    commit(kafka_broker.bootstrap, group, {(topic, 0): 1, (topic, 1): 2})
    other = tmp_path / "other-checkout"
    other.symlink_to(ROOT)  # this checkout under a second name: two `run`s told apart in the output
    before = {p.pid for p in psutil.process_iter()}
    done = subprocess.run([sys.executable, str(SCRIPT), "--bootstrap", kafka_broker.bootstrap, "--cycles", "2,1",
                           "--interval", "1", str(ROOT), str(other)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [LINE.fullmatch(line) for line in done.stdout.strip().splitlines()]
    assert len(lines) == 4 and all(lines), done.stdout
    for checkout in (str(ROOT), str(other)):
        cycles = [int(m[2]) for m in lines if m[1] == checkout]
        assert len(cycles) == 2 and 1 <= cycles[0] and 2 <= cycles[1], done.stdout  # each asked, in order
    for m in lines:
        alone, rss, parent, pss = float(m[3]), float(m[4]), float(m[5]), float(m[6])
        assert 30 < alone <= rss + 1 and 0 < pss <= rss and 0 < parent < rss, m[0]  # a parent and its child
    # the `run`s it started, and their collector children, are gone
    leftover = [p for p in psutil.process_iter(["pid", "cmdline"])
                if p.info["pid"] not in before and "monitor.cli" in " ".join(p.info["cmdline"] or ())]
    assert not leftover


def test_it_refuses_a_directory_that_is_not_a_checkout(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--bootstrap", "127.0.0.1:1", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a checkout of streamscope" in done.stderr
