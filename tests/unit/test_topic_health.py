"""Topic settings (DescribeConfigs), log directories (DescribeLogDirs), partition health and
partition owners: the pure parts of what kafka_exporter, kminion and Burrow show. Table-driven."""
from __future__ import annotations

import logging

import pytest

from collectors.kafka.answer_decoding import LogDirAnswer
from collectors.kafka.log_dirs import leader_sizes, parse_log_dirs, topic_bytes
from collectors.kafka.ownership import owner_fields, partition_owners
from collectors.kafka.partition_health import preferred_leader, replication_factor, topic_under_min_isr, under_min_isr
from collectors.kafka.topic_configs import topic_config
from collectors.models import ConsumerGroup, GroupMember, PartitionMetadata, Topic, TopicConfig


@pytest.mark.parametrize("values, expected", [
    ({"cleanup.policy": "delete", "retention.ms": "604800000", "retention.bytes": "-1", "min.insync.replicas": "2"},
     ("delete", 604_800_000, -1, 2)),
    ({"cleanup.policy": "delete,compact", "retention.ms": "-1", "retention.bytes": "1073741824"},
     ("compact,delete", -1, 1_073_741_824, None)),
    ({"cleanup.policy": " COMPACT "}, ("compact", None, None, None)),
    ({"retention.ms": "-2"}, (None, -1, None, None)),  # any negative limit means "none"
])
def test_topic_config(values, expected):
    c = topic_config("t", values, 5.0)
    assert (c.cleanup_policy, c.retention_ms, c.retention_bytes, c.min_insync_replicas) == expected
    assert c.fetched_at == 5.0


@pytest.mark.parametrize("key, text", [
    ("retention.ms", "a week"), ("cleanup.policy", "shred"), ("min.insync.replicas", "0"),
])
def test_malformed_topic_config_values_are_unknown_and_named_in_the_log(key, text, caplog):
    with caplog.at_level(logging.INFO, logger="collectors.kafka.topic_configs"):
        c = topic_config("orders", {key: text}, 0.0)
    assert (c.cleanup_policy, c.retention_ms, c.retention_bytes, c.min_insync_replicas) == (None,) * 4
    assert "'orders'" in caplog.text and key in caplog.text


@pytest.mark.parametrize("policy, deletes", [("delete", True), ("compact,delete", True), ("compact", False), (None, False)])
def test_deletes(policy, deletes):
    assert TopicConfig(policy, 1, -1, 1).deletes is deletes


ANSWERS = [  # (broker, its directories), as `answer_decoding.log_dirs_answer` reads them
    (1, [
        LogDirAnswer(0, "/data/a", [
            ("orders", [(0, 100, False), (1, 50, False)]),
            ("__consumer_offsets", [(0, 7, False)]),
            ("empty", []),
        ], 1000, 400),
        LogDirAnswer(56, "/data/b", [], -1, -1),
    ]),
    (2, [
        LogDirAnswer(0, "/data/a", [("orders", [(0, 90, False), (0, 30, True)])], -1, -1),  # moving in
    ]),
]


def test_parse_log_dirs():
    dirs, replicas = parse_log_dirs(ANSWERS, lambda t: not t.startswith("__"), lambda code: f"E{code}")
    summary = [(d.broker, d.path, d.size_bytes, d.total_bytes, d.usable_bytes, d.error, d.topic_bytes) for d in dirs]
    assert summary == [
        (1, "/data/a", 157, 1000, 400, None, (("orders", 150),)),  # the internal topic counts on disk only
        (1, "/data/b", 0, None, None, "E56", ()),
        (2, "/data/a", 120, None, None, None, (("orders", 120),)),  # a future log is disk in use too
    ]
    assert replicas == {(1, "orders"): {0: 100, 1: 50}, (2, "orders"): {0: 90}}
    assert topic_bytes(dirs) == {"orders": 270}
    # a partition's size is its leader's log; a leader that did not answer gives none
    assert leader_sizes(replicas, {("orders", 0): 2, ("orders", 1): 3}) == {("orders", 0): 90}


def p(leader, replicas, isr, partition=0) -> PartitionMetadata:
    return PartitionMetadata("t", partition, leader, tuple(replicas), tuple(isr), 0, 10)


@pytest.mark.parametrize("partition, preferred", [
    (p(1, [1, 2, 3], [1, 2, 3]), True),
    (p(2, [1, 2, 3], [2, 3]), False),  # broker 1 restarted, leadership moved away
    (p(-1, [1], []), False),           # offline
    (p(1, [], []), False),
])
def test_preferred_leader(partition, preferred):
    assert preferred_leader(partition) is preferred


@pytest.mark.parametrize("isr, min_isr, under", [([1, 2, 3], 2, False), ([1, 2], 2, False), ([1], 2, True),
                                                 ([], 1, True), ([1], None, None)])
def test_under_min_isr(isr, min_isr, under):
    assert under_min_isr(p(1, [1, 2, 3], isr), min_isr) is under


def test_an_offline_partition_is_offline_not_under_min_isr():
    assert under_min_isr(p(-1, [3], []), 1) is False
    assert under_min_isr(p(-1, [3], [3]), 2) is False
    offline = (p(-1, [3], [], 0), p(-1, [3], [], 1))
    assert topic_under_min_isr(Topic("t", offline, config=TopicConfig("delete", 1, -1, 1))) == 0


def test_topic_counts():
    parts = (p(1, [1, 2, 3], [1], 0), p(2, [2, 3, 1], [2, 3], 1), p(3, [3, 1, 2], [3, 1, 2], 2))
    assert topic_under_min_isr(Topic("t", parts, config=TopicConfig("delete", 1, -1, 2))) == 1
    assert topic_under_min_isr(Topic("t", parts)) is None
    assert replication_factor(Topic("t", parts)) == 3


def test_partition_owners():
    a = GroupMember("m-a", "client-a", "/10.0.0.1", (("t", 0), ("t", 1)))
    b = GroupMember("m-b", "client-b", "/10.0.0.2", (("t", 1), ("t", 2)))  # claims 1 too, mid-rebalance
    owners = partition_owners(ConsumerGroup("g", "Stable", (a, b), (), 0.0))
    assert {k: m.member_id for k, m in owners.items()} == {("t", 0): "m-a", ("t", 1): "m-a", ("t", 2): "m-b"}
    assert owner_fields(owners[("t", 2)]) == {"owner_member_id": "m-b", "owner_client_id": "client-b",
                                              "owner_host": "/10.0.0.2"}
    assert owner_fields(None)["owner_host"] is None
    assert partition_owners(None) == {}
