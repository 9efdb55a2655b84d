"""KafkaCollector._end_offsets: the earliest and end offsets a cycle asks for and is given.

- The earliest offsets a cycle is given are those the collector holds: one copy, made again when
  they change, also after a cycle that changed them and then failed.
- The partitions whose earliest offset is asked every cycle (a group's position in the oldest
  part of the retained log, `near_log_start`) are worked out again only when a group's positions,
  an earliest or an end offset changed. Random cycles: the same requests as working them out
  afresh every cycle.
"""
from __future__ import annotations

import random

import pytest

from collectors.kafka.collector import KafkaCollector, _CollectedPartitions
from collectors.kafka.retention import near_log_start
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.models import CommittedOffset


def test_earliest_offsets_given_to_a_cycle_are_those_held_even_after_a_failed_cycle():
    """The earliest offsets a cycle is given are one copy, made again only when they changed,
    and made again too after a cycle that changed them and then failed."""
    c = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1", earliest_offsets_every=2))
    tables = {"earliest": {("t", 0): 3}, "latest": {("t", 0): 10}}
    failing = []

    def offsets(admin, batched, info, partitions, spec, isolation="read_uncommitted", *, by_leader=None):
        if spec in failing:
            raise TimeoutError(spec)
        return {key: tables[spec][key] for key in partitions}

    c._offsets = offsets
    collected = _CollectedPartitions({}, {"t"}, [("t", 0)], {1: [("t", 0)]})
    first, _, _ = c._end_offsets(None, None, None, collected, {})  # cycle 1: earliest asked
    second, _, _ = c._end_offsets(None, None, None, collected, {})  # cycle 2: not asked
    assert second is first and second == {("t", 0): 3}
    tables["earliest"] = {("t", 0): 7}  # retention deleted records
    failing.append("latest")
    with pytest.raises(TimeoutError):
        c._end_offsets(None, None, None, collected, {})  # cycle 3: earliest asked, then a timeout
    failing.clear()
    fourth, _, _ = c._end_offsets(None, None, None, collected, {})  # cycle 4: not asked
    assert fourth == {("t", 0): 7}


@pytest.mark.parametrize("seed", range(60))
def test_partitions_near_their_log_start_over_random_cycles_as_afresh(seed):
    rng = random.Random(seed)
    keys = [(t, p) for t in "ab" for p in range(3)]
    every = rng.choice([2, 3, 5])
    earliest = {k: rng.randint(0, 10) for k in keys}
    latest = {k: earliest[k] + rng.randint(0, 20) for k in keys}
    asked: dict[str, list] = {"keeping": [], "afresh": []}

    def collector(name):
        c = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1",
                                                  earliest_offsets_every=every))

        def offsets(admin, batched, info, partitions, spec, isolation="read_uncommitted", *, by_leader=None):
            if spec == "earliest":
                asked[name].append(sorted(partitions))
            return {key: (earliest if spec == "earliest" else latest)[key] for key in partitions}

        c._offsets = offsets
        return c

    keeping, afresh = collector("keeping"), collector("afresh")
    collected = _CollectedPartitions({}, {"a", "b"}, keys, {1: keys})
    committed: dict = {}
    for cycle in range(40):
        for group in "gh":
            if group not in committed or rng.random() < 0.3:
                committed[group] = tuple(CommittedOffset(t, p, rng.randint(0, 30)) for t, p in sorted(rng.sample(keys, 3)))
        if rng.random() < 0.3:
            key = rng.choice(keys)
            earliest = {**earliest, key: earliest[key] + rng.randint(0, 5)}  # retention deleted records
        if rng.random() < 0.3:
            key = rng.choice(keys)
            latest = {**latest, key: max(latest[key], earliest[key]) + rng.randint(0, 25)}
        afresh._near = None  # worked out every cycle
        got = keeping._end_offsets(None, None, None, collected, dict(committed))
        want = afresh._end_offsets(None, None, None, collected, dict(committed))
        assert got[:2] == want[:2], (seed, cycle)
        assert asked["keeping"] == asked["afresh"], (seed, cycle)
        # what the next cycle starts from: the partitions near their log start, now
        assert keeping._near_log_start(dict(committed)) == near_log_start(committed, keeping._earliest,
                                                                    keeping._latest_seen), (seed, cycle)
