"""`PositionReader.annotate`, one cycle after another, with its I/O (`_read`) answering from a
table: which positions it asks to read, and what it makes of the answers. Kafka itself is in
tests/integration/test_lag_truth.py and test_kafka_collector.py.

Rule - a position read once is remembered while the group stays on it (not read again).
Rule - a position that moved since the last cycle is read only from the moving budget; one that
       stays (or is new) from the remembered budget first.
Rule - what a cycle reads annotates its positions in that same cycle.
Rule - a read_committed group's log ends at the last stable offset: its readable lag stops there,
       and at or past it nothing is readable yet (only open transactions follow).
Rule - a group that stayed still (the same positions tuple, nothing moved on its topics) keeps the
       records the last cycle made of it; anything that moves on its topics annotates it again.
       Random cycles: every annotation equals one made afresh.
"""
from __future__ import annotations

import random

import pytest

from collectors.kafka.positions import PositionReader
from collectors.models import CommittedOffset


class TableReader(PositionReader):
    """Reads nothing from Kafka: every position's first record is at `start`, timestamped
    1,000 + start; the requests of each cycle are kept. Every partition's end-offset history
    starts at offset 0, so no position predates it (such positions are read first, whatever
    their group did)."""

    def __init__(self, *, remembered_budget: int, moving_budget: int):
        super().__init__("c", lambda isolation: {}, remembered_budget=remembered_budget,
                         moving_budget=moving_budget, budget_seconds=5.0)
        self.asked: list[list[tuple[str, int, int]]] = []

    def _read(self, requests):
        self.asked.append(sorted((r.topic, r.partition, r.committed) for r in requests))
        return {r: (r.start, 1_000.0 + r.start, r.start) for r in requests}

    def cycle(self, positions: dict[str, dict[tuple[str, int], int]], ends: dict[tuple[str, int], int]):
        commits = {group: tuple(CommittedOffset(t, p, offset) for (t, p), offset in sorted(offsets.items()))
                   for group, offsets in positions.items()}
        self.note_end_offsets(dict.fromkeys(ends, 0))  # the first end seen of a partition is kept
        annotated, read = self.annotate(commits, lambda group: "read_uncommitted", ends, {}, {})
        asked = self.asked[-1] if read else []
        return annotated, asked


def test_a_position_that_stays_is_read_once():
    reader = TableReader(remembered_budget=10, moving_budget=10)
    ends = {("t", 0): 100, ("t", 1): 100}
    _, asked = reader.cycle({"g": {("t", 0): 5, ("t", 1): 7}}, ends)
    assert asked == [("t", 0, 5), ("t", 1, 7)]
    annotated, asked = reader.cycle({"g": {("t", 0): 5, ("t", 1): 7}}, ends)
    assert asked == []
    assert [(o.partition, o.timestamp, o.readable_lag) for o in annotated["g"]] == [(0, 1_005.0, 95), (1, 1_007.0, 93)]


def test_what_a_cycle_reads_annotates_that_same_cycle():
    reader = TableReader(remembered_budget=10, moving_budget=10)
    annotated, asked = reader.cycle({"g": {("t", 0): 5, ("t", 1): 7}}, {("t", 0): 100, ("t", 1): 100})
    assert asked == [("t", 0, 5), ("t", 1, 7)]
    assert [(o.partition, o.timestamp, o.readable_lag, o.readable_offset) for o in annotated["g"]] == \
        [(0, 1_005.0, 95, 5), (1, 1_007.0, 93, 7)]


def test_a_read_committed_group_reads_up_to_the_last_stable_offset():
    reader = TableReader(remembered_budget=10, moving_budget=10)
    ends, stable = {("t", 0): 100, ("t", 1): 100}, {("t", 0): 60, ("t", 1): 60}
    reader.note_end_offsets(dict.fromkeys(ends, 0))
    positions = (CommittedOffset("t", 0, 50), CommittedOffset("t", 1, 70))
    commits = {"committed": positions, "uncommitted": positions}
    isolation = {"committed": "read_committed", "uncommitted": "read_uncommitted"}.__getitem__
    for cycle in ("read", "remembered"):
        annotated, read = reader.annotate(commits, isolation, ends, stable, {})
        assert read == (3 if cycle == "read" else 0)  # nothing to read past the LSO
        assert [(o.readable_lag, o.readable_offset, o.timestamp) for o in annotated["committed"]] == \
            [(10, 50, 1_050.0), (0, 70, None)], cycle
        assert [(o.readable_lag, o.readable_offset, o.timestamp) for o in annotated["uncommitted"]] == \
            [(50, 50, 1_050.0), (30, 70, 1_070.0)], cycle


def test_a_moving_position_waits_for_the_moving_budget():
    reader = TableReader(remembered_budget=10, moving_budget=0)
    ends = {("t", 0): 100, ("t", 1): 100}
    _, asked = reader.cycle({"g": {("t", 0): 5, ("t", 1): 7}}, ends)
    assert asked == [("t", 0, 5), ("t", 1, 7)]  # new positions count as staying
    annotated, asked = reader.cycle({"g": {("t", 0): 9, ("t", 1): 7}}, ends)
    assert asked == []  # partition 0 moved: no moving budget; partition 1 is remembered
    assert [(o.partition, o.timestamp) for o in annotated["g"]] == [(0, None), (1, 1_007.0)]
    _, asked = reader.cycle({"g": {("t", 0): 9, ("t", 1): 7}}, ends)
    assert asked == [("t", 0, 9)]  # it stayed on 9 since: read from the remembered budget


def test_positions_are_remembered_per_group_and_partition():
    """A second group at the same offset shares what was read; a group whose partitions changed
    order or number is still compared partition by partition."""
    reader = TableReader(remembered_budget=10, moving_budget=0)
    ends = {("t", p): 100 for p in range(3)}
    reader.cycle({"g": {("t", 0): 5, ("t", 1): 7}}, ends)
    _, asked = reader.cycle({"g": {("t", 1): 7, ("t", 2): 3}, "h": {("t", 0): 5, ("t", 1): 8}}, ends)
    assert asked == [("t", 1, 8), ("t", 2, 3)]  # new to their group: remembered budget
    _, asked = reader.cycle({"g": {("t", 0): 6, ("t", 1): 7, ("t", 2): 3}, "h": {("t", 0): 5, ("t", 1): 8}}, ends)
    assert asked == [("t", 0, 6)]  # g's partition 0 is new again (it was not g's last cycle)


def test_a_recreated_topic_forgets_the_positions_on_it():
    reader = TableReader(remembered_budget=10, moving_budget=0)
    ends = {("t", 0): 100}
    reader.cycle({"g": {("t", 0): 50}}, ends)
    reader.forget_topic("t")  # deleted and created again: its offsets start over
    _, asked = reader.cycle({"g": {("t", 0): 3}}, ends)
    assert asked == [("t", 0, 3)]  # not a move from 50: a new position, so read


def test_a_position_without_a_committed_offset_is_not_where_the_group_was():
    """Where a group without a commit would start (`committed` False) is not a position it held:
    its first commit is a new position, not a move."""
    reader = TableReader(remembered_budget=10, moving_budget=0)
    ends = {("t", 0): 100}
    commits = {"g": (CommittedOffset("t", 0, 5, committed=False),)}
    reader.note_end_offsets(dict.fromkeys(ends, 0))
    reader.annotate(commits, lambda group: "read_uncommitted", ends, {}, {})
    _, asked = reader.cycle({"g": {("t", 0): 9}}, ends)
    assert asked == [("t", 0, 9)]


def test_a_group_that_stayed_still_keeps_the_records_made_of_it():
    reader = TableReader(remembered_budget=10, moving_budget=10)
    ends, stable, earliest = {("t", 0): 100, ("t", 1): 100, ("u", 0): 9}, {}, {}
    still = (CommittedOffset("t", 0, 5), CommittedOffset("t", 1, 7))
    other = (CommittedOffset("u", 0, 4),)
    reader.note_end_offsets(dict.fromkeys(ends, 0))
    uncommitted = lambda group: "read_uncommitted"  # noqa: E731
    reader.annotate({"g": still, "h": other}, uncommitted, ends, stable, earliest)  # read
    first, _ = reader.annotate({"g": still, "h": other}, uncommitted, ends, stable, earliest)  # from memory
    again, read = reader.annotate({"g": still, "h": other}, uncommitted, dict(ends), stable, earliest)
    assert read == 0 and again["g"] is first["g"] and again["h"] is first["h"]
    assert [(o.readable_lag, o.timestamp) for o in again["g"]] == [(95, 1_005.0), (93, 1_007.0)]
    # u moved: h is annotated again, g (on t only) is kept; both as they would be afresh
    moved, _ = reader.annotate({"g": still, "h": other}, uncommitted, {**ends, ("u", 0): 12}, stable, earliest)
    assert moved["g"] is first["g"] and moved["h"] is not first["h"]
    assert [(o.readable_lag, o.timestamp) for o in moved["h"]] == [(8, 1_004.0)]
    # what is kept is still looked up: the memory keeps the outcomes the kept records rest on
    assert len(reader._memory) == 3


@pytest.mark.parametrize("seed", range(40))
def test_still_groups_annotate_as_afresh_over_random_cycles(seed):
    """Two readers, the same cycles: one keeps still groups, the other annotates every group
    afresh each cycle. Positions stay (the same tuple), move or are added; end offsets, last
    stable and earliest offsets move; topics are re-created; groups are deleted; budgets leave
    positions unread."""
    rng = random.Random(seed)
    keeping = TableReader(remembered_budget=rng.randint(0, 6), moving_budget=rng.randint(0, 3))
    afresh = TableReader(remembered_budget=keeping._remembered_budget, moving_budget=keeping._moving_budget)
    keys = [(t, p) for t in "abc" for p in range(3)]
    ends = {k: rng.randint(0, 60) for k in keys}
    stable: dict = {}
    earliest: dict = {}
    isolation = {g: rng.choice(("read_committed", "read_uncommitted")) for g in "ghij"}
    commits = {}
    for reader in (keeping, afresh):
        reader.note_end_offsets(dict.fromkeys(keys, 0))
    for cycle in range(30):
        for g in isolation:
            if g not in commits or rng.random() < 0.3:  # moved (a new tuple), else the same tuple
                chosen = sorted(rng.sample(keys, rng.randint(0, 4)))
                commits[g] = tuple(CommittedOffset(t, p, rng.randint(0, 60)) for t, p in chosen)
        if rng.random() < 0.15:  # a group deleted (back next cycle, afresh)
            del commits[rng.choice(list(commits))]
        if rng.random() < 0.4:
            ends = {**ends, rng.choice(keys): rng.randint(0, 70)}
        if rng.random() < 0.3:
            stable = {k: max(0, ends[k] - rng.randint(0, 5)) for k in rng.sample(keys, 4)}
        if rng.random() < 0.2:
            earliest = {k: rng.randint(0, 30) for k in rng.sample(keys, 3)}
        if rng.random() < 0.05:
            topic = rng.choice("abc")
            keeping.forget_topic(topic)
            afresh.forget_topic(topic)
        afresh._still = {}  # nothing kept: every group annotated afresh
        got = keeping.annotate(dict(commits), isolation.__getitem__, dict(ends), stable, earliest)
        want = afresh.annotate(dict(commits), isolation.__getitem__, dict(ends), stable, earliest)
        assert got == want, (seed, cycle)
        assert keeping.asked == afresh.asked
        assert keeping._memory._known == afresh._memory._known


@pytest.mark.parametrize("seed", range(20))
def test_moved_topics_are_those_with_a_partition_whose_value_differs(seed):
    """`moved_topics` against its definition, for maps made again in the same key order (its
    fast path), reordered, grown and shrunk, with None values."""
    from collectors.kafka.positions import moved_topics
    rng = random.Random(seed)
    keys = [(t, p) for t in "abcde" for p in range(4)]
    before = {k: rng.choice([None, *range(5)]) for k in keys if rng.random() < 0.9}
    for _ in range(20):
        after = {k: (rng.choice([None, *range(5)]) if rng.random() < 0.1 else v) for k, v in before.items()}
        if rng.random() < 0.3:
            after = dict(rng.sample(list(after.items()), len(after)))  # another order
        if rng.random() < 0.2:
            after[rng.choice(keys)] = 1  # maybe a new key
        if rng.random() < 0.2 and after:
            del after[rng.choice(list(after))]
        missing = object()
        want = {k[0] for k in before.keys() | after.keys() if before.get(k, missing) != after.get(k, missing)}
        assert moved_topics((before, {}), (after, {})) == want
        before = after


class _ListedTopic:
    def __init__(self, partitions: int):
        self.partitions = dict.fromkeys(range(partitions))


class _ListingConsumer:
    """What `PositionReader._know_topics` uses of a consumer: `list_topics`, whose answer is kept
    here to compare with what the reader keeps."""

    def __init__(self, counts: dict[str, int]):
        self.counts = counts
        self.listed = None

    def list_topics(self, timeout: float):
        self.listed = type("Metadata", (), {})()
        # names made here, as confluent-kafka makes them: new strings, not the caller's
        self.listed.topics = {"".join(name): _ListedTopic(n) for name, n in self.counts.items()}
        return self.listed


def test_a_reader_knows_every_listed_topic_by_names_of_its_own():
    """The partition counts of every listed topic are kept, under names made after the listing is
    freed: names kept from among its objects pinned them in memory (docs/performance.md, the
    thirty-fourth pass)."""
    reader = TableReader(remembered_budget=10, moving_budget=10)
    consumer = _ListingConsumer({"orders": 3, "payments": 12, "a.b-c_d": 1})
    reader._know_topics("read_committed", consumer, {"orders"}, deadline=1e18)
    known, _at = reader._known_topics["read_committed"]
    assert known == {"orders": 3, "payments": 12, "a.b-c_d": 1}
    listed = {id(name) for name in consumer.listed.topics}
    assert not any(id(name) in listed for name in known)
    reader._assigned_topics["read_committed"] = {"orders", "payments"}
    assert reader._partitions_held("read_committed") == 15


def test_a_reader_of_a_cluster_without_topics_knows_none():
    reader = TableReader(remembered_budget=10, moving_budget=10)
    reader._know_topics("read_committed", _ListingConsumer({}), set(), deadline=1e18)
    assert reader._known_topics["read_committed"][0] == {}
