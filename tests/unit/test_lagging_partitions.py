"""`RetentionRisk.partitions` as derive makes it: a sequence over the cycle's columns whose records
are made when read, and which behaves as the tuple of those records everywhere it is used."""
from __future__ import annotations

import copy
import json
import pickle
from dataclasses import replace

import pytest

from collectors.kafka.vector_retention import LaggingPartitions, retention_risks
from collectors.models import (
    KafkaClusterSnapshot,
    PartitionMetadata,
    PartitionRetention,
    RetentionRisk,
    Topic,
    TopicConfig,
)
from monitor.web.jsonable import to_jsonable
from tests.snapshot_builders import group_lag, topic_rates


def _risks() -> dict[tuple[str, str], RetentionRisk]:
    """Two groups on two topics, every position committed at 1000: on `orders` partition 0 lags
    with 1 record lost, 1 is caught up, 2 lags; on `clicks` both lag, without retention limits."""
    lags = {("orders", 0): (60, 600.0), ("orders", 1): (0, 0.0), ("orders", 2): (10, 100.0),
            ("clicks", 0): (5, 5.0), ("clicks", 1): (7, 7.0)}
    groups = [group_lag("c", name, lags) for name in ("g1", "g2")]
    raw = KafkaClusterSnapshot(cluster="c", started_at=0, finished_at=0, topics=(
        Topic("orders", tuple(PartitionMetadata("orders", p, 1, (1,), (1,), earliest, 1060)
                              for p, earliest in ((0, 1001), (1, 0), (2, 0))),
              config=TopicConfig("delete", 3_600_000, -1, None)),
        Topic("clicks", tuple(PartitionMetadata("clicks", p, 1, (1,), (1,), 0, 1010) for p in (0, 1)),
              config=TopicConfig("delete", -1, -1, None)),
    ))
    risks = retention_risks(raw, groups, [topic_rates("c", "orders", 2.0, partitions=3)])
    return {(r.group, r.topic): r for r in risks}


def test_derive_makes_the_partitions_of_each_risk_from_the_shared_columns():
    risks = _risks()
    assert all(isinstance(r.partitions, LaggingPartitions) for r in risks.values())
    orders = risks[("g2", "orders")].partitions
    assert len(orders) == 2 and bool(orders)
    first, second = orders
    assert (first.topic, first.partition, first.lost, first.basis) == ("orders", 0, 1, "lost")
    assert (second.topic, second.partition, second.lost, second.basis) == ("orders", 2, 0, "time")
    assert second.headroom_seconds == pytest.approx(3_600 - 100.0)
    # each risk reads only its own run of the columns
    assert [(p.topic, p.partition) for p in risks[("g1", "clicks")].partitions] == [("clicks", 0), ("clicks", 1)]
    assert [p.basis for p in risks[("g1", "clicks")].partitions] == ["unlimited", "unlimited"]
    assert [p.headroom_seconds for p in risks[("g1", "clicks")].partitions] == [float("inf")] * 2


def test_the_partitions_are_their_tuple_of_records_wherever_it_is_used():
    partitions = _risks()[("g1", "orders")].partitions
    records = tuple(partitions)
    assert all(type(r) is PartitionRetention for r in records)
    assert partitions == records and records == partitions and not partitions != records
    assert partitions != records[:1] and records[:1] != partitions
    assert partitions != list(records)  # as a tuple: not equal to a list
    assert partitions == _risks()[("g2", "orders")].partitions  # equal content, other columns
    assert partitions != _risks()[("g1", "clicks")].partitions
    assert hash(partitions) == hash(records)
    assert repr(partitions) == repr(records)
    assert (partitions[0], partitions[1], partitions[-1], partitions[-2]) == \
        (records[0], records[1], records[1], records[0])
    assert partitions[1:] == records[1:] and type(partitions[1:]) is tuple
    for outside in (2, -3):
        with pytest.raises(IndexError):
            partitions[outside]
    assert records[1] in partitions and partitions.index(records[1]) == 1
    assert list(reversed(partitions)) == list(reversed(records))


def test_a_risk_with_them_compares_copies_and_pickles_as_with_a_tuple():
    risk = _risks()[("g1", "orders")]
    as_tuple = replace(risk, partitions=tuple(risk.partitions))
    assert risk == as_tuple and hash(risk) == hash(as_tuple)
    assert risk != replace(risk, partitions=tuple(risk.partitions)[:1])
    copies = (copy.copy(risk.partitions), copy.deepcopy(risk.partitions), pickle.loads(pickle.dumps(risk.partitions)))
    for copied in copies:
        assert type(copied) is tuple and copied == tuple(risk.partitions)
    unpickled = pickle.loads(pickle.dumps(risk))
    assert unpickled == risk and type(unpickled.partitions) is tuple


def test_the_api_writes_them_as_a_list_of_objects():
    risk = _risks()[("g1", "orders")]
    out = json.loads(json.dumps(to_jsonable(risk)))
    assert [(p["partition"], p["lost"], p["basis"]) for p in out["partitions"]] == [(0, 1, "lost"), (2, 0, "time")]
    assert out == json.loads(json.dumps(to_jsonable(replace(risk, partitions=tuple(risk.partitions)))))
