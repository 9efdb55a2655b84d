"""KafkaProgressFeed against a real Apache Kafka broker: what the streamscope listener publishes
comes back out of drain(), malformed messages are skipped, the backlog is bounded, the drain is
non-blocking, and a broker outage neither raises nor loses the position."""
from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from collectors.spark.collector import SparkCollector
from collectors.spark.feed_kafka import KafkaProgressFeed
from collectors.spark_listener import ProgressPublisher

T = 1_800_000_000.0


def progress(batch_id: int, *, qid="0e5c7a52-7a30-4f57-a3b5-3f0a2d2b0c11",
             run="6c1c8f55-2d6a-4f5e-9d64-96b6b0b5a9e1", name="clicks_agg") -> dict:
    return {
        "id": qid, "runId": run, "name": name,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(T + 2 * batch_id)),
        "batchId": batch_id, "batchDuration": 800, "numInputRows": 5,
        "inputRowsPerSecond": 2.5, "processedRowsPerSecond": 6.0,
        "durationMs": {"addBatch": 600, "triggerExecution": 800},
        "eventTime": {}, "stateOperators": [],
        "sources": [{"description": "KafkaV2[Subscribe[clicks]]",
                     "startOffset": {"clicks": {"0": batch_id * 5}},
                     "endOffset": {"clicks": {"0": batch_id * 5 + 5}},
                     "latestOffset": {"clicks": {"0": batch_id * 5 + 5}},
                     "numInputRows": 5}],
        "sink": {"description": "console", "numOutputRows": 1},
    }


def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def drain_until(feed: KafkaProgressFeed, n: int, timeout: float = 30.0) -> list[dict]:
    """Drain repeatedly until n items arrived (bounded; each drain is itself bounded)."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got.extend(feed.drain())
    return got


def publish(bootstrap: str, topic: str, batch_ids, **kw) -> None:
    pub = ProgressPublisher(bootstrap, topic, app_id="local-77", app_name="clicks-app")
    for i in batch_ids:
        pub.publish("progress", progress(i, **kw))
    assert pub.flush(15) == 0
    pub.close(5)


def test_listener_envelopes_round_trip_and_bad_messages_are_skipped(kafka_broker, unique_name):
    bootstrap, topic = kafka_broker.bootstrap, unique_name("progress")
    create_topic(bootstrap, topic)
    publish(bootstrap, topic, range(3))
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, value=b"{not json")
    producer.produce(topic, value=b"[1, 2, 3]")
    producer.produce(topic, value=b"\xff\xfe")
    producer.flush(15)
    publish(bootstrap, topic, range(3, 5))

    with KafkaProgressFeed(bootstrap, topic) as feed:
        items = drain_until(feed, 5)
        assert [i["payload"]["batchId"] for i in items] == [0, 1, 2, 3, 4]
        assert {i["app_id"] for i in items} == {"local-77"}
        assert items[0]["event"] == "progress" and items[0]["query_name"] == "clicks_agg"
        assert feed.decode_errors == 3
        assert feed.healthy and feed.assigned_partitions == (0,)
        # nothing new: an empty, quick drain
        started = time.monotonic()
        assert feed.drain() == []
        assert time.monotonic() - started < 2.0
        # new messages arrive on the next drains
        publish(bootstrap, topic, [5])
        assert [i["payload"]["batchId"] for i in drain_until(feed, 1)] == [5]


def test_backlog_is_bounded_and_drain_is_bounded(kafka_broker, unique_name):
    bootstrap, topic = kafka_broker.bootstrap, unique_name("progress")
    create_topic(bootstrap, topic, partitions=2)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(200):
        producer.produce(topic, value=json.dumps({"event": "progress", "i": i}).encode(),
                         partition=i % 2)
    producer.flush(15)
    # at start: only the last 30 messages of each partition
    with KafkaProgressFeed(bootstrap, topic, backlog_messages=30, max_messages=25) as feed:
        first = feed.drain()
        while not first:  # assignment happened; the fetch may need another round trip
            first = feed.drain()
        assert len(first) <= 25
        rest = drain_until(feed, 60 - len(first), timeout=30)
        got = sorted(i["i"] for i in first + rest)
        assert got == sorted(list(range(140, 200)))
        assert feed.assigned_partitions == (0, 1)


def test_topic_created_later_is_picked_up(kafka_broker, unique_name):
    bootstrap, topic = kafka_broker.bootstrap, unique_name("later")
    feed = KafkaProgressFeed(bootstrap, topic, metadata_refresh_seconds=2.0)
    try:
        assert feed.drain() == []
        assert feed.healthy and feed.assigned_partitions == ()
        assert "not readable" in (feed.last_error or "")
        create_topic(bootstrap, topic)
        publish(bootstrap, topic, [1, 2])
        items = drain_until(feed, 2, timeout=40)
        # a partition that appears after the start is read from its beginning
        assert [i["payload"]["batchId"] for i in items] == [1, 2]
    finally:
        feed.close()
    feed.close()  # idempotent
    assert feed.drain() == []


def test_feed_drives_the_spark_collector(kafka_broker, unique_name):
    bootstrap, topic = kafka_broker.bootstrap, unique_name("progress")
    create_topic(bootstrap, topic)
    publish(bootstrap, topic, range(4))
    with KafkaProgressFeed(bootstrap, topic) as feed:
        collector = SparkCollector([], feed=feed)
        try:
            deadline = time.monotonic() + 30
            apps = ()
            while time.monotonic() < deadline:
                apps = collector.collect()
                if apps and apps[0].queries and apps[0].queries[0].last_batch_id == 3:
                    break
            (app,) = apps
            assert (app.app.id, app.app.name, app.app.discovered_via) == \
                ("local-77", "clicks-app", "progress-feed")
            (q,) = app.queries
            assert (q.name, q.last_batch_id) == ("clicks_agg", 3)
            assert [(o.topic, o.partition, o.offset) for o in q.last_progress.sources[0].end_offsets] \
                == [("clicks", 0, 20)]
        finally:
            collector.close()


@pytest.mark.timeout(300)
def test_broker_outage_does_not_raise_and_reading_resumes(kafka_box_factory, unique_name):
    box = kafka_box_factory()
    bootstrap, topic = box.bootstrap, unique_name("progress")
    create_topic(bootstrap, topic)
    publish(bootstrap, topic, range(3))
    feed = KafkaProgressFeed(bootstrap, topic, metadata_timeout_seconds=1.0)
    try:
        assert len(drain_until(feed, 3)) == 3
        box.stop_broker()
        deadline = time.monotonic() + 60
        while feed.healthy and time.monotonic() < deadline:
            started = time.monotonic()
            assert feed.drain() == []  # never raises
            assert time.monotonic() - started < 5.0  # and stays bounded while down
        assert not feed.healthy and feed.last_error
        box.start_broker()
        publish(bootstrap, topic, range(3, 6))
        items = drain_until(feed, 3, timeout=90)
        # the position survived the outage: only the new messages, none twice
        assert [i["payload"]["batchId"] for i in items] == [3, 4, 5]
        deadline = time.monotonic() + 30
        while not feed.healthy and time.monotonic() < deadline:
            feed.drain()
        assert feed.healthy
        assert feed.consumers_created == 1
    finally:
        feed.close()
