"""bench/bench_parent_phases.py against a real broker: the parent's CPU per cycle, phase by phase,
each phase a part of the process's CPU."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.kafka_helpers import commit, create_topic, produce

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "bench_parent_phases.py"
PHASES = ("received", "windows", "derive", "history", "alerts", "metrics")


def test_it_prints_the_parents_cpu_phase_by_phase(kafka_broker, unique_name):
    topic, group = unique_name("t"), unique_name("g")
    create_topic(kafka_broker.bootstrap, topic, 2)
    produce(kafka_broker.bootstrap, topic, per_partition=3, partitions=2)
    commit(kafka_broker.bootstrap, group, {(topic, 0): 1, (topic, 1): 2})
    done = subprocess.run([sys.executable, str(SCRIPT), "--bootstrap", kafka_broker.bootstrap, "--warmup", "1",
                           "--cycles", "3"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    pattern = (r"CPU per cycle over 3 cycles after 1: the process ([\d.]+) ms; "
               + ", ".join(rf"{phase} ([\d.]+) ms" for phase in PHASES)
               + r" \(of it the gzip copy ([\d.]+) ms: the families that changed written and compressed, the others reused\)")
    m = re.fullmatch(pattern, line)
    assert m, line
    process, *phases, gzipped = map(float, m.groups())
    by_phase = dict(zip(PHASES, phases))
    assert process > 0 and by_phase["derive"] > 0 and by_phase["metrics"] > 0, line
    assert sum(phases) <= process * 1.05 + 1, line  # each phase's thread CPU is a part of the process's
    # the gzip copy is made in the refresh (a gzip scrape came), family by family
    assert 0 < gzipped <= by_phase["metrics"], line


def test_it_refuses_no_cycles():
    done = subprocess.run([sys.executable, str(SCRIPT), "--bootstrap", "127.0.0.1:1", "--cycles", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--cycles: 1 or more" in done.stderr
