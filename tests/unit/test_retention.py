"""Lag against retention (collectors.kafka.retention): records lost, headroom by time and by size,
compacted topics, and which partitions the collector watches closely. Pure, table-driven.

`partition_retention` and `topic_risk` are the specification; `retention_risks` applies them to a
whole cycle in numpy passes. The partition table runs through both, and thousands of random
positions are judged each way and compared."""
from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest

from collectors.kafka.retention import (
    limits,
    near_log_start,
    partition_retention,
    size_headroom,
    time_headroom,
    topic_risk,
)
from collectors.kafka.vector_retention import retention_risks
from collectors.models import (
    CommittedOffset,
    GroupLag,
    KafkaClusterSnapshot,
    PartitionLag,
    PartitionMetadata,
    PartitionRetention,
    RetentionRisk,
    Status,
    TimeLagMethod,
    Topic,
    TopicConfig,
    TopicRates,
)
from tests.snapshot_builders import group_lag, topic_rates

INF = math.inf
DAY_MS = 86_400_000


def config(policy="delete", retention_ms=DAY_MS, retention_bytes=-1, min_isr=1) -> TopicConfig:
    return TopicConfig(cleanup_policy=policy, retention_ms=retention_ms, retention_bytes=retention_bytes,
                       min_insync_replicas=min_isr)


def plag(committed=100, end=200, readable=None, time_lag=3600.0, lower=False, partition=0) -> PartitionLag:
    lag = max(0, end - (committed or 0))
    return PartitionLag("g", "t", partition, committed, end, lag, time_lag,
                        TimeLagMethod.EXACT if time_lag is not None else TimeLagMethod.NONE, None, Status.OK,
                        time_lag_lower_bound=lower, readable_lag=lag if readable is None else readable)


def meta(earliest=0, end=200, size=None, partition=0) -> PartitionMetadata:
    return PartitionMetadata("t", partition, 1, (1,), (1,), earliest, end, size_bytes=size)


@pytest.mark.parametrize("retention_ms, age, expected", [
    (DAY_MS, 3600.0, 86_400.0 - 3600.0),   # a day's retention, an hour behind
    (DAY_MS, 90_000.0, 0.0),               # older than retention, not deleted yet: no time left
    (-1, 3600.0, INF),                     # no time limit
    (DAY_MS, None, None),                  # age not known
    (None, 3600.0, None),                  # retention not reported
])
def test_time_headroom(retention_ms, age, expected):
    assert time_headroom(limits(config(retention_ms=retention_ms)).seconds, age) == expected


@pytest.mark.parametrize("limit, committed, earliest, end, size, rate, expected", [
    # 100 records of 10 bytes retained, limit 2000 bytes = 200 records; 50 unread -> 150 more
    # records may come: at 5 records/s, 30 s
    (2000, 50, 0, 100, 1000, 5.0, 30.0),
    (2000, 50, 0, 100, 1000, 0.0, INF),    # nothing produced: the log does not grow
    (2000, 50, 0, 100, 1000, None, None),  # produce rate not known yet
    (500, 50, 0, 100, 1000, 5.0, 0.0),     # the unread part already exceeds the limit
    (-1, 50, 0, 100, 1000, 5.0, INF),      # no size limit
    (2000, 50, 0, 100, None, 5.0, None),   # partition size not known (log dirs off)
    (None, 50, 0, 100, 1000, 5.0, None),   # retention.bytes not reported
])
def test_size_headroom(limit, committed, earliest, end, size, rate, expected):
    assert size_headroom(limits(config(retention_bytes=limit)).bytes, committed, earliest, end, size, rate) == expected


@pytest.mark.parametrize("c, expected", [
    (config(retention_ms=3_600_000, retention_bytes=-1), (None, 3600.0, INF)),
    (config(policy="compact"), ("compacted", None, None)),
    (config(policy=None), ("unknown", None, None)),  # policy not reported: whether it deletes is unknown
    (None, ("unknown", None, None)),
])
def test_limits(c, expected):
    assert tuple(limits(c)) == expected


PARTITION_TABLE = [
    ("records deleted under the group", plag(committed=100), meta(earliest=130), config(),
     None, (30, 0.0, "lost", False)),
    ("lost even on a compacted topic", plag(committed=100), meta(earliest=101), config(policy="compact"),
     None, (1, 0.0, "lost", False)),
    ("nothing left to read", plag(committed=200, end=200), meta(), config(), None, (0, INF, "caught_up", False)),
    ("only markers left to read", plag(committed=198, readable=0), meta(), config(), None,
     (0, INF, "caught_up", False)),
    ("settings not known yet", plag(), meta(), None, None, (0, None, "unknown", False)),
    ("compacted: headroom does not apply", plag(), meta(), config(policy="compact"), None,
     (0, None, "compacted", False)),
    ("compact,delete is retained by time", plag(time_lag=86_000.0), meta(), config(policy="compact,delete"), None,
     (0, 400.0, "time", False)),
    ("time retention", plag(time_lag=3600.0), meta(), config(), None, (0, 82_800.0, "time", False)),
    ("time lag is a lower bound: headroom an upper bound", plag(time_lag=3600.0, lower=True), meta(), config(),
     None, (0, 82_800.0, "time", True)),
    ("size bites first", plag(committed=50, end=100), meta(earliest=0, end=100, size=1000),
     config(retention_bytes=2000), 5.0, (0, 30.0, "size", False)),
    ("size limit set but sizes not known: an upper bound", plag(committed=50, end=100),
     meta(earliest=0, end=100), config(retention_bytes=2000), 5.0, (0, 82_800.0, "time", True)),
    ("no limits at all", plag(), meta(), config(retention_ms=-1), None, (0, INF, "unlimited", False)),
    ("no time limit, size limit not measurable", plag(committed=50, end=100), meta(earliest=0, end=100),
     config(retention_ms=-1, retention_bytes=2000), 5.0, (0, None, "unknown", False)),
    ("age unknown, no size limit", plag(time_lag=None), meta(), config(), None, (0, None, "unknown", False)),
]


@pytest.mark.parametrize("case, p, m, c, rate, expected", PARTITION_TABLE)
def test_partition_retention(case, p, m, c, rate, expected):
    r = partition_retention(p, m, c, rate)
    assert (r.lost, r.headroom_seconds, r.basis, r.upper_bound) == expected, case


@pytest.mark.parametrize("case, p, m, c, rate, expected", PARTITION_TABLE)
def test_partition_table_through_the_whole_cycle(case, p, m, c, rate, expected):
    """The same table, through `retention_risks`: one group, one partition, one topic."""
    (risk,) = retention_risks(snapshot_of([(m, c)]), [group_of(p)], [rates_of([rate])])
    if expected[2] == "caught_up":  # nothing unread: the topic is caught up, no partition detail
        assert (risk.lost, risk.headroom_seconds, risk.basis, risk.upper_bound, risk.partitions) == (
            0, INF, "caught_up", False, ()), case
    else:
        (r,) = risk.partitions
        assert (r.topic, r.partition) == ("t", 0)
        assert (r.lost, r.headroom_seconds, r.basis, r.upper_bound) == expected, case


def test_uncommitted_positions_are_not_at_risk():
    assert partition_retention(plag(committed=None), meta(), config(), None) is None
    assert retention_risks(snapshot_of([(meta(), config())]), [group_of(plag(committed=None))], []) == ()


def part(partition, headroom, basis, lost=0, upper=False):
    return PartitionRetention("t", partition, lost, headroom, basis, upper)


@pytest.mark.parametrize("case, parts, expected", [
    ("the least headroom wins", [part(0, 500.0, "time"), part(1, 100.0, "size"), part(2, INF, "caught_up")],
     (0, 0, 100.0, "size", False, 2)),
    ("a lost partition is the worst", [part(0, 0.0, "time"), part(1, 0.0, "lost", lost=7)],
     (7, 1, 0.0, "lost", False, 2)),
    ("an unknown partition makes the rest an upper bound", [part(0, 500.0, "time"), part(1, None, "unknown")],
     (0, 0, 500.0, "time", True, 2)),
    ("all caught up", [part(0, INF, "caught_up"), part(1, INF, "caught_up")], (0, 0, INF, "caught_up", False, 0)),
    ("compacted", [part(0, None, "compacted")], (0, 0, None, "compacted", False, 1)),
])
def test_topic_risk(case, parts, expected):
    r = topic_risk("g", "t", parts)
    assert (r.lost, r.lost_partitions, r.headroom_seconds, r.basis, r.upper_bound, len(r.partitions)) == expected, case


def test_a_lost_partition_is_the_worst_even_after_one_as_bad():
    """Both have no headroom left (0.0); the one whose records are gone decides the topic's risk."""
    raw = snapshot_of([(meta(earliest=0, partition=0), config()), (meta(earliest=150, partition=1), config())])
    group = group_of(plag(time_lag=90_000.0, partition=0), plag(committed=100, partition=1))
    for risks in (retention_risks(raw, [group], []), reference_risks(raw, [group], [])):
        (risk,) = risks
        assert (risk.lost, risk.lost_partitions, risk.headroom_seconds, risk.basis) == (50, 1, 0.0, "lost")
        assert [(p.partition, p.basis) for p in risk.partitions] == [(0, "time"), (1, "lost")]


def test_retention_risks_join_groups_topics_and_rates():
    group = group_lag("c", "g", {("orders", 0): (50, 600.0), ("orders", 1): (0, 0.0), ("compacted", 0): 10})
    raw = KafkaClusterSnapshot(cluster="c", started_at=0, finished_at=0, topics=(
        Topic("orders", (PartitionMetadata("orders", 0, 1, (1,), (1,), 990, 1050),
                         PartitionMetadata("orders", 1, 1, (1,), (1,), 0, 1000)), config=config(retention_ms=3_600_000)),
        Topic("compacted", (PartitionMetadata("compacted", 0, 1, (1,), (1,), 0, 1010),), config=config(policy="compact")),
    ))
    risks = {r.topic: r for r in retention_risks(raw, [group], [topic_rates("c", "orders", 2.0, partitions=2)])}
    assert (risks["orders"].headroom_seconds, risks["orders"].basis) == (3000.0, "time")
    assert [p.partition for p in risks["orders"].partitions] == [0]  # the caught-up one is left out
    assert (risks["compacted"].headroom_seconds, risks["compacted"].basis) == (None, "compacted")


@pytest.mark.parametrize("case, committed, earliest, latest, near", [
    ("in the older half", 40, 0, 100, True),
    ("in the newer half", 60, 0, 100, False),
    ("already past the log start", 5, 10, 100, True),
    ("caught up", 100, 0, 100, False),
    ("offsets not known", 40, None, 100, False),
])
def test_near_log_start(case, committed, earliest, latest, near):
    commits = {"g": (CommittedOffset("t", 0, committed),)}
    known_earliest = {} if earliest is None else {("t", 0): earliest}
    assert (("t", 0) in near_log_start(commits, known_earliest, {("t", 0): latest})) is near, case


# ---- the whole cycle at once against the specification ------------------------------------------

def snapshot_of(topics: list[tuple[PartitionMetadata | None, TopicConfig | None]], name="t") -> KafkaClusterSnapshot:
    """One topic `name` with the given partitions (None: not described) and config."""
    parts = tuple(m for m, _ in topics if m is not None)
    return KafkaClusterSnapshot(cluster="c", started_at=0, finished_at=0,
                                topics=(Topic(name, parts, config=topics[0][1]),))


def group_of(*partitions: PartitionLag, name="g") -> GroupLag:
    return replace(group_lag("c", name, {}), partitions=tuple(partitions))


def rates_of(rates: list[float | None], topic="t") -> TopicRates:
    return replace(topic_rates("c", topic, partitions=len(rates)), partition_produce_rates=tuple(rates))


def reference_risks(raw, groups, topics) -> tuple[RetentionRisk, ...]:
    """`partition_retention` and `topic_risk`, partition by partition: what `retention_risks` must
    return."""
    by_topic = {t.name: t for t in raw.topics}
    rates = {t.topic: t.partition_produce_rates for t in topics if t.topic in by_topic}
    out = []
    for g in groups:
        per_topic: dict[str, list[PartitionRetention]] = {}
        for p in g.partitions:
            topic = by_topic.get(p.topic)
            metas = {m.partition: m for m in topic.partitions} if topic is not None else {}
            of_topic = rates.get(p.topic, ())
            rate = of_topic[p.partition] if 0 <= p.partition < len(of_topic) else None
            r = partition_retention(p, metas.get(p.partition), topic.config if topic is not None else None, rate)
            if r is not None:
                per_topic.setdefault(p.topic, []).append(r)
        out.extend(topic_risk(g.group, t, parts) for t, parts in sorted(per_topic.items()))
    return tuple(out)


CONFIGS = [config(), config(), config(retention_ms=3_600_000, retention_bytes=50_000),
           config(retention_ms=3_600_000, retention_bytes=50_000), config(retention_ms=-1),
           config(retention_ms=-1, retention_bytes=20_000), config(policy="compact"), config(policy="compact,delete"),
           config(policy=None), config(retention_ms=None, retention_bytes=None), None]


def random_cycle(rng: random.Random):
    """A snapshot, groups and topic rates with every branch of the rules likely: lost records,
    nothing unread, unknown offsets, sizes, ages and rates, no limits, ties of headroom (0.0 and
    +Inf are common), partitions and topics the snapshot does not describe."""
    topics, rates, metas = [], [], {}
    for t in range(rng.randrange(1, 5)):
        name = f"t{t}"
        parts = []
        for p in range(rng.randrange(1, 6)):
            if rng.random() < 0.1:
                continue  # not described
            earliest = None if rng.random() < 0.1 else rng.choice([0, 0, 100, 1_000, 5_000])
            end = (earliest or 0) + rng.choice([0, 1, 50, 2_000, 10_000])
            size = rng.choice([None, 0, 10_000, 200_000, 10**6, 10**6])
            metas[(name, p)] = (earliest, end)
            parts.append(PartitionMetadata(name, p, 1, (1,), (1,), earliest, end, size_bytes=size))
        topics.append(Topic(name, tuple(parts), config=rng.choice(CONFIGS)))
        if rng.random() < 0.8:
            count = rng.randrange(0, 7)
            rates.append(rates_of([rng.choice([None, 0.0, 0.5, 3.0, 100.0]) for _ in range(count)], name))
    groups = []
    for g in range(rng.randrange(0, 4)):
        parts = []
        for topic in sorted(rng.sample([f"t{t}" for t in range(6)], rng.randrange(1, 4))):
            for p in sorted(rng.sample(range(7), rng.randrange(1, 5))):
                earliest, end = metas.get((topic, p), (None, rng.choice([0, 500, 20_000])))
                committed = None if rng.random() < 0.1 else max(0, end - rng.choice([0, 0, 1, 30, 3_000, 30_000]))
                lag = max(0, end - (committed or 0))
                readable = rng.choice([lag, lag, 0, max(0, lag - 1)])
                age = rng.choice([None, 0.0, 30.0, 3_600.0, 3_600.0, 86_400.0, 100_000.0])
                parts.append(PartitionLag(f"g{g}", topic, p, committed, end, lag, age, TimeLagMethod.EXACT, None,
                                          Status.OK, time_lag_lower_bound=rng.random() < 0.3, readable_lag=readable))
        rng.shuffle(parts)  # derive sorts them; the rules must not depend on it
        groups.append(group_of(*parts, name=f"g{g}"))
    return KafkaClusterSnapshot(cluster="c", started_at=0, finished_at=0, topics=tuple(topics)), groups, rates


def test_the_whole_cycle_agrees_with_the_rules_position_by_position():
    rng = random.Random(14)
    compared = bases = 0
    seen: set[str] = set()
    for _ in range(1_500):
        raw, groups, rates = random_cycle(rng)
        expected = reference_risks(raw, groups, rates)
        assert retention_risks(raw, groups, rates) == expected
        compared += len(expected)
        seen.update(r.basis for r in expected)
        seen.update(p.basis for r in expected for p in r.partitions)
        bases += sum(r.upper_bound for r in expected)
    assert compared > 3_000
    assert seen == {"lost", "time", "size", "caught_up", "unlimited", "compacted", "unknown"}  # every rule ran
    assert bases > 100  # and upper bounds with them


def test_positions_on_topics_the_snapshot_does_not_describe_are_judged_unknown():
    """A group's positions on topics the cycle describes none of (a topic filter, a deleted
    topic): no log start, size or limits, as position by position."""
    raw = KafkaClusterSnapshot(cluster="c", started_at=0, finished_at=0, topics=())
    g = group_of(PartitionLag("g", "t", 0, 5, 10, 5, 30.0, TimeLagMethod.EXACT, None, Status.OK, readable_lag=5))
    (risk,) = retention_risks(raw, [g], [])
    assert (risk.basis, risk.headroom_seconds, risk.lost) == ("unknown", None, 0)
    assert (risk,) == reference_risks(raw, [g], [])
