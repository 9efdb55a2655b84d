"""A group's lag per topic (`collectors.models.TopicLag`), defined once: derive sums it each
cycle, and the exporter's per-topic series, the lag alert rules and the API read it.

The table below is the specification of `topic_lags_of`."""
from __future__ import annotations

import dataclasses

import pytest

from collectors.kafka.partition_health import replication_factor, topic_under_min_isr
from collectors.kafka.signals import derive
from collectors.kafka.windows import OffsetWindows
from collectors.models import (CommittedOffset, ConsumerGroup, GroupLag, KafkaClusterSnapshot, PartitionLag,
                               PartitionMetadata, Status, TimeLagMethod, Topic, TopicConfig, TopicLag,
                               objects_from_rows, topic_lags_of)

EXACT, INTERP, NONE = TimeLagMethod.EXACT, TimeLagMethod.INTERPOLATED, TimeLagMethod.NONE


def part(topic, partition, lag, seconds=None, method=NONE, *, rate=None, lower=False, readable=None):
    return PartitionLag("g", topic, partition, 0, lag, lag, seconds, method, rate, Status.OK,
                        time_lag_lower_bound=lower, readable_lag=readable)


@pytest.mark.parametrize("rule, partitions, expected", [
    ("Rule 1 - lag and readable lag are summed per topic, topics by name",
     [part("b", 0, 5), part("a", 0, 3, readable=1), part("b", 1, 7, readable=2), part("a", 1, 4)],
     [TopicLag("a", 7, 5, None, NONE, False, None), TopicLag("b", 12, 7, None, NONE, False, None)]),
    ("Rule 2 - the time lag is the worst timed partition's, with its method",
     [part("t", 0, 1, 10.0, INTERP), part("t", 1, 1, 30.0, EXACT), part("t", 2, 1, 20.0, INTERP)],
     [TopicLag("t", 3, 3, 30.0, EXACT, False, None)]),
    ("Rule 3 - of equal time lags the first partition's method counts",
     [part("t", 0, 1, 30.0, INTERP), part("t", 1, 1, 30.0, EXACT)],
     [TopicLag("t", 2, 2, 30.0, INTERP, False, None)]),
    ("Rule 4 - untimed partitions give no time lag; none timed: None, method none",
     [part("t", 0, 1), part("t", 1, 0)],
     [TopicLag("t", 1, 1, None, NONE, False, None)]),
    ("Rule 5 - a timed partition's lower bound makes the topic's a lower bound, even if not the worst",
     [part("t", 0, 1, 50.0, EXACT), part("t", 1, 1, 20.0, INTERP, lower=True)],
     [TopicLag("t", 2, 2, 50.0, EXACT, True, None)]),
    ("Rule 6 - an untimed partition's lower-bound flag does not count",
     [part("t", 0, 1, 50.0, EXACT), part("t", 1, 1, None, NONE, lower=True)],
     [TopicLag("t", 2, 2, 50.0, EXACT, False, None)]),
    ("Rule 7 - the consume rate is the sum of the known rates; None when none is known",
     [part("t", 0, 1, rate=2.5), part("t", 1, 1), part("t", 2, 1, rate=0.5), part("u", 0, 1)],
     [TopicLag("t", 3, 3, None, NONE, False, 3.0), TopicLag("u", 1, 1, None, NONE, False, None)]),
    ("Rule 8 - a zero rate is known",
     [part("t", 0, 1, rate=0.0)], [TopicLag("t", 1, 1, None, NONE, False, 0.0)]),
    ("Rule 9 - no partitions, no topics", [], []),
])
def test_topic_lags_of(rule, partitions, expected):
    assert list(topic_lags_of(partitions)) == expected, rule


def test_a_group_lag_built_without_them_works_them_out_from_its_partitions():
    parts = (part("t", 0, 4, 12.0, EXACT, rate=1.0), part("u", 0, 2))
    g = GroupLag(cluster="c", group="g", state="Stable", members=1, is_empty=False, empty_since=None, lag=6,
                 time_lag_seconds=12.0, time_lag_method=EXACT, consume_rate=1.0, produce_rate=None,
                 eta_seconds=None, status=Status.OK, partitions=parts, topics=("t", "u"), fetched_at=0.0)
    assert g.topic_lags == topic_lags_of(parts) and [t.topic for t in g.topic_lags] == ["t", "u"]


def _snapshot(at, commits, *, readable=None, min_isr=2):
    """Two topics of three partitions ending at 100; partition 2 of "orders" has one in-sync replica."""
    config = TopicConfig("delete", -1, -1, min_isr)
    topics = tuple(
        Topic(name, tuple(PartitionMetadata(name, p, 1, (1, 2, 3), (1,) if (name, p) == ("orders", 2) else (1, 2, 3),
                                            0, 100) for p in range(3)), config=config)
        for name in ("orders", "payments"))
    offsets = tuple(CommittedOffset(t, p, o, readable_lag=(readable or {}).get((t, p))) for (t, p), o in commits.items())
    return KafkaClusterSnapshot(cluster="c", started_at=at - 1, finished_at=at, end_offsets_fetched_at=at,
                                topics=topics, groups=(ConsumerGroup("g", "Empty", (), offsets, at - 0.5),))


def test_derive_gives_each_group_its_lag_per_topic_summed_from_its_partitions():
    commits = {("orders", 0): 40, ("orders", 1): 90, ("orders", 2): 100, ("payments", 0): 10}
    windows = OffsetWindows()
    for i in range(3):
        raw = _snapshot(1_000.0 + 30 * i, commits)
        windows.record_snapshot(raw)
    (g,) = derive(raw, windows, raw.finished_at).groups
    assert g.topic_lags == topic_lags_of(g.partitions)
    orders, payments = g.topic_lags
    assert (orders.topic, orders.lag, orders.readable_lag) == ("orders", 70, 70)
    assert (payments.topic, payments.lag) == ("payments", 90)
    assert orders.lag + payments.lag == g.lag


def test_derive_reads_a_negative_readable_lag_as_nothing_to_read():
    """Records left to read are never fewer than none: the per-topic sums, the group's and the
    partition's agree on it."""
    raw = _snapshot(1_000.0, {("orders", 0): 40, ("orders", 1): 90},
                    readable={("orders", 0): -3, ("orders", 1): 4})
    windows = OffsetWindows()
    windows.record_snapshot(raw)
    (g,) = derive(raw, windows, raw.finished_at).groups
    assert [p.readable_lag for p in g.partitions] == [0, 4]
    assert g.readable_lag == 4 and g.topic_lags[0].readable_lag == 4


def test_derive_counts_each_topics_replication_and_under_min_isr_once():
    for min_isr, under in ((2, 1), (1, 0)):
        raw = _snapshot(1_000.0, {}, min_isr=min_isr)
        windows = OffsetWindows()
        windows.record_snapshot(raw)
        view = derive(raw, windows, raw.finished_at)
        by_name = {t.name: t for t in raw.topics}
        assert [(t.topic, t.replication_factor, t.under_min_isr) for t in view.topics] == [
            ("orders", 3, under), ("payments", 3, 0)]
        assert all(t.under_min_isr == topic_under_min_isr(by_name[t.topic])
                   and t.replication_factor == replication_factor(by_name[t.topic]) for t in view.topics)
    unknown = KafkaClusterSnapshot(cluster="c", started_at=0, finished_at=1, topics=(
        Topic("t", (PartitionMetadata("t", 0, 1, (1,), (1,), 0, 5),)),))  # no settings fetched
    (t,) = derive(unknown, OffsetWindows(), 1.0).topics
    assert t.under_min_isr is None and t.replication_factor == 1


def _tied_cycles(topics: tuple[str, str]):
    """Three cycles 30 s apart; partition 0 (of topics[0]) is timed by interpolation, partition 1
    (of topics[1]) exactly, both 45 s behind at the last: the end went 10 -> 20 -> 30 and both
    committed 14 throughout (consumed at 0.0 a second), whose record was appended at 1,015 (halfway
    from 10 to 20) and read at the last cycle."""
    windows = OffsetWindows()
    raw = None
    for i in range(3):
        at = 1_000.0 + 30 * i
        topics_meta = {}
        for t, p in ((topics[0], 0), (topics[1], 1)):
            topics_meta.setdefault(t, []).append(PartitionMetadata(t, p, 1, (1,), (1,), 0, 10 + 10 * i))
        read = CommittedOffset(topics[1], 1, 14, readable_offset=14, timestamp=1_015.0)
        offsets = (CommittedOffset(topics[0], 0, 14), read if i == 2 else read._replace(timestamp=None))
        raw = KafkaClusterSnapshot(cluster="c", started_at=at - 1, finished_at=at, end_offsets_fetched_at=at,
                                   topics=tuple(Topic(t, tuple(ps)) for t, ps in topics_meta.items()),
                                   groups=(ConsumerGroup("g", "Empty", (), offsets, at - 0.5),))
        windows.record_snapshot(raw)
    (g,) = derive(raw, windows, raw.finished_at).groups
    return g


def test_derive_of_a_single_topic_group_keeps_the_first_of_equal_time_lags_for_the_topic():
    """The group prefers an exact time lag of equals, its topic the first (Rule 3): derive, which
    makes a one-topic group's TopicLag from the group's own sums, gives what `topic_lags_of` does."""
    g = _tied_cycles(("t", "t"))
    assert [(p.time_lag_seconds, p.time_lag_method) for p in g.partitions] == [(45.0, INTERP), (45.0, EXACT)]
    assert (g.time_lag_seconds, g.time_lag_method) == (45.0, EXACT)
    assert g.topic_lags == topic_lags_of(g.partitions) == (TopicLag("t", 32, 32, 45.0, INTERP, False, 0.0),)


def test_derive_of_a_group_on_two_topics_sums_each_topic_on_its_own():
    g = _tied_cycles(("a", "b"))
    assert g.topic_lags == topic_lags_of(g.partitions) == (
        TopicLag("a", 16, 16, 45.0, INTERP, False, 0.0), TopicLag("b", 16, 16, 45.0, EXACT, False, 0.0))


def test_objects_from_rows_are_the_objects_init_makes():
    """derive makes every group's GroupLag at once from rows of its fields (`objects_from_rows`):
    each the object `GroupLag(...)` would be, from every field's final value."""
    parts = (part("t", 0, 4, 12.0, EXACT, rate=1.0),)
    built = GroupLag(cluster="c", group="g", state="Stable", members=1, is_empty=False, empty_since=None, lag=4,
                     time_lag_seconds=12.0, time_lag_method=EXACT, consume_rate=1.0, produce_rate=None,
                     eta_seconds=None, status=Status.OK, partitions=parts, topics=("t",), fetched_at=0.0)
    row = tuple(getattr(built, f.name) for f in dataclasses.fields(GroupLag))
    (made,) = objects_from_rows(GroupLag, [row])
    assert type(made) is GroupLag and made == built and made.topic_lags == topic_lags_of(parts)
    assert objects_from_rows(GroupLag, []) == []
    with pytest.raises(ValueError):  # a row without every field
        objects_from_rows(GroupLag, [row[:-1]])
