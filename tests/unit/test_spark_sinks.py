"""What a Structured Streaming query writes to: real sink descriptions (pyspark 4.2.0, see
tests/fixtures/spark/README.md), the listener's `sink.topics` and the progress contract."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from collectors import spark_listener
from collectors.spark.parse.progress import parse_progress_event
from collectors.spark.sinks import MAX_TOPICS, sink_info, valid_topics

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SINKS = json.loads((FIXTURES / "spark" / "sink_descriptions.json").read_text())["sinks"]
KAFKA_PROGRESS = json.loads((FIXTURES / "kafka_source_progress.json").read_text())


@pytest.mark.parametrize("sink", SINKS, ids=[f"{s['kind']}: {s['how']}" for s in SINKS])
def test_real_descriptions_give_the_sink_kind(sink):
    topics = [sink["write_option_topic"]] if sink["write_option_topic"] else []
    info = sink_info(sink["description"], topics)
    assert info.kind == sink["kind"]
    assert info.topics == tuple(topics)
    assert info.path == sink.get("path")
    assert "@" not in info.description.replace("$$$Lambda$", "")  # object hashes are noise


def test_sink_text():
    kafka = SINKS[0]["description"]
    assert sink_info(kafka, ["clickstream-stats"]).text == "clickstream-stats (Kafka)"
    assert sink_info(kafka).text == "Kafka (topic not named)"
    assert sink_info("FileSink[s3a://bucket/out]").text == "s3a://bucket/out (file)"
    assert sink_info("ForeachBatchSink").text == "foreachBatch"
    assert sink_info("DeltaSink[s3://lake/t]@1a2b3c4d").text == "DeltaSink[s3://lake/t]"
    assert sink_info("KafkaSink[topic=legacy-out]").topics == ("legacy-out",)  # a sink that names it
    assert sink_info(None) is None and sink_info("") is None


def test_credentials_in_a_sink_path_are_never_shown():
    info = sink_info("FileSink[s3a://AKIAEXAMPLE:s3cr3t@bucket/out]")
    assert info.path == "s3a://***@bucket/out" and "s3cr3t" not in info.description + info.text


def test_topics_from_outside_are_checked_and_bounded():
    assert valid_topics(["a", "a", "", 7, None, "b" * 250, "c"]) == ("a", "c")
    assert len(valid_topics([f"t{i}" for i in range(100)])) == MAX_TOPICS
    assert valid_topics("clickstream") == () and valid_topics(None) == ()


def test_listener_sends_the_sink_topic_and_the_collector_reads_it():
    msg = json.loads(json.dumps(spark_listener.envelope(
        "progress", KAFKA_PROGRESS, app_id="local-1", wall=5.0, sink_topics=["clickstream-stats"])))
    assert msg["sink"] == {"topics": ["clickstream-stats"]}
    assert msg["payload"] == KAFKA_PROGRESS  # Spark's JSON is passed on untouched
    batch = parse_progress_event(msg, source="topic", received_at=0.0).batch
    assert batch.sink_topics == ("clickstream-stats",)
    assert batch.sink.kind == "kafka" and batch.sink.text == "clickstream-stats (Kafka)"


def test_progress_without_listener_topics():
    bare = parse_progress_event(KAFKA_PROGRESS, source="bare", received_at=0.0).batch  # Spark's own "sink"
    assert bare.sink_topics == () and bare.sink.kind == "kafka"
    no_sink = spark_listener.envelope("progress", KAFKA_PROGRESS)
    assert "sink" not in no_sink
    odd = dict(no_sink, sink={"topics": "clickstream-stats"})  # malformed: ignored, not fatal
    assert parse_progress_event(odd, source="odd", received_at=0.0).batch.sink_topics == ()


def test_listener_asks_the_driver_only_for_kafka_sinks():
    assert spark_listener.is_kafka_sink(KAFKA_PROGRESS)
    assert not spark_listener.is_kafka_sink({"sink": {"description": "MemorySink"}})
    assert not spark_listener.is_kafka_sink({})
    assert spark_listener.kafka_sink_topics(object(), "q-1") is None  # no JVM session: unknown, no error
