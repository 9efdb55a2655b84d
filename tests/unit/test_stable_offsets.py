"""KafkaCollector._stable_offsets: which last stable offsets (LSOs) a cycle asks for, and which it
keeps. The broker is a table; the rules, cycle by cycle:

- Rule 1: only the partitions where a read_committed group lags are asked.
- Rule 2: an LSO is asked again only when its partition's high watermark moved (only a
  transaction's end, which writes a marker, moves the LSO).
- Rule 3: a partition where no read_committed group lags any more is forgotten; asked again when
  one lags there again.
- Rule 4: every group at the last cycle's positions (the same tuples) and every high watermark
  where it was: the last cycle's LSOs, unless one of them could not be asked (asked again).
  Random cycles: the same answers and requests as a collector working every cycle out afresh.
"""
from __future__ import annotations

import random

import pytest

from collectors.kafka.collector import KafkaCollector
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.models import CommittedOffset


class TableBroker:
    """Answers ListOffsets for the LSO from `stable`, and notes what was asked."""

    def __init__(self, stable: dict[tuple[str, int], int]):
        self.stable = stable
        self.asked: list[list[tuple[str, int]]] = []

    def offsets(self, admin, batched, info, partitions, spec, isolation="read_uncommitted", *, by_leader=None):
        assert (spec, isolation) == ("latest", "read_committed")
        self.asked.append(list(partitions))
        return {key: self.stable[key] for key in partitions if key in self.stable}


def collector_with(broker: TableBroker) -> KafkaCollector:
    collector = KafkaCollector(KafkaCollectorSettings(
        cluster="c", bootstrap_servers="127.0.0.1:1", group_isolation_levels=((r"ru-.*", "read_uncommitted"),)))
    collector._offsets = broker.offsets
    return collector


def at(group_offsets: dict[tuple[str, int], int]) -> tuple[CommittedOffset, ...]:
    return tuple(CommittedOffset(topic, partition, offset) for (topic, partition), offset in group_offsets.items())


def test_rule_1_only_where_a_read_committed_group_lags():
    broker = TableBroker({("t", 0): 5, ("t", 1): 9, ("t", 2): 7})
    collector = collector_with(broker)
    latest = {("t", 0): 10, ("t", 1): 10, ("t", 2): 10}
    commits = {"rc": at({("t", 0): 4, ("t", 1): 10}),  # lags on 0, at the end of 1
               "ru-reader": at({("t", 2): 1})}  # lags on 2, but reads uncommitted records
    assert collector._stable_offsets(None, None, None, commits, latest) == {("t", 0): 5}
    assert broker.asked == [[("t", 0)]]


def test_rule_2_asked_again_only_where_the_high_watermark_moved():
    broker = TableBroker({("t", 0): 5, ("t", 1): 6})
    collector = collector_with(broker)
    commits = {"rc": at({("t", 0): 1, ("t", 1): 1})}
    latest = {("t", 0): 10, ("t", 1): 10}
    assert collector._stable_offsets(None, None, None, commits, latest) == {("t", 0): 5, ("t", 1): 6}
    assert collector._stable_offsets(None, None, None, commits, latest) == {("t", 0): 5, ("t", 1): 6}
    assert broker.asked == [[("t", 0), ("t", 1)]]  # the second cycle asked nothing
    broker.stable[("t", 1)] = 12  # a transaction ended on partition 1: a marker moved its end
    latest = {("t", 0): 10, ("t", 1): 13}
    assert collector._stable_offsets(None, None, None, commits, latest) == {("t", 0): 5, ("t", 1): 12}
    assert broker.asked[1:] == [[("t", 1)]]


def test_rule_3_forgotten_where_no_group_lags_then_asked_again():
    broker = TableBroker({("t", 0): 5, ("t", 1): 6})
    collector = collector_with(broker)
    latest = {("t", 0): 10, ("t", 1): 10}
    collector._stable_offsets(None, None, None, {"rc": at({("t", 0): 1, ("t", 1): 1})}, latest)
    caught_up = {"rc": at({("t", 0): 1, ("t", 1): 10})}
    assert collector._stable_offsets(None, None, None, caught_up, latest) == {("t", 0): 5}
    assert collector._stable_known.keys() == {("t", 0)}
    # the group is behind on partition 1 again (reset): its LSO is asked again, same high watermark
    broker.stable[("t", 1)] = 8
    assert collector._stable_offsets(None, None, None, {"rc": at({("t", 0): 1, ("t", 1): 2})}, latest) == {
        ("t", 0): 5, ("t", 1): 8}
    assert broker.asked[1:] == [[("t", 1)]]


def test_kept_positions_share_the_collectors_partition_keys():
    """What outlives a cycle keys on the collector's one tuple per partition, not on tuples of
    its own made each cycle."""
    broker = TableBroker({("t", 0): 5})
    collector = collector_with(broker)
    shared = collector._partition_keys("t", 0)
    collector._stable_offsets(None, None, None, {"rc": at({("t", 0): 1})}, {("t", 0): 10})
    [kept] = collector._stable_known
    assert kept is shared


def test_rule_4_nothing_moved_the_last_cycles_lsos_unless_one_was_not_known():
    broker = TableBroker({("t", 0): 5})  # partition 1's LSO does not come back
    collector = collector_with(broker)
    commits = {"rc": at({("t", 0): 1, ("t", 1): 1})}
    latest = {("t", 0): 10, ("t", 1): 10}
    assert collector._stable_offsets(None, None, None, commits, latest) == {("t", 0): 5}
    broker.stable[("t", 1)] = 6
    assert collector._stable_offsets(None, None, None, commits, dict(latest)) == {("t", 0): 5, ("t", 1): 6}
    assert broker.asked == [[("t", 0), ("t", 1)], [("t", 1)]]
    first = collector._stable_offsets(None, None, None, commits, dict(latest))
    assert collector._stable_offsets(None, None, None, commits, dict(latest)) is first
    assert len(broker.asked) == 2  # nothing asked since both were known


@pytest.mark.parametrize("seed", range(30))
def test_rule_4_over_random_cycles_as_afresh(seed):
    rng = random.Random(seed)
    keys = [(t, p) for t in "ab" for p in range(3)]
    brokers = TableBroker({}), TableBroker({})
    keeping, afresh = collector_with(brokers[0]), collector_with(brokers[1])
    latest = {k: rng.randint(5, 20) for k in keys}
    commits: dict = {}
    for cycle in range(25):
        for group in ("rc-1", "rc-2", "ru-3"):
            if group not in commits or rng.random() < 0.3:
                commits[group] = at({k: rng.randint(0, 20) for k in rng.sample(keys, 3)})
        if rng.random() < 0.3:
            latest = {**latest, rng.choice(keys): rng.randint(5, 25)}
        stable = {k: max(0, latest[k] - rng.randint(0, 3)) for k in keys if rng.random() < 0.9}  # some fail
        for broker in brokers:
            broker.stable = dict(stable)
        afresh._stable_inputs = ({}, None)  # works every cycle out
        got = keeping._stable_offsets(None, None, None, dict(commits), dict(latest))
        assert got == afresh._stable_offsets(None, None, None, dict(commits), dict(latest)), (seed, cycle)
        assert brokers[0].asked == brokers[1].asked, (seed, cycle)


def test_the_partitions_asked_are_the_collectors_own_key_tuples():
    """The partitions an LSO request asks for are kept with the request for the next cycle
    (`BatchedGroupRequests`): they are the collector's shared key tuples, not a new tuple per
    lagging position (~0.5 MB in the child at 10,000 positions)."""
    broker = TableBroker({("t", 0): 5, ("t", 1): 6})
    collector = collector_with(broker)
    latest = {("t", 0): 10, ("t", 1): 10}
    collector._stable_offsets(None, None, None, {"rc": at({("t", 0): 4, ("t", 1): 3})}, latest)
    (asked,) = broker.asked
    assert asked == [("t", 0), ("t", 1)]
    assert all(key is collector._partition_keys(*key) for key in asked)
