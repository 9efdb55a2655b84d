"""KafkaCollector._end_offsets: the earliest and latest offsets a cycle asks for, and the earliest
ones it keeps between cycles. The broker is a table.

- A deleted partition's earliest offset is forgotten; between refreshes the earliest offsets are
  asked where a group sits near the log start.
- The earliest offsets a cycle is given are those the collector holds (never changed in place),
  also after a cycle that changed them and then failed.
- The partitions near their log start (`near_log_start`) are worked out again only when a group's
  positions, an earliest or an end offset changed (earliest offsets asked again and answered the
  same are no change). Random cycles: the same requests as working
  them out afresh every cycle.
"""
from __future__ import annotations

import random

import pytest

from collectors.kafka.collector import KafkaCollector, _CollectedPartitions
from collectors.kafka.retention import near_log_start
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.models import CommittedOffset


class TableBroker:
    """Answers ListOffsets from `earliest` and `latest`, and notes what was asked."""

    def __init__(self, earliest: dict[tuple[str, int], int], latest: dict[tuple[str, int], int]):
        self.offsets = {"earliest": earliest, "latest": latest}
        self.asked: list[tuple[str, list[tuple[str, int]]]] = []
        self.grouped: list[dict | None] = []  # the grouping by leader each call was given, if any

    def answer(self, admin, batched, info, partitions, spec, isolation="read_uncommitted", *, by_leader=None):
        self.asked.append((spec, list(partitions)))
        self.grouped.append(by_leader)
        return {key: self.offsets[spec][key] for key in partitions}


def collected(partitions: list[tuple[str, int]]) -> _CollectedPartitions:
    return _CollectedPartitions(None, {topic for topic, _ in partitions}, partitions, {1: partitions})


def test_a_deleted_partitions_earliest_offset_is_forgotten():
    """What is kept between cycles does not grow with the partitions a cluster ever had."""
    both = [("t", 0), ("t", 1)]
    broker = TableBroker({("t", 0): 3, ("t", 1): 4}, {("t", 0): 10, ("t", 1): 10})
    collector = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))
    collector._offsets = broker.answer
    earliest, latest, _at = collector._end_offsets(None, None, None, collected(both), {})
    assert earliest == {("t", 0): 3, ("t", 1): 4} and latest == {("t", 0): 10, ("t", 1): 10}
    earliest, latest, _at = collector._end_offsets(None, None, None, collected([("t", 0)]), {})
    assert earliest == {("t", 0): 3} and latest == {("t", 0): 10}
    assert collector._earliest == {("t", 0): 3}
    # the second cycle asked the earliest offset of no partition (known, and not near the log start)
    assert [spec for spec, _ in broker.asked] == ["earliest", "latest", "latest"]


def test_earliest_offsets_are_asked_where_a_group_sits_near_the_log_start():
    """Between refreshes (every `earliest_offsets_every` cycles) a cycle asks the earliest offsets
    of the partitions where some group sits in the older half of the retained log; when that is
    every partition, they are asked as the cycle's own partitions, grouped by leader once."""
    three = [("t", 0), ("t", 1), ("t", 2)]
    cycle = collected(three)
    broker = TableBroker(dict.fromkeys(three, 0), dict.fromkeys(three, 10))
    collector = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))
    collector._offsets = broker.answer

    def positions(*offsets: int) -> dict[str, tuple[CommittedOffset, ...]]:
        return {"g": tuple(CommittedOffset("t", p, o) for p, o in enumerate(offsets))}

    collector._end_offsets(None, None, None, cycle, positions(8, 8, 8))  # the first cycle: every one
    collector._end_offsets(None, None, None, cycle, positions(2, 8, 8))
    collector._end_offsets(None, None, None, cycle, positions(8, 8, 8))
    collector._end_offsets(None, None, None, cycle, positions(2, 1, 4))
    earliest = [(asked, grouped) for (spec, asked), grouped in zip(broker.asked, broker.grouped) if spec == "earliest"]
    assert earliest == [(three, cycle.by_leader), ([("t", 0)], None), (three, cycle.by_leader)]


def test_earliest_offsets_given_to_a_cycle_are_those_held_even_after_a_failed_cycle():
    """The earliest offsets a cycle is given are the collector's own, the same map while they do
    not change, and the changed ones after a cycle that changed them and then failed."""
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


def test_earliest_offsets_asked_again_and_unchanged_are_no_change(monkeypatch):
    """Groups near the log start have their partitions' earliest offsets asked every cycle; an
    answer with the same offsets keeps the map held (the same object) and counts as no change, so
    the partitions near the log start are not worked out again (~11 ms a cycle in the collector's
    child at 1,000 groups x 10,000 partitions, every group near the log start: py-spy)."""
    import collectors.kafka.collector as collector_module

    calls = []
    monkeypatch.setattr(collector_module, "near_log_start", lambda *a: calls.append(a) or near_log_start(*a))
    three = [("t", 0), ("t", 1), ("t", 2)]
    broker = TableBroker(dict.fromkeys(three, 0), dict.fromkeys(three, 10))
    c = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1", earliest_offsets_every=100))
    c._offsets = broker.answer
    positions = {"g": tuple(CommittedOffset("t", p, 1) for p in range(3))}
    held = [c._end_offsets(None, None, None, collected(three), positions)[0] for _ in range(4)]
    assert [spec for spec, _ in broker.asked].count("earliest") == 4  # asked every cycle: near the start
    assert held[1] is held[2] is held[3]
    assert len(calls) == 1  # cycle 2 (the first asks every partition), not again while nothing changed
    broker.offsets["earliest"] = {**broker.offsets["earliest"], ("t", 1): 2}  # retention deleted records
    changed, _, _ = c._end_offsets(None, None, None, collected(three), positions)
    assert changed is not held[3] and changed[("t", 1)] == 2
    c._end_offsets(None, None, None, collected(three), positions)
    assert len(calls) == 2  # the change is seen by the next cycle's work


@pytest.mark.parametrize("seed", range(60))
def test_partitions_near_their_log_start_over_random_cycles_as_afresh(seed):
    rng = random.Random(seed)
    keys = [(t, p) for t in "ab" for p in range(3)]
    every = rng.choice([2, 3, 5])
    earliest = {k: rng.randint(0, 10) for k in keys}
    latest = {k: earliest[k] + rng.randint(0, 20) for k in keys}
    brokers = TableBroker(earliest, latest), TableBroker(earliest, latest)
    keeping, afresh = (KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1",
                                                             earliest_offsets_every=every)) for _ in brokers)
    keeping._offsets, afresh._offsets = (broker.answer for broker in brokers)
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
        for broker in brokers:
            broker.offsets = {"earliest": earliest, "latest": latest}
        afresh._near = None  # worked out every cycle
        got = keeping._end_offsets(None, None, None, collected, dict(committed))
        want = afresh._end_offsets(None, None, None, collected, dict(committed))
        assert got[:2] == want[:2], (seed, cycle)
        assert brokers[0].asked == brokers[1].asked, (seed, cycle)
        # what the next cycle starts from: the partitions near their log start, now
        assert keeping._near_log_start(dict(committed)) == near_log_start(committed, keeping._earliest,
                                                                    keeping._latest_seen), (seed, cycle)


def test_the_partitions_near_their_log_start_are_kept_as_the_collectors_own_key_tuples():
    """What `_near_log_start` keeps from one cycle to the next holds the collector's shared key
    tuples, not a new tuple per partition (~0.5 MB in the child at 10,000 partitions)."""
    three = [("t", 0), ("t", 1), ("t", 2)]
    broker = TableBroker(dict.fromkeys(three, 0), dict.fromkeys(three, 10))
    c = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1", earliest_offsets_every=100))
    c._offsets = broker.answer
    positions = {"g": tuple(CommittedOffset("t", p, 1) for p in range(3))}
    for _ in range(2):
        c._end_offsets(None, None, None, collected(three), positions)
    near = c._near[2]
    assert near == set(three)
    assert all(key is c._partition_keys(*key) for key in near)
