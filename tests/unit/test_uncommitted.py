"""KafkaCollector._with_uncommitted: a group's committed offsets plus the partitions of its topics
that have none (`kafka-consumer-groups` shows them as `-`). Metadata and offsets are tables.

Rule 1 - a group with a commit on every partition of its topics is kept as it is.
Rule 2 - a partition of a topic the group committed on, without a commit of its own, is added,
         uncommitted, where the group's rule says a consumer starts: the end offset (`latest`) or
         the earliest offset (`earliest`; the end when the earliest is not known). Every position
         is in (topic, partition) order.
Rule 3 - a topic a member is assigned is consumed, though nothing was committed on it.
Rule 4 - commits on partitions a topic no longer has (deleted and created again with fewer) do
         not stand in for a partition it has.
Rule 5 - a partition without an end offset this cycle is not added, nor any partition of a topic
         the cycle does not collect.
Rule 6 - positions (uncommitted ones added) the same as the last cycle's are that cycle's tuple,
         so a still group stays still; where a start moved, they are new.
Rule 7 - a group that had no uncommitted partition is not looked at again while its positions
         tuple, members, the metadata answer and the topics kept are the same as the last cycle's.
Over random cycles, a collector that keeps what it can gives what one working afresh gives.
"""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from collectors.kafka.collector import KafkaCollector
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.models import CommittedOffset

METADATA = {"t": SimpleNamespace(partitions=dict.fromkeys(range(3))),
            "u": SimpleNamespace(partitions=dict.fromkeys(range(2))),
            "other": SimpleNamespace(partitions=dict.fromkeys(range(1)))}
LATEST = {("t", 0): 100, ("t", 1): 110, ("t", 2): 120, ("u", 0): 50, ("u", 1): 60, ("other", 0): 9}
EARLIEST = {("t", 0): 10, ("t", 1): 11, ("u", 0): 5, ("u", 1): 6}


def collector() -> KafkaCollector:
    return KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1",
                                                 group_uncommitted_partitions=(("early-.*", "earliest"),)))


def member(*assignment: tuple[str, int]) -> SimpleNamespace:
    return SimpleNamespace(members=[SimpleNamespace(assignment=assignment)])


def positions(offsets) -> list[tuple[str, int, int, bool]]:
    return [(o.topic, o.partition, o.offset, o.committed) for o in offsets]


def with_uncommitted(c: KafkaCollector, group: str, offsets, description=None, *, metadata=METADATA,
                     kept=frozenset(("t", "u")), latest=LATEST):
    return c._with_uncommitted(group, tuple(offsets), description, metadata, set(kept), latest, EARLIEST)


def test_rule_1_a_group_committed_everywhere_is_kept_as_it_is():
    offsets = (CommittedOffset("t", 0, 1), CommittedOffset("t", 1, 2), CommittedOffset("t", 2, 3))
    got = collector()._with_uncommitted("g", offsets, member(("t", 0)), METADATA, {"t", "u"}, LATEST, EARLIEST)
    assert got is offsets


@pytest.mark.parametrize("group, starts", [("g", (110, 120)), ("early-g", (11, 120))],
                         ids=["latest", "earliest, the end where not known"])
def test_rule_2_partitions_without_a_commit_are_added_where_the_rule_starts(group, starts):
    got = with_uncommitted(collector(), group, [CommittedOffset("t", 0, 7)])
    assert positions(got) == [("t", 0, 7, True), ("t", 1, starts[0], False), ("t", 2, starts[1], False)]


def test_rule_3_an_assigned_topic_is_consumed_without_commits():
    got = with_uncommitted(collector(), "g", [CommittedOffset("t", 0, 7), CommittedOffset("t", 2, 8),
                                              CommittedOffset("t", 1, 9)], member(("u", 1)))
    assert positions(got) == [("t", 0, 7, True), ("t", 1, 9, True), ("t", 2, 8, True),
                              ("u", 0, 50, False), ("u", 1, 60, False)]


def test_rule_4_commits_on_partitions_gone_do_not_stand_in_for_one_there():
    """Three commits for a topic of three partitions, but one is on partition 5, which the topic
    no longer has: partition 1 has none."""
    got = with_uncommitted(collector(), "g", [CommittedOffset("t", 0, 7), CommittedOffset("t", 2, 8),
                                              CommittedOffset("t", 5, 9)])
    assert positions(got) == [("t", 0, 7, True), ("t", 1, 110, False), ("t", 2, 8, True), ("t", 5, 9, True)]


def test_rule_5_no_end_offset_or_a_topic_not_collected_adds_nothing():
    c = collector()
    latest = {k: v for k, v in LATEST.items() if k != ("t", 1)}
    got = with_uncommitted(c, "g", [CommittedOffset("t", 0, 7), CommittedOffset("other", 0, 1)], latest=latest)
    assert positions(got) == [("other", 0, 1, True), ("t", 0, 7, True), ("t", 2, 120, False)]
    assert with_uncommitted(c, "g", [], member(("other", 0))) == ()
    # a commit on a topic not collected does not count for the same partition of one collected
    got = with_uncommitted(c, "g", [CommittedOffset("other", 2, 1), CommittedOffset("t", 0, 7), CommittedOffset("t", 1, 8)])
    assert positions(got) == [("other", 2, 1, True), ("t", 0, 7, True), ("t", 1, 8, True), ("t", 2, 120, False)]


def test_new_metadata_is_used_at_once():
    """The partitions of a topic come from this cycle's metadata: a partition added since the last
    cycle is missing its commit at once."""
    c = collector()
    offsets = [CommittedOffset("t", p, 1) for p in range(3)]
    assert with_uncommitted(c, "g", offsets) == tuple(offsets)
    grown = {**METADATA, "t": SimpleNamespace(partitions=dict.fromkeys(range(4)))}
    got = with_uncommitted(c, "g", offsets, metadata=grown, latest={**LATEST, ("t", 3): 130})
    assert positions(got)[-1] == ("t", 3, 130, False)


def test_rule_6_the_same_positions_are_the_last_cycles_tuple():
    c = collector()
    committed = (CommittedOffset("t", 0, 7),)
    first = c._with_uncommitted("g", committed, None, METADATA, {"t"}, LATEST, EARLIEST)
    again = c._with_uncommitted("g", committed, None, METADATA, {"t"}, dict(LATEST), EARLIEST)
    assert again is first
    moved = c._with_uncommitted("g", committed, None, METADATA, {"t"}, {**LATEST, ("t", 2): 125}, EARLIEST)
    assert moved is not first and positions(moved)[2] == ("t", 2, 125, False)
    other = c._with_uncommitted("h", committed, None, METADATA, {"t"}, {**LATEST, ("t", 2): 125}, EARLIEST)
    assert other == moved  # each group its own


def test_rule_7_a_whole_group_is_not_looked_at_again_while_nothing_changed(monkeypatch):
    import collectors.kafka.collector as collector_module

    looked = []
    real = collector_module._commits_on_each_partition
    monkeypatch.setattr(collector_module, "_commits_on_each_partition", lambda *a: looked.append(a) or real(*a))
    c = collector()
    offsets = tuple(CommittedOffset("t", p, 1) for p in range(3))
    kept = {"t", "u"}
    for _ in range(3):
        assert c._with_uncommitted("g", offsets, member(("t", 0)), METADATA, kept, LATEST, EARLIEST) is offsets
    assert len(looked) == 1
    c._with_uncommitted("g", tuple(offsets), member(("t", 0)), METADATA, set(kept), LATEST, EARLIEST)  # another set
    c._with_uncommitted("g", offsets, member(("t", 0)), dict(METADATA), set(kept), LATEST, EARLIEST)  # another answer
    assert len(looked) == 3
    # other members: assigned a partition of "u", which has no commit: no longer whole
    got = c._with_uncommitted("g", offsets, member(("u", 1)), dict(METADATA), set(kept), LATEST, EARLIEST)
    assert positions(got)[-2:] == [("u", 0, 50, False), ("u", 1, 60, False)]


@pytest.mark.parametrize("seed", range(40))
def test_keeping_gives_what_working_afresh_gives(seed):
    rng = random.Random(seed)
    keeping = collector()
    metadata, kept, latest = dict(METADATA), {"t", "u"}, dict(LATEST)
    groups = {}
    for cycle in range(30):
        roll = rng.random()
        if roll < 0.1:
            metadata = {**METADATA, "t": SimpleNamespace(partitions=dict.fromkeys(range(rng.randint(1, 4))))}
            latest = {**latest, **{("t", p): 100 + p for p in range(4)}}
        elif roll < 0.2:
            kept = set(rng.choice([("t",), ("t", "u"), ("u", "other")]))
        for name in ("g", "h", "early-i"):
            if name not in groups or rng.random() < 0.3:
                parts = rng.sample([("t", 0), ("t", 1), ("t", 2), ("u", 0), ("u", 1), ("t", 5)], rng.randint(0, 4))
                groups[name] = [tuple(CommittedOffset(t, p, rng.randint(0, 9)) for t, p in sorted(parts)),
                                rng.choice([None, member(), member(("u", 1)), member(("t", 2))])]
            elif rng.random() < 0.2:
                groups[name][1] = rng.choice([None, member(), member(("u", 1))])  # other members
        for name, (offsets, description) in groups.items():
            got = keeping._with_uncommitted(name, offsets, description, metadata, kept, latest, EARLIEST)
            want = collector()._with_uncommitted(name, offsets, description, metadata, kept, latest, EARLIEST)
            assert got == want, (seed, cycle, name)
            assert [type(o) for o in got] == [CommittedOffset] * len(got)
