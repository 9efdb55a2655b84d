"""Lag that holds on clusters as they are: transactions, re-created groups and topics, partitions
without a committed offset, any group id. Real broker; `kafka-consumer-groups` is the oracle for
offset lag, the records' own timestamps for time lag.
"""
from __future__ import annotations

import time
from urllib.parse import quote

import pytest
import requests
import yaml
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewPartitions
from prometheus_client.parser import text_string_to_metric_families

from demo.kafka_tools import describe_group
from monitor.app.root import Monitor
from monitor.app.config import Config
from tests.helpers import wait_until
from tests.kafka_helpers import commit, create_topic, lagging_group, produce

pytestmark = pytest.mark.integration

INTERVAL = 1.0


def monitor_for(bootstrap: str, tmp_path, *, cluster: dict | None = None, alerting: dict | None = None) -> Monitor:
    config = {
        "clusters": [{"name": "default", "bootstrap_servers": bootstrap, **(cluster or {})}],
        "history": {"path": str(tmp_path / "history.db")},
        "web": {"port": 0},
        "collection": {"interval_seconds": INTERVAL, "status_window": 3, "isolate_process": False},
    }
    if alerting is not None:
        config["alerting"] = alerting
    return Monitor(Config.model_validate(config)).start(serve=True, loop=False)


def group_view(monitor: Monitor, group: str):
    snapshot = monitor.store.latest()
    for g in snapshot.clusters[0].lag.groups:
        if g.group == group:
            return g
    raise AssertionError(f"group {group!r} not in the view")


def families(monitor: Monitor) -> dict:
    text = requests.get(f"{monitor.web.url}/metrics", timeout=5).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(fams: dict, name: str, **labels) -> float | None:
    family = fams.get(name)
    for s in (family.samples if family else ()):
        if all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


def cli_lag(bootstrap: str, group: str) -> dict[tuple[str, int], int | None]:
    return {(r["topic"], r["partition"]): r["lag"] for r in describe_group(bootstrap, group)}


def transactional_producer(bootstrap: str, tid: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 0})
    producer.init_transactions(30)
    return producer


def transaction(producer: Producer, topic: str, n: int, *, commit_it: bool, timestamp_ms: int | None = None) -> None:
    producer.begin_transaction()
    for i in range(n):
        kwargs = {"timestamp": timestamp_ms + i} if timestamp_ms is not None else {}
        producer.produce(topic, value=b"v", key=str(i).encode(), partition=0, **kwargs)
    if commit_it:
        producer.commit_transaction(30)
    else:
        assert producer.flush(30) == 0  # written first: an abort purges what is still queued
        producer.abort_transaction(30)


def exact_phase(monitor: Monitor) -> float:
    return dict(monitor.store.latest().clusters[0].raw.phase_seconds)["exact_time_lag"]


# ---------------------------------------------------------------------------------------------


def test_transactions_markers_and_aborted_records_are_not_readable(kafka_broker, unique_name, tmp_path):
    """Offsets 0-2 committed transaction, 3 its marker, 4-5 aborted, 6 the abort marker (end 7).

    A read_committed group at 3 has nothing left to read (offset lag 4, as the CLI says); a
    read_uncommitted group at 3 still gets the two aborted records; a group at 0 has all of it."""
    bootstrap = kafka_broker.bootstrap
    topic = unique_name("eos")
    caught_up, uncommitted_reader, behind = unique_name("rc-caught-up"), unique_name("ru-reader"), unique_name("rc-behind")
    create_topic(bootstrap, topic, 1)
    base_ms = int(time.time() * 1000) - 600_000
    producer = transactional_producer(bootstrap, unique_name("tx"))
    transaction(producer, topic, 3, commit_it=True, timestamp_ms=base_ms)
    transaction(producer, topic, 2, commit_it=False, timestamp_ms=base_ms + 100_000)
    for group, offset in ((caught_up, 3), (uncommitted_reader, 3), (behind, 0)):
        commit(bootstrap, group, {(topic, 0): offset})
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [
        {"name": "Lag", "kind": "consumer_lag_messages", "threshold": 0, "for": "0s", "matchers": [f'topic="{topic}"']},
        {"name": "LagSeconds", "kind": "consumer_lag_seconds", "threshold": 0, "for": "0s",
         "matchers": [f'topic="{topic}"']},
    ]}))
    monitor = monitor_for(bootstrap, tmp_path, cluster={
        "group_isolation_levels": {".*-ru-reader": "read_uncommitted"}},
        alerting={"include_default_rules": False, "rules_files": [str(rules)]})
    try:
        for _ in range(4):
            monitor.run_cycle()
        assert exact_phase(monitor) < 1.0  # every read ended at a record or at the end: no deadline waited out
        g = group_view(monitor, caught_up)
        assert (g.lag, g.readable_lag, g.time_lag_seconds) == (4, 0, 0.0)
        assert g.status.value == "OK" and not g.eta_seconds  # caught up: ETA 0
        g = group_view(monitor, uncommitted_reader)
        assert (g.lag, g.readable_lag) == (4, 3)  # from the first aborted record (4) to the end (7)
        [p] = g.partitions
        assert p.time_lag_method.value == "exact"
        age = monitor.store.latest().clusters[0].raw.end_offsets_fetched_at - (base_ms + 100_000) / 1000
        assert p.time_lag_seconds == pytest.approx(age, abs=0.01)
        g = group_view(monitor, behind)
        assert (g.lag, g.readable_lag) == (7, 7)
        [p] = g.partitions
        assert p.time_lag_method.value == "exact"
        assert p.time_lag_seconds == pytest.approx(
            monitor.store.latest().clusters[0].raw.end_offsets_fetched_at - base_ms / 1000, abs=0.01)
        for group in (caught_up, uncommitted_reader, behind):  # offset lag is the CLI's
            assert cli_lag(bootstrap, group) == {(topic, 0): group_view(monitor, group).lag}
        fams = families(monitor)
        assert value(fams, "streamscope_kafka_consumergroup_lag", group=caught_up, topic=topic) == 4
        assert value(fams, "streamscope_kafka_consumergroup_readable_lag", group=caught_up, topic=topic) == 0
        assert value(fams, "streamscope_kafka_consumergroup_lag_seconds", group=caught_up, topic=topic) == 0
        assert value(fams, "streamscope_kafka_consumergroup_readable_lag", group=uncommitted_reader, topic=topic) == 3
        firing = {(a["alertname"], a["labels"]["group"]) for a in monitor.alerting.list_alerts("firing")}
        assert firing == {("Lag", uncommitted_reader), ("Lag", behind), ("LagSeconds", uncommitted_reader),
                          ("LagSeconds", behind)}
    finally:
        monitor.stop()


def test_commit_right_after_the_last_record_is_caught_up_and_never_waits(kafka_broker, unique_name, tmp_path):
    """A consumer that read a whole transaction commits the offset of its commit marker: one
    offset behind for ever by offset lag (KAFKA-6607), caught up in truth. Time lag stays 0 (it
    grew by the minute before), and the read at the marker ends at once instead of waiting out a
    deadline."""
    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("marker-tail"), unique_name("caught-up")
    create_topic(bootstrap, topic, 1)
    producer = transactional_producer(bootstrap, unique_name("tx"))
    transaction(producer, topic, 5, commit_it=True, timestamp_ms=int(time.time() * 1000) - 60_000)
    commit(bootstrap, group, {(topic, 0): 5})  # 0-4 read; 5 is the marker; end 6
    monitor = monitor_for(bootstrap, tmp_path)
    try:
        durations = []
        for _ in range(5):
            started = time.monotonic()
            monitor.run_cycle()
            durations.append(time.monotonic() - started)
            g = group_view(monitor, group)
            assert (g.lag, g.readable_lag, g.time_lag_seconds) == (1, 0, 0.0)
            assert exact_phase(monitor) < 1.0
        assert g.status.value == "OK"
        assert cli_lag(bootstrap, group) == {(topic, 0): 1}
        assert max(durations) < 4.0, durations
    finally:
        monitor.stop()


def test_open_transaction_is_not_readable_for_read_committed_groups(kafka_broker, unique_name, tmp_path):
    bootstrap = kafka_broker.bootstrap
    topic = unique_name("open-tx")
    committed_reader, uncommitted_reader = unique_name("rc"), unique_name("ru-open")
    create_topic(bootstrap, topic, 1)
    producer = transactional_producer(bootstrap, unique_name("tx"))
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=b"open", partition=0)
    assert producer.flush(30) == 0  # written, not committed: the last stable offset stays at 0
    commit(bootstrap, committed_reader, {(topic, 0): 0})
    commit(bootstrap, uncommitted_reader, {(topic, 0): 0})
    monitor = monitor_for(bootstrap, tmp_path, cluster={"group_isolation_levels": {".*-ru-open": "read_uncommitted"}})
    try:
        for _ in range(2):
            monitor.run_cycle()
        raw = monitor.store.latest().clusters[0].raw
        [part] = [p for t in raw.topics if t.name == topic for p in t.partitions]
        assert (part.latest_offset, part.stable_offset) == (3, 0)
        g = group_view(monitor, committed_reader)
        assert (g.lag, g.readable_lag, g.time_lag_seconds) == (3, 0, 0.0)
        g = group_view(monitor, uncommitted_reader)
        assert (g.lag, g.readable_lag) == (3, 3)
        assert g.partitions[0].time_lag_method.value == "exact"
        assert cli_lag(bootstrap, committed_reader) == {(topic, 0): 3}
    finally:
        monitor.stop()
        producer.abort_transaction(30)


def test_group_deleted_and_created_again_starts_fresh(kafka_broker, unique_name, tmp_path):
    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("reborn"), unique_name("phoenix")
    lagging_group(bootstrap, topic, group, records=10, committed=8)
    monitor = monitor_for(bootstrap, tmp_path)
    try:
        for _ in range(3):
            monitor.run_cycle()
        assert group_view(monitor, group).lag == 2
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until its future resolves
        admin.delete_consumer_groups([group], request_timeout=30)[group].result(30)
        monitor.run_cycle()
        assert group not in {g.group for g in monitor.store.latest().clusters[0].lag.groups}
        commit(bootstrap, group, {(topic, 0): 2})  # the same id, a new group, further back
        for _ in range(3):
            monitor.run_cycle()
            g = group_view(monitor, group)
            assert g.lag == 8
            # no REWIND: the old life is forgotten (an Empty group whose offset does not move is
            # STOP in time, which is the truth about the new group)
            assert [p.status.value for p in g.partitions] != ["REWIND"], g.partitions
        assert [p.consume_rate for p in g.partitions] == [0.0]  # measured in the new life only
    finally:
        monitor.stop()


def test_topic_deleted_and_created_again_starts_fresh_windows(kafka_broker, unique_name, tmp_path):
    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("recreated"), unique_name("reader")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, per_partition=20, partitions=1)
    monitor = monitor_for(bootstrap, tmp_path)
    source = monitor.kafka_sources[0]
    try:
        for _ in range(2):
            monitor.run_cycle()
        first_id = {t.name: t.topic_id for t in monitor.store.latest().clusters[0].raw.topics}[topic]
        assert first_id
        admin.delete_topics([topic], request_timeout=30)[topic].result(30)
        wait_until(lambda: topic not in admin.list_topics(timeout=5).topics, 30, "topic deleted")
        recreated_at = time.time()
        wait_until(lambda: _create(admin, topic), 60, "topic created again")
        produce(bootstrap, topic, per_partition=30, partitions=1)  # the new end passes the old one
        commit(bootstrap, group, {(topic, 0): 25})
        monitor.run_cycle()
        raw = monitor.store.latest().clusters[0].raw
        second_id = {t.name: t.topic_id for t in raw.topics}[topic]
        assert second_id and second_id != first_id
        series = source.windows.end_offset_series(topic, 0)
        assert series and min(at for at, _ in series) >= recreated_at, series  # nothing of the old life
        [p] = group_view(monitor, group).partitions
        truth = raw.end_offsets_fetched_at - _record_time(raw, group, topic)
        assert p.time_lag_seconds == pytest.approx(truth, abs=INTERVAL) or p.time_lag_lower_bound
    finally:
        monitor.stop()


def _create(admin: AdminClient, topic: str) -> bool:
    from confluent_kafka.admin import NewTopic

    try:
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    except Exception:  # the deletion may still be in progress: TOPIC_ALREADY_EXISTS
        return False
    return True


def _record_time(raw, group: str, topic: str) -> float:
    [o] = [o for g in raw.groups if g.name == group for o in g.offsets if o.topic == topic]
    assert o.timestamp is not None, "the position was read"
    return o.timestamp


def test_partitions_without_a_committed_offset_are_reported(kafka_broker, unique_name, tmp_path):
    """Partitions added to a consumed topic have no committed offset: the CLI leaves them out of
    its lag (`-`), streamscope reports them and counts them by the cluster's rule."""
    bootstrap = kafka_broker.bootstrap
    topic, latest_group, earliest_group = unique_name("grown"), unique_name("latest"), unique_name("earliest")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, per_partition=10, partitions=2)
    for group in (latest_group, earliest_group):
        commit(bootstrap, group, {(topic, 0): 10, (topic, 1): 10})
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_partitions([NewPartitions(topic, 4)], request_timeout=30)[topic].result(30)
    wait_until(lambda: len(admin.list_topics(topic, timeout=5).topics[topic].partitions) == 4, 30, "4 partitions")
    producer = Producer({"bootstrap.servers": bootstrap})
    for p in (2, 3):
        for _ in range(20):
            producer.produce(topic, value=b"new", partition=p)
    assert producer.flush(30) == 0
    monitor = monitor_for(bootstrap, tmp_path, cluster={"group_uncommitted_partitions": {".*-earliest": "earliest"}})
    try:
        for _ in range(2):
            monitor.run_cycle()
        g = group_view(monitor, latest_group)
        assert g.uncommitted_partitions == 2 and g.lag == 0
        assert [(p.partition, p.uncommitted, p.committed_offset, p.lag) for p in g.partitions] == [
            (0, False, 10, 0), (1, False, 10, 0), (2, True, None, 0), (3, True, None, 0)]
        assert sum(v or 0 for v in cli_lag(bootstrap, latest_group).values()) == g.lag
        g = group_view(monitor, earliest_group)
        assert g.uncommitted_partitions == 2 and (g.lag, g.readable_lag) == (40, 40)
        assert {p.partition: p.time_lag_method.value for p in g.partitions if p.uncommitted} == {2: "exact", 3: "exact"}
        fams = families(monitor)
        assert value(fams, "streamscope_kafka_consumergroup_uncommitted_partitions", group=latest_group) == 2
        api = requests.get(f"{monitor.web.url}/api/v1/clusters/default/groups/{quote(latest_group, safe='')}",
                           timeout=5).json()
        assert api["uncommitted_partitions"] == 2
        assert [p["uncommitted"] for p in api["partitions"]] == [False, False, True, True]
    finally:
        monitor.stop()


NAMES = ["new\nline", "tab\there", "carriage\rreturn", "slash/in/it", "/leading", "trailing/", "per%cent",
         "%2F-looks-encoded", "question?mark", "hash#tag", "quote\"s and 'apostrophes'", "ünïcødé 名前",
         "trailing space ", " leading space", "back\\slash", "a&b=c"]


def test_any_group_id_and_topic_name_works_in_every_route(kafka_broker, unique_name, tmp_path):
    bootstrap = kafka_broker.bootstrap
    topic = (unique_name("t") + "-" + "x" * 249)[:249]  # Kafka's longest topic name
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, per_partition=5, partitions=1)
    prefix = unique_name("g")
    groups = [f"{prefix}-{name}" for name in NAMES]
    for i, group in enumerate(groups):
        commit(bootstrap, group, {(topic, 0): i % 5})
    monitor = monitor_for(bootstrap, tmp_path)
    try:
        for _ in range(2):
            monitor.run_cycle()
        base = f"{monitor.web.url}/api/v1"
        for i, group in enumerate(groups):
            one = requests.get(f"{base}/clusters/default/groups/{quote(group, safe='')}", timeout=5)
            assert one.status_code == 200, (group, one.text[:200])
            assert one.json()["group"] == group and one.json()["lag"] == 5 - i % 5
            history = requests.get(f"{base}/history/groups/default/{quote(group, safe='')}?seconds=600", timeout=5)
            assert history.status_code == 200, (group, history.text[:200])
            assert history.json() and history.json()[-1]["lag"] == 5 - i % 5
        history = requests.get(f"{base}/history/topics/default/{quote(topic, safe='')}?seconds=600", timeout=5)
        assert history.status_code == 200 and history.json()
        missing = requests.get(f"{base}/clusters/default/groups/{quote(prefix + '-none', safe='')}", timeout=5)
        assert missing.status_code == 404
    finally:
        monitor.stop()
