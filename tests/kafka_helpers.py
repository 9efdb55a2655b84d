"""Setting up Kafka state for tests: topics, records and committed offsets on a real broker."""
from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # metadata propagates asynchronously
        md = admin.list_topics(topic, timeout=5)
        if topic in md.topics and md.topics[topic].error is None and len(md.topics[topic].partitions) == partitions:
            return
        time.sleep(0.1)
    raise AssertionError(f"topic {topic} not ready")


def produce(bootstrap: str, topic: str, per_partition: int, partitions: int, *, timestamp_ms=None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for p in range(partitions):
        for i in range(per_partition):
            ts = timestamp_ms(p, i) if timestamp_ms else None
            kwargs = {"timestamp": ts} if ts is not None else {}
            producer.produce(topic, value=b"x", key=str(i).encode(), partition=p, **kwargs)
    assert producer.flush(30) == 0


def commit(bootstrap: str, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit chosen offsets for a group, then leave: the group is Empty with committed offsets."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    consumer.close()


def lagging_group(bootstrap: str, topic: str, group: str, *, records: int, committed: int) -> None:
    """A one-partition topic with `records` records and a group committed at `committed`."""
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, per_partition=records, partitions=1)
    commit(bootstrap, group, {(topic, 0): committed})
