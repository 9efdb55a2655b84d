"""What the peers show, on real brokers (issue 15): log-dir sizes that grow with produced bytes,
lag against retention (headroom shrinks, then retention deletes a lagging group's records and
"records lost" fires), and the end-to-end probe (latency exported; its alert fires while the
broker is SIGSTOPped). The under-min-ISR alert around a broker stop is in test_kafka_cluster.py.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests
import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.config import Config
from monitor.app.root import Monitor
from tests.helpers import wait_until
from tests.kafka_helpers import commit, create_topic, produce

pytestmark = pytest.mark.integration


def scrape(monitor: Monitor) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value of everything /metrics serves."""
    text = requests.get(f"{monitor.web.url}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float | None:
    for (sample, sample_labels), v in samples.items():
        if sample == name and all(dict(sample_labels).get(k) == w for k, w in labels.items()):
            return v
    return None


def monitor_for(bootstrap: str, tmp_path, *, cluster: dict, rules: list[dict] | None = None,
                partition_metrics: bool = False) -> Monitor:
    alerting = {"include_default_rules": False}
    if rules:
        path = tmp_path / "rules.yaml"
        path.write_text(yaml.safe_dump({"rules": rules}))
        alerting["rules_files"] = [str(path)]
    config = Config.model_validate({
        "clusters": [{"name": "c", "bootstrap_servers": bootstrap, **cluster}],
        "history": {"path": str(tmp_path / "history.db")}, "web": {"port": 0},
        "collection": {"interval_seconds": 1}, "exporter": {"partition_metrics": partition_metrics},
        "alerting": alerting,
    })
    return Monitor(config).start(serve=True, loop=False)


def states(monitor: Monitor) -> dict[str, str]:
    return {a["alertname"]: a["state"] for a in monitor.alerting.list_alerts()}


def test_log_dir_sizes_grow_with_produced_bytes(kafka_broker, unique_name, tmp_path):
    topic = unique_name("sized")
    create_topic(kafka_broker.bootstrap, topic, 2)
    monitor = monitor_for(kafka_broker.bootstrap, tmp_path, partition_metrics=True,
                          cluster={"topics": {"allow": [topic]}, "log_dirs_every": 1})
    try:
        monitor.run_cycle()
        before = scrape(monitor)
        topic_before = value(before, "streamscope_kafka_topic_log_bytes", topic=topic)
        dir_before = value(before, "streamscope_kafka_broker_log_dir_bytes", broker="1")
        assert topic_before is not None and dir_before is not None

        payload, records = b"x" * 1024, 300
        producer = Producer({"bootstrap.servers": kafka_broker.bootstrap, "linger.ms": 5})
        for i in range(records):
            producer.produce(topic, value=payload, partition=i % 2)
        assert producer.flush(30) == 0
        monitor.run_cycle()
        after = scrape(monitor)
        grown = value(after, "streamscope_kafka_topic_log_bytes", topic=topic) - topic_before
        # every record's value is on disk, plus batch and record headers
        assert records * len(payload) <= grown < records * len(payload) * 1.5, grown
        assert value(after, "streamscope_kafka_broker_log_dir_bytes", broker="1") - dir_before >= grown
        per_partition = [value(after, "streamscope_kafka_partition_log_bytes", topic=topic, partition=str(p))
                         for p in (0, 1)]
        assert sum(per_partition) == value(after, "streamscope_kafka_topic_log_bytes", topic=topic)  # one replica
        # Kafka 3.3+ reports the volume: its size and what is free on it
        total = value(after, "streamscope_kafka_broker_log_dir_total_bytes", broker="1")
        usable = value(after, "streamscope_kafka_broker_log_dir_usable_bytes", broker="1")
        assert total and usable and 0 < usable <= total
        assert value(after, "streamscope_kafka_broker_log_dir_online", broker="1") == 1
        assert value(after, "streamscope_kafka_collector_phase_duration_seconds", phase="log_dirs") is not None
        assert value(after, "streamscope_kafka_log_dirs_complete") == 1
        entry = next(c for c in requests.get(f"{monitor.web.url}/healthz", timeout=5).json()["collectors"]
                     if c["name"] == "kafka:c")
        assert entry["log_dirs_complete"] is True and "log_dirs_error" not in entry
    finally:
        monitor.stop()


def test_a_broker_that_does_not_give_its_log_dirs_keeps_them_and_is_named(kafka_broker, unique_name):
    """The real broker answers DescribeLogDirs; broker 99, in the metadata the test hands over,
    does not exist: the broker's directories are read, 99 is named with the client's error; a
    round without 99 in the metadata is complete again."""
    from collectors.kafka.cluster import ClusterInfo, PartitionInfo, TopicInfo
    from collectors.kafka.group_requests import BatchedGroupRequests
    from collectors.kafka.topic_state import TopicState
    from collectors.models import Broker

    topic = unique_name("dirs")
    create_topic(kafka_broker.bootstrap, topic, 1)
    produce(kafka_broker.bootstrap, topic, 20, 1)
    batched = BatchedGroupRequests(kafka_broker.bootstrap, {}, 10.0, "test-log-dirs")
    try:
        info = ClusterInfo(brokers=(Broker(1, "localhost", 0), Broker(99, "gone", 9092)), controller_id=1,
                           topics={topic: TopicInfo({0: PartitionInfo(1, (1,), (1,))})})
        answers, missing = batched.log_dirs([1, 99])
        assert [broker for broker, _dirs in answers] == [1] and list(missing) == [99]
        assert missing[99].startswith("no answer: UnknownBrokerIdError")

        state = TopicState("c", configs_every=0, log_dirs_every=1, request_timeout=10.0)
        state.refresh_log_dirs(batched, info, {topic})
        assert {d.broker for d in state.log_dirs} == {1} and state.sizes[(topic, 0)] > 0
        assert state.log_dirs_error == ("log directories of broker(s) not given (kept from before): "
                                        "99: no answer: UnknownBrokerIdError: 99")
        kept = state.log_dirs
        gone = ClusterInfo(brokers=(Broker(1, "localhost", 0),), controller_id=1, topics=info.topics)
        state.refresh_log_dirs(batched, gone, {topic})
        assert state.log_dirs_error is None  # every broker listed answered
        assert [(d.broker, d.path) for d in state.log_dirs] == [(d.broker, d.path) for d in kept]
    finally:
        batched.close()


class Trickle:
    """Produces one record every `every` seconds until stopped: segments roll (segment.ms) and
    the group stays behind."""

    def __init__(self, bootstrap: str, topic: str, every: float = 0.5) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        self._topic, self._every = topic, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._producer.produce(self._topic, value=b"tick", partition=0)
            self._producer.poll(0)

    def __enter__(self) -> "Trickle":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self._producer.flush(10)


RETENTION_SECONDS = 20


def test_headroom_shrinks_then_records_lost_fires(kafka_box_factory, unique_name, tmp_path):
    # the broker looks for segments past retention every second, from the start
    box = kafka_box_factory(broker_config={"log.retention.check.interval.ms": 1000,
                                           "log.initial.task.delay.ms": 0})
    topic, group = unique_name("short-lived"), unique_name("laggard")
    admin = AdminClient({"bootstrap.servers": box.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1, config={"retention.ms": str(RETENTION_SECONDS * 1000),
                                                       "segment.ms": "1000"})])[topic].result(30)
    produce(box.bootstrap, topic, per_partition=10, partitions=1)
    commit(box.bootstrap, group, {(topic, 0): 0})  # the group read nothing and stopped
    monitor = monitor_for(box.bootstrap, tmp_path, cluster={"topics": {"allow": [topic]}}, rules=[
        {"name": "FallsOffLog", "kind": "retention_headroom", "threshold": 3600, "for": "0s"},
        {"name": "RecordsLost", "kind": "records_lost", "for": "0s", "severity": "critical"},
    ])
    headrooms: list[float] = []
    try:
        with Trickle(box.bootstrap, topic):
            def lost() -> float | None:
                monitor.run_cycle()
                samples = scrape(monitor)
                n = value(samples, "streamscope_kafka_consumergroup_records_lost", group=group, topic=topic)
                if not n:
                    h = value(samples, "streamscope_kafka_consumergroup_retention_headroom_seconds", group=group,
                              topic=topic)
                    if h is not None:
                        headrooms.append(h)
                return n

            records_lost = wait_until(lost, 120, "retention to delete records the group never read", interval=0.5)
            samples = scrape(monitor)
        # headroom = retention - age of the oldest unread record: it shrank every cycle to 0
        assert len(headrooms) >= 3, headrooms
        assert all(0 <= h <= RETENTION_SECONDS for h in headrooms), headrooms
        assert all(a > b for a, b in zip(headrooms, headrooms[1:]) if b > 0), headrooms
        assert headrooms[0] - headrooms[-1] >= 3, headrooms
        # the log start passed the committed offset: the records below it are lost
        earliest = monitor.store.latest().clusters[0].raw.topics[0].partitions[0].earliest_offset
        assert records_lost == earliest > 0
        assert value(samples, "streamscope_kafka_consumergroup_retention_headroom_seconds", group=group,
                     topic=topic) == 0
        firing = {a["alertname"]: a for a in monitor.alerting.list_alerts("firing")}
        assert firing["RecordsLost"]["value"] == records_lost
        assert firing["RecordsLost"]["labels"]["group"] == group
        # while records were at risk, "falls off the log" fired; once lost, "records lost" says it
        assert states(monitor)["FallsOffLog"] == "resolved"
    finally:
        monitor.stop()


def test_probe_latency_is_exported_and_its_alert_fires_while_the_broker_is_stopped(kafka_box_factory, tmp_path):
    box = kafka_box_factory()
    monitor = monitor_for(box.bootstrap, tmp_path, cluster={
        "request_timeout_seconds": 2,
        "probe": {"enabled": True, "interval_seconds": 1, "timeout_seconds": 1},
    }, rules=[{"name": "ProbeFailing", "kind": "probe_failing", "for": "0s", "severity": "critical"}])

    def cycle() -> dict:
        monitor.run_cycle()
        return scrape(monitor)

    try:
        samples = wait_until(lambda: (s := cycle()) and value(s, "streamscope_kafka_probe_up") == 1
                             and (value(s, "streamscope_kafka_probe_roundtrip_seconds_count") or 0) >= 2 and s,
                             60, "the probe to get records back", interval=0.5)
        count = value(samples, "streamscope_kafka_probe_roundtrip_seconds_count")
        assert value(samples, "streamscope_kafka_probe_roundtrip_seconds_bucket", le="+Inf") == count
        assert 0 < value(samples, "streamscope_kafka_probe_roundtrip_seconds_sum") < count  # well under 1 s each
        assert value(samples, "streamscope_kafka_probe_commit_seconds_count") >= 1
        assert value(samples, "streamscope_kafka_probe_produce_seconds_count") >= 1
        assert value(samples, "streamscope_kafka_probe_records_sent_total") >= count
        assert value(samples, "streamscope_kafka_probe_failures_total", reason="timeout") == 0
        # its traffic is its own: the probe's group is not one of the cluster's groups
        assert not [k for k in samples if k[0] == "streamscope_kafka_consumergroup_members"]
        assert "ProbeFailing" not in states(monitor)

        os.kill(box.broker_pid, signal.SIGSTOP)
        try:
            stopped = wait_until(lambda: (s := cycle()) and "ProbeFailing" in {
                a["alertname"] for a in monitor.alerting.list_alerts("firing")} and s, 60,
                "the probe alert while the broker is stopped", interval=0.5)
            assert value(stopped, "streamscope_kafka_probe_up") == 0
            assert value(stopped, "streamscope_kafka_probe_failures_total", reason="timeout") > 0
            assert value(stopped, "streamscope_collector_up", collector="kafka:c") == 0  # the collection fails too
        finally:
            os.kill(box.broker_pid, signal.SIGCONT)
        wait_until(lambda: value(cycle(), "streamscope_kafka_probe_up") == 1, 90, "the probe to recover",
                   interval=0.5)
        wait_until(lambda: (monitor.run_cycle() or True) and states(monitor)["ProbeFailing"] == "resolved", 30,
                   "the probe alert to resolve", interval=0.5)
    finally:
        monitor.stop()


def test_log_start_is_asked_every_cycle_where_a_group_may_be_losing_records(kafka_broker, unique_name):
    """Earliest offsets are refreshed every `earliest_offsets_every` cycles, except where a group's
    position is in the older half of the log: there every cycle, so a loss shows at once."""
    from confluent_kafka import TopicPartition

    from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings
    from collectors.kafka.signals import derive
    from collectors.kafka.windows import OffsetWindows

    topic, group = unique_name("trimmed"), unique_name("behind")
    create_topic(kafka_broker.bootstrap, topic, 2)
    produce(kafka_broker.bootstrap, topic, per_partition=100, partitions=2)
    commit(kafka_broker.bootstrap, group, {(topic, 0): 10, (topic, 1): 90})  # older half / newer half
    collector = KafkaCollector(KafkaCollectorSettings(
        cluster="c", bootstrap_servers=kafka_broker.bootstrap, earliest_offsets_every=1000,
        group_filter=lambda g: g == group, topic_filter=lambda t: t == topic))
    try:
        first = collector.collect()
        assert first.ok, first.error
        assert [p.earliest_offset for p in first.topics[0].partitions] == [0, 0]
        admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
        for future in admin.delete_records([TopicPartition(topic, p, 50) for p in (0, 1)]).values():
            future.result(30)
        second = collector.collect()
    finally:
        collector.close()
    # partition 0 (the group at 10) was asked again; partition 1 (the group at 90) waits its turn
    assert [p.earliest_offset for p in second.topics[0].partitions] == [50, 0]
    windows = OffsetWindows()
    windows.record_snapshot(second)
    (risk,) = derive(second, windows, time.time()).retention
    assert (risk.lost, risk.lost_partitions, risk.basis) == (40, 1, "lost")
