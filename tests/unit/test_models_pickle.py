"""A snapshot crosses from the collector's child process pickled: topics and groups pickle their
records as columns (`collectors.models._reduce_with_columns`), and come back equal, with every
field, as records of the same types."""
import pickle
import pickletools

import pytest

from collectors.models import (Broker, CommittedOffset, ConsumerGroup, GroupMember, KafkaClusterSnapshot,
                               PartitionMetadata, Topic, TopicConfig)

REPLICAS = (1, 2, 3)

PARTITIONS = (
    PartitionMetadata("orders", 0, 1, REPLICAS, REPLICAS, 0, 12, 10, 385),
    PartitionMetadata("orders", 1, -1, REPLICAS, (2,), None, None),  # offline, offsets unknown
    PartitionMetadata("orders", 2, 3, REPLICAS, REPLICAS, 5, 2**62, None, None),
)
OFFSETS = (
    CommittedOffset("orders", 0, 6, True, 6, 6, 1796413748.846),
    CommittedOffset("orders", 1, 0, False),  # no commit: readable fields unknown
    CommittedOffset("payments", 7, 2**62 - 1, True, 0, 2**62 - 1, None),
)


def topic(partitions=PARTITIONS):
    return Topic("orders", partitions, internal=True, topic_id="l11nd9EVQ1iVmFLOS/8bWg",
                 config=TopicConfig("compact,delete", 604800000, -1, 2, fetched_at=1.5))


def group(offsets=OFFSETS):
    return ConsumerGroup("g1", "Stable", (GroupMember("m1", "c1", "/10.0.0.1", (("orders", 0),)),), offsets,
                         1796413749.5, protocol_type="consumer", coordinator=2, error="partial",
                         kind="spark-query", isolation_level="read_uncommitted", assignor="cooperative-sticky")


@pytest.mark.parametrize("value", [topic(), topic(()), group(), group(())], ids=["topic", "no-partitions", "group", "no-offsets"])
def test_records_come_back_equal_with_every_field_and_type(value):
    back = pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    assert back == value and type(back) is type(value)
    rows = back.partitions if isinstance(back, Topic) else back.offsets
    original = value.partitions if isinstance(value, Topic) else value.offsets
    assert [type(r) for r in rows] == [type(r) for r in original]
    assert [r._asdict() for r in rows] == [r._asdict() for r in original]
    if isinstance(back, Topic) and rows:
        assert rows[1].offline and rows[1].message_count is None and rows[0].message_count == 12


def test_a_snapshot_comes_back_equal_and_its_records_pickle_as_columns():
    many = tuple(PartitionMetadata(f"t{i // 10}", i % 10, 1, REPLICAS, REPLICAS, i, i + 100, i + 100, 2**40 + i)
                 for i in range(1000))
    topics = tuple(Topic(f"t{k}", many[k * 10:(k + 1) * 10]) for k in range(100))
    groups = tuple(ConsumerGroup(f"g{k}", "Empty", (), tuple(CommittedOffset(f"t{k}", p, 50 + p, True, 50, 50 + p,
                                                                             1796413748.0 + p)
                                                             for p in range(10)), 2.0)
                   for k in range(100))
    snap = KafkaClusterSnapshot("c", 1.0, 2.0, brokers=(Broker(1, "h", 9092),), topics=topics, groups=groups)
    data = pickle.dumps(snap, pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(data) == snap
    # a call per topic and group, not one per record (2,000 records here)
    calls = [op.name for op, _, _ in pickletools.genops(data) if op.name in ("REDUCE", "NEWOBJ", "NEWOBJ_EX")]
    assert len(calls) <= len(topics) + len(groups) + 5
    assert len(data) < len(pickle.dumps(([t.partitions for t in topics], [g.offsets for g in groups]),
                                        pickle.HIGHEST_PROTOCOL))
