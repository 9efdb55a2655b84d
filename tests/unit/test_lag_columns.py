"""A derived view's partitions in columns (`collectors.lag_columns`): what each reader gets is what
the records would give, and derive makes no record per partition."""
from __future__ import annotations

import copy
import pickle
import random
from dataclasses import replace

import pytest

from collectors.kafka.signals import derive
from collectors.kafka.vector_retention import retention_risks
from collectors.kafka.windows import OffsetWindows
from collectors.lag_columns import GroupPartitions, LagColumns, lag_fields, partition_columns, partition_fields
from collectors.models import (
    ClusterState,
    CommittedOffset,
    ConsumerGroup,
    GroupLag,
    KafkaClusterSnapshot,
    KafkaLagView,
    PartitionLag,
    PartitionMetadata,
    Status,
    TimeLagMethod,
    Topic,
)
from monitor.storage.codec import METHOD_CODE, STATUS_CODE
from monitor.storage.kafka_store import _CycleRows
from monitor.web.jsonable import to_jsonable
from tests.snapshot_builders import group_lag
from tests.unit.test_retention import random_cycle


def records(group: str, count: int, rng: random.Random) -> tuple[PartitionLag, ...]:
    """`count` partitions of `group` with every field varied, None where a field may be."""
    out = []
    for p in range(count):
        committed = None if rng.random() < 0.2 else rng.randrange(0, 1000)
        lag = rng.randrange(0, 50)
        out.append(PartitionLag(
            group, f"t{p % 3}", p, committed, 1000 + p, lag,
            rng.choice([None, 0.0, 1.5, 3_600.25]), rng.choice(list(TimeLagMethod)),
            rng.choice([None, 0.0, 2.5]), rng.choice(list(Status)), rng.choice([None, "client-1"]),
            rng.random() < 0.3, max(0, lag - rng.randrange(0, 3)), committed is None,
        ))
    return tuple(out)


def in_columns(groups: list[GroupLag]) -> list[GroupLag]:
    """The same groups, their partitions in one `LagColumns` as derive keeps them."""
    columns = LagColumns(sum(len(g.partitions) for g in groups) - 1)  # one past the capacity: it grows
    out = []
    for g in groups:
        start, stop = columns.put([tuple(p)[1:] for p in g.partitions])
        out.append(replace(g, partitions=GroupPartitions(columns, g.group, start, stop) if stop > start else ()))
    columns.finish()
    return out


def test_a_groups_partitions_in_columns_are_equal_to_the_tuple_of_their_records():
    rng = random.Random(35)
    before = records("before", 4, rng)
    mine = records("g", 7, rng)
    after = records("after", 2, rng)
    columns = LagColumns(13)
    columns.put([tuple(p)[1:] for p in before])
    start, stop = columns.put([tuple(p)[1:] for p in mine])
    columns.put([tuple(p)[1:] for p in after])
    columns.finish()
    run = GroupPartitions(columns, "g", start, stop)

    assert run == mine and mine == run and run != before and tuple(run) == mine
    assert len(run) == 7 and bool(run) and list(run) == list(mine)
    assert run[0] == mine[0] and run[-1] == mine[-1] and run[2:5] == mine[2:5]
    assert all(type(p) is PartitionLag for p in run)
    with pytest.raises(IndexError):
        run[7]
    with pytest.raises(IndexError):
        run[-8]
    assert hash(run) == hash(mine) and repr(run) == repr(mine)
    copied = pickle.loads(pickle.dumps(run))
    assert type(copied) is tuple and copied == mine
    assert copy.deepcopy(run) == mine
    assert to_jsonable(run) == to_jsonable(mine)
    # a GroupLag holding them is equal to one holding the records
    g = group_lag("c", "g", {})
    assert replace(g, partitions=run) == replace(g, partitions=mine)


def test_every_reader_gets_each_field_as_the_records_hold_it():
    rng = random.Random(7)
    groups = [replace(group_lag("c", f"g{i}", {}), partitions=records(f"g{i}", n, rng))
              for i, n in enumerate([3, 0, 5, 1])]
    columned = in_columns(groups)
    for g, c in zip(groups, columned):
        assert list(partition_fields(c.partitions)) == [tuple(p) for p in g.partitions]
        asked = (1, 6, 3, 13)
        expected = [[p[i] for p in g.partitions] for i in asked]
        assert [list(col) for col in partition_columns(c.partitions, asked)] == expected
        assert [list(col) for col in partition_columns(g.partitions, asked)] == expected


def test_lag_fields_are_derives_own_columns_and_equal_to_the_records():
    rng = random.Random(3)
    groups = [replace(group_lag("c", f"g{i}", {}), partitions=records(f"g{i}", n, rng))
              for i, n in enumerate([4, 0, 6, 2])]
    columned = in_columns(groups)
    expected = [list(f) for f in zip(*(p for g in groups for p in g.partitions))]
    whole = lag_fields(columned)
    assert [list(f) for f in whole] == expected == [list(f) for f in lag_fields(groups)]
    lags = columned[0].partitions._columns
    assert all(f is c for f, c in zip(whole[1:], lags.columns))  # not copied
    # some of the groups: their runs, not the whole columns
    some = [list(f) for f in lag_fields(columned[2:])]
    assert some == [list(f) for f in zip(*(p for g in groups[2:] for p in g.partitions))]
    # runs out of order: read as records
    assert [list(f) for f in lag_fields(columned[::-1])] == [list(f) for f in lag_fields(groups[::-1])]
    assert lag_fields([columned[1]]) is None


def test_lag_against_retention_is_the_same_from_columns():
    rng = random.Random(35)
    compared = 0
    for _ in range(400):
        raw, groups, rates = random_cycle(rng)
        expected = retention_risks(raw, groups, rates)
        assert retention_risks(raw, in_columns(groups), rates) == expected
        compared += len(expected)
    assert compared > 500


def test_the_history_stores_the_same_rows_from_columns():
    rng = random.Random(11)
    groups = [replace(group_lag("c", f"g{i}", {}), partitions=records(f"g{i}", n, rng))
              for i, n in enumerate([5, 3, 0, 8])]
    raw = KafkaClusterSnapshot(cluster="c", started_at=0, finished_at=0)

    ids: dict[str, int] = {}  # name ids, as the history's names table gives them

    def partition_rows(groups):
        view = KafkaLagView("c", 0.0, tuple(groups), ())
        cycle = _CycleRows.of(ClusterState(raw, view), lambda n: ids.setdefault(n, len(ids) + 1))
        return list(cycle._group_partition_rows())

    expected = partition_rows(groups)
    # each record's row, field by field: (group id, topic id, partition, committed offset, lag,
    # time lag in ms, method, status, readable lag, lower bound, uncommitted)
    assert sorted(expected) == sorted(
        (ids[p.group], ids[p.topic], p.partition, p.committed_offset, p.lag,
         None if p.time_lag_seconds is None else round(p.time_lag_seconds * 1000),
         METHOD_CODE[p.time_lag_method], STATUS_CODE[p.status], p.readable_lag,
         int(p.time_lag_lower_bound), int(p.uncommitted))
        for g in groups for p in g.partitions)
    assert partition_rows(in_columns(groups)) == expected
    # the fields that may be None were None in some rows, and a time lag is stored in milliseconds
    assert any(r[3] is None for r in expected) and any(r[5] is None for r in expected)
    assert any(r[5] == 3_600_250 for r in expected)


def test_derive_keeps_a_groups_partitions_in_the_cycles_columns():
    at = 1_700_000_000.0
    ends = {("a", 0): 100, ("a", 1): 50, ("b", 0): 10}
    raw = KafkaClusterSnapshot(
        cluster="c", started_at=at - 1, finished_at=at, end_offsets_fetched_at=at,
        topics=(Topic("a", tuple(PartitionMetadata("a", p, 1, (1,), (1,), 0, ends["a", p]) for p in (0, 1))),
                Topic("b", (PartitionMetadata("b", 0, 1, (1,), (1,), 0, 10),))),
        groups=(ConsumerGroup("g1", "Empty", (), (CommittedOffset("a", 1, 40), CommittedOffset("a", 0, 90)), at),
                ConsumerGroup("g2", "Empty", (), (CommittedOffset("b", 0, 10), CommittedOffset("a", 0, -1)), at)),
    )
    windows = OffsetWindows()
    windows.record_snapshot(raw)
    view = derive(raw, windows, at)
    g1, g2 = view.groups
    assert type(g1.partitions) is GroupPartitions and g1.partitions._columns is g2.partitions._columns
    assert [(p.topic, p.partition, p.committed_offset, p.lag) for p in g1.partitions] == [("a", 0, 90, 10), ("a", 1, 40, 10)]
    assert [(p.group, p.topic, p.lag, p.time_lag_seconds) for p in g2.partitions] == [("g2", "b", 0, 0.0)]
    assert g1.lag == 20 and [t.lag for t in g1.topic_lags] == [20]
