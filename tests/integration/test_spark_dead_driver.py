"""A Spark driver killed with `kill -9` stays visible as down: a real pyspark Structured
Streaming job (the demo's, with the streamscope listener committing the query's offsets to the
group `spark-<query>`), the session Kafka broker, and a Monitor with its web server and the
built-in alert rules, whose cycles the test drives itself (`monitor.run_cycle()`).

While the query runs, its committed group is shown as the query (kind `spark-query`, state
Stable), not as an Empty consumer group. Then the driver JVM (a child of the job's Python
process; only that pid is killed) gets SIGKILL: within two cycles `/metrics` shows
`streamscope_spark_app_up 0`, `..._app_stale 1` and `..._query_active 0` with the query's last
values still exported, and `/api/v1/alerts` lists the built-in StreamscopeSparkAppDown firing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from demo.jars import PrerequisiteMissing
from tests.conftest import missing_prerequisite
from tests.helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.spark, pytest.mark.timeout(900)]

APP = "streamscope-demo-structured"  # the demo job's spark.app.name
ALERT = "StreamscopeSparkAppDown"


class DeadDriverSetup:
    def __init__(self, spark, monitor, query: str, input_topic: str):
        self.spark = spark
        self.monitor = monitor
        self.query = query
        self.group = f"spark-{query}"
        self.input_topic = input_topic
        self.base = f"http://127.0.0.1:{monitor.config.web.port}"

    def metrics(self) -> dict[tuple[str, tuple], float]:
        text = requests.get(f"{self.base}/metrics", timeout=10).text
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text) for s in family.samples}

    def value(self, metrics: dict, name: str, **labels: str) -> float | None:
        return metrics.get((name, tuple(sorted(labels.items()))))

    def firing(self, alertname: str) -> list[dict]:
        alerts = requests.get(f"{self.base}/api/v1/alerts", params={"state": "firing"},
                              timeout=10).json()
        return [a for a in alerts if a["alertname"] == alertname]

    def group_row(self) -> dict | None:
        rows = requests.get(f"{self.base}/api/v1/clusters/default/groups", timeout=10).json()
        return next((r for r in rows if r["group"] == self.group), None)


@pytest.fixture
def setup(kafka_broker, spark_kafka_jars, unique_name, tmp_path) -> Iterator[DeadDriverSetup]:
    if importlib.util.find_spec("pyspark") is None:
        missing_prerequisite("pyspark is not installed")
    from demo.spark_pipeline import SparkDemo
    from monitor.app.root import Monitor
    from monitor.app.config import load_config

    bootstrap = kafka_broker.bootstrap
    query = unique_name.replace("-", "_")[-40:].strip("_")
    input_topic = unique_name("in")
    spark = SparkDemo(bootstrap, data_dir=tmp_path / "spark", trigger="2 seconds",
                      max_offsets_per_trigger=500, dstream=False, output_reader=False,
                      commit_offsets=True, input_topic=input_topic, output_topic=unique_name("out"),
                      progress_topic=unique_name("progress"), query_name=query,
                      input_partitions=2, output_partitions=1, start_timeout=300)
    try:
        spark.start()
    except PrerequisiteMissing as error:
        missing_prerequisite(f"cannot start the Spark job: {error}")
    monitor = None
    try:
        config = load_config(None, environ={}, bootstrap_servers=bootstrap, overrides={
            "collection": {"interval_seconds": 2},
            "history": {"path": str(tmp_path / "history.db")},
            "web": {"port": free_port()},
            "spark": spark.monitor_spark_config(),
            "alerting": {},  # the built-in rules, no receiver
        })
        monitor = Monitor(config).start(serve=True, loop=False)
        yield DeadDriverSetup(spark, monitor, query, input_topic)
    finally:
        if monitor is not None:
            monitor.stop()
        spark.stop()


def produce_events(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    now = time.time()
    for i in range(n):
        producer.produce(topic, key=f"u{i % 7}", value=json.dumps({
            "event_id": f"e{i}", "user_id": f"u{i % 7}", "page": "/home", "action": "view",
            "country": "DE", "amount": 1.0, "event_time": now}))
    assert producer.flush(30) == 0


def committed_group_exists(bootstrap: str, group: str) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=15)
    return any(g.group_id == group for g in listed.valid)


def cycles_until(setup: DeadDriverSetup, what: str, check: Callable[[], Any], *,
                 timeout: float | None = None, max_cycles: int | None = None) -> Any:
    """Run monitor cycles until `check()` is truthy; bounded by time or by a cycle count."""
    deadline = time.monotonic() + (timeout or 1e9)
    cycles = 0
    while True:
        setup.monitor.run_cycle()
        cycles += 1
        value = check()
        if value:
            return value
        if (max_cycles is not None and cycles >= max_cycles) or time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen after {cycles} cycle(s)")
        if max_cycles is None:
            time.sleep(1.0)


def driver_jvm_pid(python_pid: int) -> int:
    """The driver JVM: the `java` child process of the job's Python driver."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv0 = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == python_pid and os.path.basename(argv0) == b"java":
            return int(entry)
    raise AssertionError(f"no java child process of the Spark driver {python_pid}")


def process_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_killed_driver_shows_down_with_its_last_values_and_the_app_down_alert_fires(setup):
    spark, query = setup.spark, setup.query
    q = {"app": APP, "query": query}
    produce_events(spark.bootstrap, setup.input_topic, 300)
    # the listener commits the query's offsets: the group exists before the cycles below read
    deadline = time.monotonic() + 240
    while not committed_group_exists(spark.bootstrap, setup.group):
        assert time.monotonic() < deadline, f"the listener never committed group {setup.group}"
        time.sleep(1.0)

    def live():
        m = setup.metrics()
        row = setup.group_row()
        ok = (setup.value(m, "streamscope_spark_app_up", app=APP) == 1.0
              and setup.value(m, "streamscope_spark_query_active", **q) == 1.0
              and setup.value(m, "streamscope_spark_query_last_batch_id", **q) is not None
              and row is not None)
        return (m, row) if ok else None

    metrics, row = cycles_until(setup, "the app up, its query active with a batch, its group",
                                live, timeout=120)
    # the listener's committed group (no members) is shown as the live query
    assert (row["kind"], row["state"], row["members"]) == ("spark-query", "Stable", 0), row
    assert setup.value(metrics, "streamscope_spark_app_stale", app=APP) == 0.0
    assert setup.firing(ALERT) == []
    last_batch = setup.value(metrics, "streamscope_spark_query_last_batch_id", **q)

    jvm = driver_jvm_pid(spark.structured.pid)
    os.kill(jvm, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not process_gone(jvm):
        assert time.monotonic() < deadline, f"driver JVM {jvm} survived SIGKILL"
        time.sleep(0.1)

    def down():
        m = setup.metrics()
        alerts = setup.firing(ALERT)
        ok = (setup.value(m, "streamscope_spark_app_up", app=APP) == 0.0
              and setup.value(m, "streamscope_spark_app_stale", app=APP) == 1.0
              and setup.value(m, "streamscope_spark_query_active", **q) == 0.0
              and [a["labels"].get("app") for a in alerts] == [APP])
        return (m, alerts) if ok else None

    metrics, alerts = cycles_until(setup, "app_up 0, query_active 0 and the app-down alert",
                                   down, max_cycles=2)
    # its last values are still exported
    assert setup.value(metrics, "streamscope_spark_query_last_batch_id", **q) >= last_batch
    assert setup.value(metrics, "streamscope_spark_query_info", app=APP, query=query,
                       query_id=spark.structured.state["query_id"],
                       run_id=spark.structured.state["run_id"]) == 1.0
    assert setup.value(metrics, "streamscope_spark_query_failed", **q) == 0.0
    assert alerts[0]["labels"]["severity"] == "critical"
    # the committed group is still the query, now not running
    row = setup.group_row()
    assert (row["kind"], row["state"]) == ("spark-query", "Empty"), row
