"""The demo's Spark side against a real broker and real Spark (pyspark 4.2.0 + Kafka connector).

One SparkDemo (structured job + DStream job) runs for the whole module, fed by the demo
producer on a topic of its own; the tests look at it the way streamscope does: driver REST API,
metrics servlets, the listener's progress topic, the listener's consumer group. The last tests
crash and restart the structured job, then stop everything and check no process is left.
Bounded waits only.
"""
from __future__ import annotations

import gc
import importlib.util
import json
import time
import uuid
from typing import Any, Callable, Iterator

import psutil
import pytest
import requests
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from collectors.spark.parse.progress import parse_progress_event
from collectors.spark_listener import kafka_end_offsets
from demo.producer import DemoProducer, RateProfile
from tests.conftest import missing_prerequisite

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(900)]

PARTITIONS = 3
QUERY = "clickstream_stats"
GROUP = f"spark-{QUERY}"


def wait_for(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll ``check`` until it returns a truthy value; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, ValueError, KeyError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}"
                                 + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


class TopicTap:
    """Reads a topic from the beginning on demand; keeps every JSON message seen."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.messages: list[dict] = []
        self.keys: list[bytes | None] = []
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"tap-{uuid.uuid4().hex}",
                                   "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self._consumer.subscribe([topic])

    def poll(self, seconds: float = 1.0) -> list[dict]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for message in self._consumer.consume(num_messages=500, timeout=0.2):
                if message.error() is None:
                    self.messages.append(json.loads(message.value()))
                    self.keys.append(message.key())
        return self.messages

    def until(self, what: str, predicate: Callable[[list[dict]], Any], timeout: float) -> Any:
        return wait_for(what, lambda: predicate(self.poll(0.5)), timeout, interval=0)

    def close(self) -> None:
        self._consumer.close()


def progress_of(messages: list[dict], run_id: str | None = None) -> list[dict]:
    return [m["payload"] for m in messages if m.get("type") == "progress"
            and (run_id is None or m["payload"].get("runId") == run_id)]


def get_json(url: str) -> Any:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="module")
def spark_ready(spark_kafka_jars):
    if importlib.util.find_spec("pyspark") is None:
        missing_prerequisite("pyspark is not installed (pip install pyspark==4.2.0)")
    return spark_kafka_jars


@pytest.fixture(scope="module")
def pipeline(spark_ready, kafka_broker, tmp_path_factory) -> Iterator[dict]:
    from demo.spark_pipeline import SparkDemo

    suffix = uuid.uuid4().hex[:6]
    names = {"input": f"clickstream-{suffix}", "output": f"clickstream-stats-{suffix}",
             "progress": f"streamscope-progress-{suffix}"}
    bootstrap = kafka_broker.bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(names["input"], PARTITIONS, 1)])[names["input"]].result(30)
    producer = DemoProducer(bootstrap, names["input"], profile=RateProfile(base=40.0)).start()
    demo = SparkDemo(bootstrap, data_dir=tmp_path_factory.mktemp("spark-demo"), trigger="2 seconds",
                     max_offsets_per_trigger=600, input_topic=names["input"],
                     output_topic=names["output"], progress_topic=names["progress"],
                     query_name=QUERY, input_partitions=PARTITIONS, start_timeout=300)
    started = time.monotonic()
    context: dict = {"demo": demo, "bootstrap": bootstrap, "admin": admin, "producer": producer, **names}
    try:
        demo.start()
        print(f"SparkDemo.start() took {time.monotonic() - started:.1f} s; structured ready after "
              f"{demo.structured.ready_after:.1f} s, dstream after {demo.dstream_job.ready_after:.1f} s")
        context["tap"] = TopicTap(bootstrap, names["progress"])
        yield context
    finally:
        producer.stop()
        if "tap" in context:
            context["tap"].close()
        demo.stop()
        # Drop the Kafka clients now: alive at session end they log every reconnect attempt.
        context.clear()
        del producer, admin
        gc.collect()


def test_structured_ui_lists_the_app_and_streaming_gauges(pipeline):
    demo = pipeline["demo"]
    apps = get_json(f"{demo.ui_url}/api/v1/applications")
    assert [app["id"] for app in apps] == [demo.structured.app_id]
    assert apps[0]["name"] == "streamscope-demo-structured"
    assert apps[0]["attempts"][0]["appSparkVersion"].startswith("4.")
    gauges = wait_for("streaming gauges in /metrics/json/", lambda: [
        name for name in get_json(f"{demo.ui_url}/metrics/json/")["gauges"]
        if f".driver.spark.streaming.{QUERY}." in name], timeout=30)
    assert any(name.endswith(".inputRate-total") for name in gauges), gauges
    prometheus = requests.get(f"{demo.ui_url}/metrics/prometheus/", timeout=5).text
    assert f"_driver_spark_streaming_{QUERY}_" in prometheus


def test_sql_endpoint_shows_micro_batches_of_the_query(pipeline):
    demo = pipeline["demo"]
    query_id = demo.structured.state["query_id"]
    url = f"{demo.ui_url}/api/v1/applications/{demo.structured.app_id}/sql?details=false&length=10000"

    def batches() -> set[int]:
        found = set()
        for execution in get_json(url):
            lines = execution.get("description", "").split("\n")
            if lines[0] == QUERY and f"id = {query_id}" in lines and execution["status"] == "COMPLETED":
                found.update(int(line.split("=", 1)[1]) for line in lines if line.startswith("batch = "))
        return found if len(found) >= 2 else set()

    completed = wait_for("two completed micro-batches in /sql", batches, timeout=150, interval=1)
    assert min(completed) == 0


def test_progress_events_arrive_with_kafka_source_offsets(pipeline):
    tap, demo, topic = pipeline["tap"], pipeline["demo"], pipeline["input"]
    query_id = demo.structured.state["query_id"]
    tap.until("3 progress events with input rows",
              lambda msgs: sum(1 for p in progress_of(msgs) if p["numInputRows"] > 0) >= 3, timeout=150)
    messages = tap.messages
    assert all(key == query_id.encode() for key in tap.keys)
    assert messages[0]["type"] == "started" and messages[0]["payload"]["name"] == QUERY
    assert messages[0]["app_id"] == demo.structured.app_id
    progress = progress_of(messages)
    batch_ids = [p["batchId"] for p in progress]
    assert batch_ids == sorted(batch_ids) and len(set(batch_ids)) == len(batch_ids), batch_ids
    for payload in progress:
        assert payload["id"] == query_id and payload["name"] == QUERY
        source = payload["sources"][0]
        assert source["description"] == f"KafkaV2[Subscribe[{topic}]]"
        assert set(source["endOffset"]) == {topic}
        assert sorted(source["endOffset"][topic]) == [str(p) for p in range(PARTITIONS)]
        assert "maxOffsetsBehindLatest" in source["metrics"]
    # streamscope's own parser reads every message of the feed.
    events = [parse_progress_event(m, source="test", received_at=time.time()) for m in messages]
    assert events[-1].kind == "progress" and events[-1].batch.sources[0].end_offsets


def test_listener_commits_processed_offsets_to_the_query_group(pipeline):
    tap, admin, topic = pipeline["tap"], pipeline["admin"], pipeline["input"]
    request = ConsumerGroupTopicPartitions(GROUP, [TopicPartition(topic, p) for p in range(PARTITIONS)])

    def committed_matches_a_progress() -> dict | None:
        result = admin.list_consumer_group_offsets([request], request_timeout=10)[GROUP].result(15)
        committed = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}
        ends = [kafka_end_offsets(p) for p in progress_of(tap.poll(0.5))]
        return committed if committed in ends else None

    committed = wait_for(f"group {GROUP} committing a progress' endOffset",
                         committed_matches_a_progress, timeout=90, interval=1)
    assert all(offset > 0 for offset in committed.values()), committed


def test_results_reach_the_output_topic_and_its_reader_group(pipeline):
    tap = TopicTap(pipeline["bootstrap"], pipeline["output"])
    try:
        rows = tap.until("windowed stats on the output topic", lambda msgs: msgs, timeout=90)
    finally:
        tap.close()
    row = rows[0]
    assert {"window_start", "window_end", "page", "action", "events", "users", "revenue"} <= set(row)
    assert row["events"] > 0
    admin, group = pipeline["admin"], pipeline["demo"].reader_group
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(pipeline["output"], p) for p in range(3)])
    wait_for(f"group {group} committing offsets", lambda: any(
        tp.offset > 0 for tp in admin.list_consumer_group_offsets([request], request_timeout=10)[group]
        .result(15).topic_partitions), timeout=60, interval=1)


def test_dstream_app_serves_streaming_endpoints(pipeline):
    job = pipeline["demo"].dstream_job
    base = f"{job.ui_url}/api/v1/applications/{job.app_id}/streaming"
    completed = wait_for("completed DStream batches", lambda: [
        b for b in get_json(f"{base}/batches?status=COMPLETED") if b["status"] == "COMPLETED"],
        timeout=120, interval=1)
    assert completed[0]["batchDuration"] == 2000 and "processingTime" in completed[0]
    statistics = get_json(f"{base}/statistics")
    assert statistics["batchDuration"] == 2000 and statistics["numTotalCompletedBatches"] >= 1
    receivers = get_json(f"{base}/receivers")
    assert len(receivers) == 1 and receivers[0]["streamName"].startswith("SocketReceiver")
    apps = get_json(f"{job.ui_url}/api/v1/applications")
    assert apps[0]["name"] == "streamscope-demo-dstream"


def test_killed_structured_job_resumes_from_its_checkpoint(pipeline):
    demo, tap = pipeline["demo"], pipeline["tap"]
    first = demo.structured.state
    last_batch = max(p["batchId"] for p in progress_of(tap.poll(1.0), first["run_id"]))
    old_pids = demo.pids("structured")
    old_url = demo.ui_url
    demo.kill_structured()
    assert not demo.structured.running()
    with pytest.raises(requests.RequestException):
        requests.get(f"{old_url}/api/v1/applications", timeout=3)
    started = time.monotonic()
    demo.start_structured(timeout=240)
    print(f"structured job restarted in {time.monotonic() - started:.1f} s")
    second = demo.structured.state
    assert second["query_id"] == first["query_id"] and second["run_id"] != first["run_id"]
    assert old_pids and not (old_pids & demo.pids("structured"))
    resumed = tap.until("progress of the new run", lambda msgs: progress_of(msgs, second["run_id"]),
                        timeout=150)
    assert resumed[0]["batchId"] > last_batch  # same checkpoint: the numbering goes on


def test_stop_publishes_terminated_and_leaves_no_spark_process(pipeline):
    demo, tap = pipeline["demo"], pipeline["tap"]
    run_id = demo.structured.state["run_id"]
    root = str(demo.root)
    tracked = {}
    for pid in demo.pids():
        try:
            tracked[pid] = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            pass
    assert len(tracked) >= 4, tracked  # two Python drivers and their JVMs at least
    demo.stop()
    survivors = []
    for pid, created in tracked.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                survivors.append((pid, process.cmdline()[:3]))
        except psutil.NoSuchProcess:
            pass
    assert not survivors
    strays = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(root in part for part in (process.info["cmdline"] or [])):
            strays.append((process.info["pid"], process.info["cmdline"][:3]))
    assert not strays
    terminated = tap.until("the terminated event", lambda msgs: [
        m for m in msgs if m["type"] == "terminated" and m["payload"]["runId"] == run_id], timeout=30)
    assert terminated[0]["payload"]["exception"] is None
