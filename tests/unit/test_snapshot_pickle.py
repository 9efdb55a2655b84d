"""A Kafka snapshot crosses from the collector process to `run` pickled, every cycle. A whole
snapshot sends its topics and groups as columns (`collectors.models._reduce_as_columns`); a `Topic`
or `ConsumerGroup` pickled alone, as a column of one. What arrives must be the same snapshot,
record types included."""
from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler

import pytest

from collectors.models import (Broker, CommittedOffset, ConsumerGroup, GroupMember, KafkaClusterSnapshot,
                               PartitionMetadata, Topic, TopicConfig)


def snapshot() -> KafkaClusterSnapshot:
    replicas = (1, 2)
    topics = (
        Topic("orders", tuple(PartitionMetadata("orders", p, 1, replicas, replicas if p else (1,), 5, 100 + p,
                                                stable_offset=90 + p if p else None, size_bytes=None if p else 4096)
                              for p in range(3)),
              topic_id="AAAAAAAAAAAAAAAAAAAAAQ", config=TopicConfig("delete", 3_600_000, -1, 2)),
        Topic("__consumer_offsets", (), internal=True),
    )
    groups = (
        ConsumerGroup("g1", "Stable", (GroupMember("m1", "c1", "/10.0.0.1", (("orders", 0),)),),
                      (CommittedOffset("orders", 0, 95, True, 4, 96, 1.7e9),
                       CommittedOffset("orders", 1, 101, False)),
                      1.7e9 + 1, coordinator=1, isolation_level="read_uncommitted", assignor="range"),
        ConsumerGroup("spark", "Stable", (), (), 1.7e9, kind="spark-query", error="offsets failed"),
    )
    return KafkaClusterSnapshot("c1", 1.7e9, 1.7e9 + 2, topics=topics, groups=groups)


@pytest.mark.parametrize("dumps", [pickle.dumps, ForkingPickler.dumps], ids=["pickle", "multiprocessing"])
def test_a_snapshot_arrives_whole_with_its_record_types(dumps) -> None:
    sent = snapshot()
    got = pickle.loads(dumps(sent))
    assert got == sent
    for topic, before in zip(got.topics, sent.topics):
        assert (type(topic), topic.name, topic.internal, topic.topic_id, topic.config) == \
            (Topic, before.name, before.internal, before.topic_id, before.config)
        assert [(type(p), p._asdict()) for p in topic.partitions] == \
            [(PartitionMetadata, p._asdict()) for p in before.partitions]
    for group, before in zip(got.groups, sent.groups):
        assert type(group) is ConsumerGroup and group.members == before.members
        assert [(type(o), o._asdict()) for o in group.offsets] == [(CommittedOffset, o._asdict()) for o in before.offsets]
    # the records share what they shared when sent (one replica tuple, one topic name)
    parts = got.topics[0].partitions
    assert parts[1].replicas is parts[2].replicas and parts[0].topic is parts[1].topic


def test_records_are_pickled_without_a_python_call_each(monkeypatch) -> None:
    """A named tuple pickled on its own calls its `__getnewargs__`: 23 ms for a 10,000-partition
    snapshot's records, against 3 ms as rows."""
    def refuse(self):
        raise AssertionError(f"{type(self).__name__} pickled one by one")

    monkeypatch.setattr(PartitionMetadata, "__getnewargs__", refuse)
    monkeypatch.setattr(CommittedOffset, "__getnewargs__", refuse)
    assert pickle.loads(pickle.dumps(snapshot())) == snapshot()


def test_per_topic_and_per_member_objects_are_pickled_as_their_fields() -> None:
    """One `TopicConfig` per topic and one `GroupMember` per member: pickled as (class, values), not
    by dataclasses' __getstate__/__setstate__, which look the fields up for every object."""
    config = TopicConfig("compact,delete", 60_000, 1 << 30, 2, fetched_at=1.7e9)
    member = GroupMember("m1", "c1", "/10.0.0.1", (("orders", 0), ("orders", 1)))
    assert config.__reduce__() == (TopicConfig, ("compact,delete", 60_000, 1 << 30, 2, 1.7e9))
    assert member.__reduce__() == (GroupMember, ("m1", "c1", "/10.0.0.1", (("orders", 0), ("orders", 1))))
    for value in (config, member):
        got = pickle.loads(ForkingPickler.dumps(value))
        assert type(got) is type(value) and got == value


def shape(snapshot: KafkaClusterSnapshot) -> tuple:
    """Each topic's and group's type and its records' types, in order: what equality alone does
    not tell (a named tuple equals the plain tuple of its fields)."""
    return ([(type(t), [type(p) for p in t.partitions]) for t in snapshot.topics],
            [(type(g), [type(o) for o in g.offsets]) for g in snapshot.groups])


@pytest.mark.parametrize("topics, groups", [
    ((), ()),  # a failed cycle
    ("empty first", "empty between"),
    ("empty last", "empty last"),
], ids=["nothing", "empty owners first and between", "empty owners last"])
def test_owners_without_records_keep_their_place(topics, groups) -> None:
    """Each topic gets its own partitions back and each group its own offsets, whatever the
    topics and groups without any sit between them."""
    full = snapshot()
    empty_topic = Topic("new", ())
    empty_group = ConsumerGroup("idle", "Empty", (), (), 1.7e9)
    if topics == "empty first":
        topics, groups = (empty_topic, *full.topics), (full.groups[0], empty_group, full.groups[0])
    elif topics == "empty last":
        topics, groups = (*full.topics, empty_topic), (*full.groups, empty_group)
    sent = KafkaClusterSnapshot("c1", 1.7e9, 1.7e9 + 2, brokers=(Broker(1, "b1", 9092, "r1"),), controller_id=1,
                                topics=topics, groups=groups, groups_complete=False,
                                phase_seconds=(("metadata", 0.01),), error=None if topics else "down",
                                error_kind=None if topics else "unreachable")
    for dumps in (pickle.dumps, ForkingPickler.dumps):
        got = pickle.loads(dumps(sent))
        assert got == sent and shape(got) == shape(sent)


def test_a_whole_snapshot_sends_no_topic_or_group_one_by_one(monkeypatch) -> None:
    """A whole snapshot makes no Python call per topic or group: its own columns, not their
    `__reduce__` (a call each way per topic and group, as long again as all the records)."""
    def refuse(self):
        raise AssertionError(f"{type(self).__name__} pickled one by one")

    monkeypatch.setattr(Topic, "__reduce__", refuse)
    monkeypatch.setattr(ConsumerGroup, "__reduce__", refuse)
    sent = snapshot()
    got = pickle.loads(ForkingPickler.dumps(sent))
    assert got == sent and shape(got) == shape(sent)
    # names shared when sent stay shared: one string per topic, not one per record
    assert got.groups[0].offsets[0].topic is got.topics[0].name is got.topics[0].partitions[0].topic


def test_the_classes_rebuilt_slot_by_slot_have_no_post_init() -> None:
    """The snapshot's topics and groups are made again by setting their slots, which skips a
    `__post_init__`: one added to them must be run there as well."""
    for cls in (Topic, ConsumerGroup):
        assert not hasattr(cls, "__post_init__"), cls


def test_a_topic_or_group_pickled_alone_arrives_with_its_record_types() -> None:
    sent = snapshot()
    for value in (*sent.topics, *sent.groups):
        got = pickle.loads(ForkingPickler.dumps(value))
        assert got == value and type(got) is type(value)
        records = got.partitions if isinstance(got, Topic) else got.offsets
        assert [type(r) for r in records] == [PartitionMetadata if isinstance(got, Topic) else CommittedOffset] * len(records)
