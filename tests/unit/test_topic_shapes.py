"""derive's topic pass (`collectors.kafka.signals._topics`) and what it keeps of idle topics
(`TopicShapes`).

The rules:
- Rule 1: a topic whose partitions are the very tuple of the last cycle, and whose settings are
  equal, keeps what was made of them (end offsets, replication counts); anything else (a new
  tuple, even an equal one; other settings) is made again. Settings are compared by value: they
  cross from the collector's process anew every cycle.
- Rule 2: produce rates are worked out every cycle, kept topic or not.
- Rule 3: the topics of the last cycle only are kept.
- Rule 4: a shape made again keeps the last shape's (topic, partition) keys while the topic's
  partitions are numbered alike; new keys are the offset windows' tuples where they have one.
The random test holds every cycle's `TopicRates` and per-partition maps to what the model's own
per-partition definitions give (`PartitionMetadata.message_count`, `under_replicated`,
`partition_health.under_min_isr`), and to a derive without anything kept.
"""
from __future__ import annotations

import random

import pytest

from collectors.kafka.partition_health import min_insync_replicas, under_min_isr
from collectors.kafka.signals import TopicShapes, _topics, derive
from collectors.kafka.windows import OffsetWindows
from collectors.models import KafkaClusterSnapshot, PartitionMetadata, Topic, TopicConfig

T0 = 1.7e9


def part(topic: str, n: int, *, leader: int = 1, replicas=(1, 2), isr=(1, 2), earliest=0, latest=10) -> PartitionMetadata:
    return PartitionMetadata(topic, n, leader, replicas, isr, earliest, latest)


def raw(topics, at: float = T0) -> KafkaClusterSnapshot:
    return KafkaClusterSnapshot("c", at, at, topics=tuple(topics), end_offsets_fetched_at=at)


def test_rule_1_a_topic_with_the_same_partitions_and_settings_keeps_its_shape() -> None:
    config = TopicConfig("delete", 1000, -1, 2)
    parts = (part("a", 0), part("a", 1, isr=(1,)))
    shapes = TopicShapes()
    (first,) = shapes.of([Topic("a", parts, config=config)])
    (kept,) = shapes.of([Topic("a", parts, config=config)])  # a new Topic around the same objects
    assert kept is first
    (equal_tuple,) = shapes.of([Topic("a", tuple(parts) + (), config=config)])
    assert equal_tuple is first  # `tuple(t)` of a tuple is the tuple itself: the same object
    (new_tuple,) = shapes.of([Topic("a", (*parts[:1], parts[1]), config=config)])
    assert new_tuple is not first and new_tuple == first  # an equal new tuple: made again, equal
    (equal_config,) = shapes.of([Topic("a", new_tuple.partitions, config=TopicConfig("delete", 1000, -1, 2))])
    assert equal_config is new_tuple
    (other_config,) = shapes.of([Topic("a", new_tuple.partitions, config=TopicConfig("delete", 1000, -1, 1))])
    assert other_config is not new_tuple
    assert (other_config.under_min_isr, new_tuple.under_min_isr) == (0, 1)


def test_rule_2_produce_rates_move_while_the_shape_is_kept() -> None:
    parts = tuple(part("a", p, latest=100) for p in range(2))
    windows = OffsetWindows()
    windows.record_end_offsets(T0 - 60, {("a", 0): 40, ("a", 1): 100})
    windows.record_end_offsets(T0, {("a", 0): 100, ("a", 1): 100})
    shapes = TopicShapes()
    (first,), _, _ = _topics(raw([Topic("a", parts)]), windows, T0, 300.0, shapes)
    windows.record_end_offsets(T0 + 60, {("a", 0): 100, ("a", 1): 100})
    (later,), _, produce = _topics(raw([Topic("a", parts)], T0 + 60), windows, T0 + 60, 90.0, shapes)
    assert first.partition_produce_rates == (1.0, 0.0) and first.produce_rate == 1.0
    # over the last 90 s the window reaches back to the point at T0 - 60: 60 records in 120 s
    assert later.partition_produce_rates == (0.5, 0.0) and produce == {("a", 0): 0.5, ("a", 1): 0.0}


def test_rule_3_only_the_last_cycles_topics_are_kept() -> None:
    parts = (part("a", 0),)
    shapes = TopicShapes()
    (first,) = shapes.of([Topic("a", parts)])
    shapes.of([Topic("b", (part("b", 0),))])
    (again,) = shapes.of([Topic("a", parts)])
    assert again is not first and again == first


def expected(topic: Topic, rates: dict) -> dict:
    """A topic's figures by the model's per-partition definitions."""
    min_isr = min_insync_replicas(topic)
    parts = topic.partitions
    per_partition = [None] * (max((p.partition for p in parts), default=-1) + 1)
    for p in parts:
        if p.partition >= 0:
            per_partition[p.partition] = rates[(p.topic, p.partition)]
    known = [rates[(p.topic, p.partition)] for p in parts if rates[(p.topic, p.partition)] is not None]
    total = 0.0
    for r in known:  # in partition order, one at a time (`sum` may compensate rounding)
        total += r
    return dict(
        partitions=len(parts),
        end_offset_sum=sum(p.latest_offset for p in parts if p.latest_offset is not None and p.latest_offset >= 0),
        message_count=sum(p.message_count or 0 for p in parts),
        under_replicated=sum(p.under_replicated for p in parts),
        offline=sum(p.offline for p in parts),
        replication_factor=max((len(p.replicas) for p in parts), default=0),
        under_min_isr=None if min_isr is None else sum(bool(under_min_isr(p, min_isr)) for p in parts),
        partition_produce_rates=tuple(per_partition),
        produce_rate=total if known else None,
    )


@pytest.mark.parametrize("seed", range(40))
def test_topics_kept_or_not_give_what_their_partitions_define(seed: int) -> None:
    rnd = random.Random(seed)
    configs = [None, TopicConfig("delete", 1000, -1, 2), TopicConfig("compact", -1, -1, None), TopicConfig("delete", 5, 5, 3)]

    def new_partitions(name: str) -> tuple:
        n = rnd.randint(0, 5)
        numbers = list(range(n))
        if rnd.random() < 0.2:
            rnd.shuffle(numbers)
        if rnd.random() < 0.1 and numbers:
            numbers[-1] += rnd.randint(1, 3)  # a gap
        out = []
        for p in numbers:
            replicas = tuple(range(1, rnd.randint(1, 3) + 1))
            latest = rnd.choice([None, -1, rnd.randint(0, 1000)])
            out.append(PartitionMetadata(name, p, rnd.choice([-1, 1, 2]), replicas, replicas[:rnd.randint(0, len(replicas))],
                                         rnd.choice([None, 0, rnd.randint(0, 500)]), latest))
        return tuple(out)

    topics = {f"t{i}": (new_partitions(f"t{i}"), rnd.choice(configs)) for i in range(6)}
    shapes = TopicShapes()
    windows = OffsetWindows()
    for cycle in range(30):
        now = T0 + 10 * cycle
        for name in list(topics):
            roll = rnd.random()
            parts, config = topics[name]
            if roll < 0.15:
                topics[name] = (new_partitions(name), config)
            elif roll < 0.2:
                topics[name] = (tuple(list(parts)), config)  # equal, a new tuple
            elif roll < 0.25:
                topics[name] = (parts, rnd.choice(configs))
            elif roll < 0.5 and config is not None:  # equal settings, another object (as they cross)
                topics[name] = (parts, TopicConfig(config.cleanup_policy, config.retention_ms,
                                                   config.retention_bytes, config.min_insync_replicas))
            elif roll < 0.28:
                del topics[name]
        if rnd.random() < 0.2:
            topics[f"new{cycle}"] = (new_partitions(f"new{cycle}"), rnd.choice(configs))
        snapshot = raw([Topic(name, parts, config=config) for name, (parts, config) in topics.items()], now)
        windows.record_snapshot(snapshot)
        got, end_map, produce = _topics(snapshot, windows, now, 300.0, shapes)
        fresh = _topics(snapshot, windows, now, 300.0)
        assert (got, end_map, produce) == fresh
        assert [t.topic for t in got] == sorted(topics)
        for t in got:
            parts, config = topics[t.topic]
            topic = Topic(t.topic, parts, config=config)
            figures = expected(topic, produce)
            assert {k: getattr(t, k) for k in figures} == figures, (seed, cycle, t.topic)
        assert end_map == {(p.topic, p.partition): p.latest_offset for name in sorted(topics)
                           for p in topics[name][0] if p.latest_offset is not None and p.latest_offset >= 0}
        assert derive(snapshot, windows, now, topic_shapes=shapes).topics == tuple(got)


def test_rule_4_a_shape_made_again_keeps_the_keys_of_partitions_numbered_alike() -> None:
    """A busy topic's partitions are new tuples every cycle: its shape is made again, but its
    (topic, partition) keys are the last shape's while the partitions are numbered alike."""
    shapes = TopicShapes()
    (first,) = shapes.of([Topic("a", (part("a", 0), part("a", 1)))])
    (moved,) = shapes.of([Topic("a", (part("a", 0, latest=11), part("a", 1, latest=12)))])
    assert moved is not first and moved.end_offsets == [11, 12]
    assert moved.keys is first.keys
    (grown,) = shapes.of([Topic("a", (part("a", 0), part("a", 1), part("a", 2)))])
    assert grown.keys == [("a", 0), ("a", 1), ("a", 2)] and grown.keys is not first.keys
    (reordered,) = shapes.of([Topic("a", (part("a", 2), part("a", 0), part("a", 1)))])
    assert reordered.keys == [("a", 2), ("a", 0), ("a", 1)]
    (again,) = shapes.of([Topic("a", (part("a", 2, latest=3), part("a", 0), part("a", 1)))])
    assert again.keys is reordered.keys


def test_derive_files_its_keys_under_the_offset_windows_tuples() -> None:
    """One tuple per partition, the end-offset series' own, for the windows and derive's shapes."""
    parts = (part("a", 0, latest=5), part("a", 1, latest=7))
    windows = OffsetWindows()
    snapshot = raw([Topic("a", parts)])
    windows.record_snapshot(snapshot)
    shapes = TopicShapes()
    _topics(snapshot, windows, T0, 300.0, shapes)
    (shape,) = shapes.of([Topic("a", parts)])
    series_keys = {key: key for key in windows._ends}
    assert shape.keys == [("a", 0), ("a", 1)]
    assert all(key is series_keys[key] for key in shape.keys)
