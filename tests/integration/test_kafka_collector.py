"""The Kafka collector and monitor against a real Apache Kafka broker.

Kafka's own `kafka-consumer-groups --describe` (from the same jars) is the oracle for lag.
"""
from __future__ import annotations

from dataclasses import replace

import time

import pytest
import requests
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings
from demo.kafka_tools import describe_group
from monitor.app.root import Monitor
from monitor.app.config import Config
from tests.kafka_helpers import commit, create_topic, lagging_group, produce

pytestmark = pytest.mark.integration


def settings(bootstrap: str, **kw) -> KafkaCollectorSettings:
    return KafkaCollectorSettings(cluster="test", bootstrap_servers=bootstrap, request_timeout=10, **kw)


def monitor_for(bootstrap: str, tmp_path, *, request_timeout: float = 10.0) -> Monitor:
    config = Config.model_validate({
        "clusters": [{"name": "default", "bootstrap_servers": bootstrap, "request_timeout_seconds": request_timeout}],
        "history": {"path": str(tmp_path / "history.db")},
        "web": {"port": 0},
        "collection": {"interval_seconds": 1, "status_window": 3},
    })
    return Monitor(config)


def metrics(monitor: Monitor) -> dict:
    text = requests.get(f"{monitor.web.url}/metrics", timeout=5).text
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict, name: str, **labels) -> list:
    family = families.get(name)
    if family is None:
        return []
    return [s for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]


# ---------------------------------------------------------------------------------------------


def test_lag_per_partition_equals_kafka_consumer_groups_tool(kafka_broker, unique_name):
    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("orders"), unique_name("billing")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, per_partition=50, partitions=3)
    commit(bootstrap, group, {(topic, 0): 10, (topic, 1): 50, (topic, 2): 0})

    raw = KafkaCollector(settings(bootstrap)).collect()
    assert raw.ok, raw.error
    oracle = {(row["topic"], row["partition"]): row for row in describe_group(bootstrap, group)}
    mine = {g.name: g for g in raw.groups}[group]
    latest = {(p.topic, p.partition): p.latest_offset for t in raw.topics for p in t.partitions}
    assert mine.state == "Empty"
    assert len(oracle) == 3
    for o in mine.offsets:
        row = oracle[(o.topic, o.partition)]
        assert o.offset == row["current_offset"]
        assert latest[(o.topic, o.partition)] == row["log_end_offset"]
        assert max(0, latest[(o.topic, o.partition)] - o.offset) == row["lag"]
    assert {row["lag"] for row in oracle.values()} == {40, 0, 50}
    assert raw.finished_at >= raw.end_offsets_fetched_at >= mine.offsets_fetched_at


def test_exact_time_lag_is_the_age_of_the_oldest_unconsumed_record(kafka_broker, unique_name, tmp_path):
    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("events"), unique_name("slow")
    create_topic(bootstrap, topic, 2)
    base_ms = int(time.time() * 1000) - 600_000  # record i of partition p is (600 - i) s old
    produce(bootstrap, topic, per_partition=20, partitions=2, timestamp_ms=lambda p, i: base_ms + i * 1000)
    commit(bootstrap, group, {(topic, 0): 5, (topic, 1): 20})

    monitor = monitor_for(bootstrap, tmp_path)
    monitor.start(serve=False, loop=False)
    try:
        snapshot = monitor.run_cycle()
    finally:
        monitor.stop()
    view = {g.group: g for g in snapshot.clusters[0].lag.groups}[group]
    parts = {p.partition: p for p in view.partitions}
    truth = snapshot.clusters[0].raw.end_offsets_fetched_at - (base_ms + 5 * 1000) / 1000
    assert parts[0].lag == 15 and parts[0].time_lag_method.value == "exact"
    assert abs(parts[0].time_lag_seconds - truth) < 1.0  # within one poll interval (1 s)
    assert parts[1].lag == 0 and parts[1].time_lag_seconds == 0
    assert view.time_lag_seconds == pytest.approx(parts[0].time_lag_seconds)


def test_empty_group_keeps_its_lag_and_deleted_group_vanishes(kafka_broker, unique_name, tmp_path):
    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("t"), unique_name("gone-soon")
    lagging_group(bootstrap, topic, group, records=30, committed=12)

    monitor = monitor_for(bootstrap, tmp_path)
    monitor.start(serve=True, loop=False)
    try:
        monitor.run_cycle()
        families = metrics(monitor)
        assert [s.value for s in samples(families, "streamscope_kafka_consumergroup_lag", group=group, topic=topic)] == [18]
        assert [s.value for s in samples(families, "streamscope_kafka_consumergroup_empty", group=group)] == [1]

        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.delete_consumer_groups([group], request_timeout=10)[group].result(15)
        monitor.run_cycle()
        families = metrics(monitor)
        assert samples(families, "streamscope_kafka_consumergroup_lag", group=group) == []
        assert samples(families, "streamscope_kafka_consumergroup_members", group=group) == []
        # the topic is still there
        assert samples(families, "streamscope_kafka_topic_end_offset", topic=topic)[0].value == 30
    finally:
        monitor.stop()


HOSTILE = ['quote"d', "new\nline", "<script>alert(1)</script>", "back\\slash", "ünï cødé"]


def test_hostile_group_names_are_escaped_and_kept_exactly(kafka_broker, unique_name, tmp_path):
    bootstrap = kafka_broker.bootstrap
    topic = unique_name("hostile")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, per_partition=10, partitions=1)
    groups = [f"{unique_name('g')}-{name}" for name in HOSTILE]
    for i, group in enumerate(groups):
        commit(bootstrap, group, {(topic, 0): i})

    monitor = monitor_for(bootstrap, tmp_path)
    monitor.start(serve=True, loop=False)
    try:
        monitor.run_cycle()
        families = metrics(monitor)  # the parser would fail on broken escaping
        lag = {s.labels["group"]: s.value for s in samples(families, "streamscope_kafka_consumergroup_lag", topic=topic)}
        assert set(groups) <= set(lag), (sorted(lag), groups)
        for i, group in enumerate(groups):
            assert lag[group] == 10 - i
        api = requests.get(f"{monitor.web.url}/api/v1/clusters/default/groups", timeout=5).json()
        assert set(groups) <= {row["group"] for row in api}
        one = requests.get(f"{monitor.web.url}/api/v1/clusters/default/groups/{requests.utils.quote(groups[2], safe='')}", timeout=5)
        assert one.status_code == 200 and one.json()["group"] == groups[2]
        assert one.headers["Content-Type"].startswith("application/json")
    finally:
        monitor.stop()


def test_unreachable_bootstrap_fails_fast_and_clearly():
    started = time.monotonic()
    raw = KafkaCollector(KafkaCollectorSettings(cluster="nowhere", bootstrap_servers="127.0.0.1:1",
                                                request_timeout=2)).collect()
    assert not raw.ok
    assert raw.error
    assert time.monotonic() - started < 15


def test_broker_outage_is_survived_and_recovered(kafka_broker, unique_name, tmp_path):
    """Broker stopped mid-run: no crash, no hang, collector_up 0, /healthz degraded, last data kept
    and marked stale; broker back: recovery without restart, after group calls timed out."""
    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("outage"), unique_name("survivor")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, per_partition=25, partitions=2)
    commit(bootstrap, group, {(topic, 0): 5, (topic, 1): 5})
    monitor = monitor_for(bootstrap, tmp_path, request_timeout=2.0)  # keep outage cycles short
    monitor.start(serve=True, loop=False)
    try:
        monitor.run_cycle()
        before = metrics(monitor)
        assert samples(before, "streamscope_collector_up", collector="kafka:default")[0].value == 1
        kafka_broker.stop_broker()
        outage_started = time.monotonic()
        for _ in range(2):  # group-offset calls time out against the dead broker
            snapshot = monitor.run_cycle()
        assert time.monotonic() - outage_started < 120
        state = snapshot.clusters[0]
        assert state.stale and state.raw.ok  # last good data, marked stale
        assert {g.group for g in state.lag.groups} >= {group}
        during = metrics(monitor)
        assert samples(during, "streamscope_collector_up", collector="kafka:default")[0].value == 0
        assert samples(during, "streamscope_kafka_consumergroup_lag", group=group)[0].value == 40
        health = requests.get(f"{monitor.web.url}/healthz", timeout=5).json()
        assert health["status"] == "degraded"
        assert health["collectors"][0]["up"] is False and health["collectors"][0]["error"]

        kafka_broker.start_broker()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            snapshot = monitor.run_cycle()
            state = snapshot.clusters[0]
            if state.stale:
                continue
            # Right after the restart the group coordinator may still be loading: ListGroups
            # answers COORDINATOR_LOAD_IN_PROGRESS. The group is then carried over from the last
            # cycle, never dropped (its lag must not vanish as if it were deleted), and until its
            # offsets can be fetched it is counted as failed.
            mine = [g for g in state.lag.groups if g.group == group]
            assert mine, f"the group vanished after the restart (listing complete: {state.raw.groups_complete})"
            if mine[0].error is None:
                break
            failed = samples(metrics(monitor), "streamscope_kafka_consumergroups_failed", cluster="default")
            assert failed[0].value >= 1
        assert not snapshot.clusters[0].stale, snapshot.health
        after = metrics(monitor)
        assert samples(after, "streamscope_collector_up", collector="kafka:default")[0].value == 1
        assert requests.get(f"{monitor.web.url}/healthz", timeout=5).json()["status"] == "ok"
        assert samples(after, "streamscope_kafka_consumergroup_lag", group=group)[0].value == 40
    finally:
        monitor.stop()


@pytest.mark.kafka39
def test_kafka_3_9_zookeeper_mode_lag_equals_tool(kafka39_broker, unique_name):
    bootstrap = kafka39_broker.bootstrap
    topic, group = unique_name("legacy"), unique_name("old-app")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, per_partition=20, partitions=2)
    commit(bootstrap, group, {(topic, 0): 3, (topic, 1): 17})
    raw = KafkaCollector(settings(bootstrap)).collect()
    assert raw.ok, raw.error
    oracle = {(r["topic"], r["partition"]): r["lag"] for r in describe_group(bootstrap, group, version_set="kafka39")}
    latest = {(p.topic, p.partition): p.latest_offset for t in raw.topics for p in t.partitions}
    mine = {(o.topic, o.partition): latest[(o.topic, o.partition)] - o.offset
            for g in raw.groups if g.name == group for o in g.offsets}
    assert mine == oracle == {(topic, 0): 17, (topic, 1): 3}
    assert raw.brokers and raw.controller_id is not None


def test_collector_process_abort_costs_one_cycle_not_the_server(kafka_broker, unique_name, tmp_path):
    """librdkafka can abort() the process during a cycle; the collector's child process takes the hit.

    The child is stopped and the abort left pending until the cycle has its connection, so the
    child dies during that cycle, never before it (that is the between-cycles test below)."""
    import os
    import signal

    from tests.helpers import wait_until

    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("abort"), unique_name("g")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, per_partition=5, partitions=1)
    commit(bootstrap, group, {(topic, 0): 1})
    monitor = monitor_for(bootstrap, tmp_path)
    monitor.start(serve=True, loop=False)
    try:
        monitor.run_cycle()
        collector = monitor.kafka_sources[0]._collector
        child = collector.pid
        os.kill(child, signal.SIGSTOP)
        wait_until(lambda: _status(child) == "T", 10, "the collector child to stop")
        os.kill(child, signal.SIGABRT)  # what librdkafka's failed assertion does; pending while stopped
        started = collector._ensure_started

        def resume_once_started():
            conn = started()
            os.kill(child, signal.SIGCONT)  # from here on the abort lands during the cycle
            return conn

        collector._ensure_started = resume_once_started
        snapshot = monitor.run_cycle()
        del collector._ensure_started
        assert "died during a cycle (killed by SIGABRT)" in snapshot.health[0].error, snapshot.health[0].error
        assert snapshot.clusters[0].stale and collector.last_exit.pid == child
        assert requests.get(f"{monitor.web.url}/healthz", timeout=5).json()["status"] == "degraded"
        snapshot = monitor.run_cycle()  # a fresh child process serves the next cycle
        assert snapshot.health[0].up and not snapshot.clusters[0].stale
        assert collector.restarts == 1
        assert samples(metrics(monitor), "streamscope_kafka_consumergroup_lag", group=group)[0].value == 4
    finally:
        monitor.stop()


def test_collector_child_is_one_process_that_imports_only_the_collector(kafka_broker, unique_name):
    """The isolated collector adds exactly one process (no multiprocessing resource tracker), runs
    `collectors.kafka.process` (not the parent's CLI and web stack), and gets its settings through
    its socket: nothing of them shows in its command line."""
    import os

    import psutil

    from collectors.kafka.process import IsolatedKafkaCollector

    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("lean"), unique_name("g")
    lagging_group(bootstrap, topic, group, records=3, committed=1)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    collector = IsolatedKafkaCollector(settings(bootstrap))
    try:
        raw = collector.collect()
        assert raw.ok, raw.error
        assert [o.offset for g in raw.groups if g.name == group for o in g.offsets] == [1]
        added = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        assert [p.pid for p in added] == [collector.pid]
        cmdline = added[0].cmdline()
        assert cmdline[1:3] == ["-m", "collectors.kafka.process"], cmdline
        assert not any(bootstrap in part for part in cmdline)
        # two glibc heaps for librdkafka's threads, unless the user chose otherwise
        assert added[0].environ().get("MALLOC_ARENA_MAX") == os.environ.get("MALLOC_ARENA_MAX", "2")
    finally:
        collector.close()
    assert not psutil.pid_exists(added[0].pid) or added[0].status() == psutil.STATUS_ZOMBIE


def test_collector_child_names_what_the_parent_already_holds(kafka_broker, unique_name):
    """Cycles of a still group through the child: the second snapshot names the group's positions
    and its topic's partitions instead of sending them (`collectors.kafka.wire`), and the parent
    gets the very tuples it decoded the cycle before; what it decodes equals what the child
    collected. A new child sends everything again."""
    from collectors.kafka.process import IsolatedKafkaCollector
    from collectors.kafka.signals import TopicShapes

    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("wire"), unique_name("g")
    lagging_group(bootstrap, topic, group, records=5, committed=2)
    collector = IsolatedKafkaCollector(settings(bootstrap))

    def of(raw):
        assert raw.ok, raw.error
        (g,) = [g for g in raw.groups if g.name == group]
        (t,) = [t for t in raw.topics if t.name == topic]
        return g.offsets, t.partitions

    try:
        # the child keeps a group's positions once they are read and unchanged (a cycle or two),
        # and names them once it has sent them in two cycles in a row
        raws = [collector.collect() for _ in range(5)]
        first, second = of(raws[-2]), of(raws[-1])
        assert second[0] is first[0] and second[1] is first[1]
        # and derive keeps what it made of the idle topic (its settings cross anew, equal)
        shapes = TopicShapes()
        kept = [{s.name: s for s in shapes.of(raw.topics)}[topic] for raw in raws[-2:]]
        assert kept[1] is kept[0]
        assert [(o.offset, o.readable_lag) for o in second[0]] == [(2, 3)]
        assert [p.latest_offset for p in second[1]] == [5]
        assert collector.restarts == 0
        collector.close()  # the next cycle starts a new child: everything is sent again
        third = of(collector.collect())
        assert third == second and third[0] is not second[0]
    finally:
        collector.close()


def test_run_loads_the_kafka_client_library_only_in_its_collector_child(kafka_broker, tmp_path):
    """`streamscope run` as users run it: librdkafka (confluent-kafka's extension) is mapped in the
    collector's child process, not in the parent, which only serves, evaluates and stores; and the
    parent's own libraries (numpy, pydantic) are not in the child, which unpickles its settings."""
    import json
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    import psutil

    from demo.kafka_box import free_port
    from tests.helpers import wait_until

    root = Path(__file__).resolve().parents[2]
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "clusters": [{"name": "lean", "bootstrap_servers": kafka_broker.bootstrap}],
        "history": {"path": str(tmp_path / "history.db")}, "web": {"port": port},
        "collection": {"interval_seconds": 1},
    }))
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", "--config", str(config)], cwd=root, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def cycles() -> int:
        try:
            health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
        except (requests.RequestException, ValueError):
            return 0
        return min((c["cycles_total"] for c in health["collectors"] if c["up"]), default=0)

    def maps_client_library(pid: int) -> bool:
        return "confluent_kafka" in Path(f"/proc/{pid}/maps").read_text()

    def maps_parent_libraries(pid: int) -> list[str]:
        """The parent's compiled libraries (derivation, configuration) mapped by `pid`."""
        maps = Path(f"/proc/{pid}/maps").read_text()
        return [name for name in ("numpy", "pydantic_core") if f"/{name}" in maps]

    try:
        wait_until(lambda: cycles() >= 2 or run.poll() is not None, 90, "two collection cycles")
        assert run.poll() is None, f"run exited {run.returncode}"
        children = psutil.Process(run.pid).children()
        assert len(children) == 1, [c.cmdline() for c in children]
        assert maps_client_library(children[0].pid)
        assert not maps_client_library(run.pid)
        assert maps_parent_libraries(run.pid) == ["numpy", "pydantic_core"]  # the check can see them
        assert maps_parent_libraries(children[0].pid) == []  # ~45 MB the child has no use for
        # nor the client libraries' package __init__s (collectors.kafka.bare_packages): confluent-kafka's
        # imports asyncio, whose extension the child would map
        assert "/_asyncio." not in Path(f"/proc/{children[0].pid}/maps").read_text()
    finally:
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def _status(pid: int) -> str:
    """The state letter of a process in /proc (R, S, T for stopped, Z...)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def _exited(child_pid: int) -> bool:
    """Whether our child process has exited (its status is left for its owner to collect)."""
    import os

    return os.waitid(os.P_PID, child_pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def test_collector_child_killed_between_cycles_is_restarted_and_reported(kafka_broker, unique_name, tmp_path, caplog):
    """The OOM killer (or anyone) ends the child while it waits for the next cycle: a new child
    serves that cycle, and the restart shows in the log, /healthz and the restarts counter."""
    import logging
    import os
    import signal

    from tests.helpers import wait_until

    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("restart"), unique_name("g")
    lagging_group(bootstrap, topic, group, records=5, committed=2)
    monitor = monitor_for(bootstrap, tmp_path)
    monitor.start(serve=True, loop=False)
    try:
        monitor.run_cycle()
        restarts = samples(metrics(monitor), "streamscope_collector_restarts", collector="kafka:default")
        assert {s.labels["reason"]: s.value for s in restarts if s.name.endswith("_total")} == {
            "exit": 0, "signal": 0, "timeout": 0}
        collector = monitor.kafka_sources[0]._collector
        killed = collector.pid
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: _exited(killed), 10, "the collector child to die")
        with caplog.at_level(logging.WARNING, logger="collectors.kafka.process"):
            snapshot = monitor.run_cycle()
        health = snapshot.health[0]
        assert health.up and not snapshot.clusters[0].stale  # the new child served this cycle
        assert collector.pid not in (None, killed)
        assert health.restarts_total == 1 and health.last_exit.reason == "signal"
        assert health.last_exit.exit_code == -signal.SIGKILL and health.last_exit.pid == killed
        lines = [r.getMessage() for r in caplog.records if r.name == "collectors.kafka.process"]
        assert any(f"(pid {killed}) died between cycles (killed by SIGKILL)" in line for line in lines), lines
        restarts = samples(metrics(monitor), "streamscope_collector_restarts", collector="kafka:default")
        assert {s.labels["reason"]: s.value for s in restarts if s.name.endswith("_total")} == {
            "exit": 0, "signal": 1, "timeout": 0}
        reported = requests.get(f"{monitor.web.url}/healthz", timeout=5).json()["collectors"][0]
        assert reported["restarts_total"] == 1
        assert reported["last_exit"]["message"] == "died between cycles (killed by SIGKILL)"
        assert reported["last_exit"]["exit_code"] == -9 and reported["last_exit"]["reason"] == "signal"
        assert samples(metrics(monitor), "streamscope_kafka_consumergroup_lag", group=group)[0].value == 3
    finally:
        monitor.stop()


def test_exact_time_lag_when_groups_share_a_partition_at_different_offsets(kafka_broker, unique_name):
    bootstrap = kafka_broker.bootstrap
    topic, slow, slower = unique_name("shared"), unique_name("slow"), unique_name("slower")
    create_topic(bootstrap, topic, 1)
    base_ms = int(time.time() * 1000) - 100_000
    produce(bootstrap, topic, per_partition=10, partitions=1, timestamp_ms=lambda p, i: base_ms + i * 1000)
    commit(bootstrap, slow, {(topic, 0): 8})
    commit(bootstrap, slower, {(topic, 0): 2})
    collector = KafkaCollector(settings(bootstrap))

    def exact(raw):
        return {(g.name, o.offset): o.timestamp for g in raw.groups for o in g.offsets
                if o.topic == topic and o.timestamp is not None}

    # One assignment holds a partition once: the worst group's position is read first...
    raw = collector.collect()
    assert raw.ok, raw.error
    assert exact(raw) == {(slower, 2): (base_ms + 2000) / 1000}
    # ...and remembered; the next cycle (same consumer, assigned again) reads the other one.
    raw = collector.collect()
    assert raw.ok, raw.error
    assert exact(raw) == {(slower, 2): (base_ms + 2000) / 1000, (slow, 8): (base_ms + 8000) / 1000}
    collector.close()


@pytest.mark.parametrize("limit, reopened", [(4, True), (10, False)])
def test_reading_consumer_is_replaced_once_its_topics_hold_too_many_partitions(kafka_broker, unique_name,
                                                                                monkeypatch, limit, reopened):
    """librdkafka keeps state for every partition of every topic a consumer was assigned: a reader
    whose topics hold more than the limit is closed after the cycle, one within it is kept. The
    times read are the records' own either way."""
    from collectors.kafka import positions

    monkeypatch.setattr(positions, "READER_PARTITIONS", limit)
    bootstrap = kafka_broker.bootstrap
    topics, group = [unique_name("wide"), unique_name("wider")], unique_name("reader")
    base_ms = int(time.time() * 1000) - 300_000  # record i is at base + i s
    for topic in topics:
        create_topic(bootstrap, topic, 3)
        produce(bootstrap, topic, per_partition=20, partitions=3, timestamp_ms=lambda p, i: base_ms + i * 1000)
    collector = KafkaCollector(settings(bootstrap, group_filter=lambda name: name == group))
    reader = collector._positions

    def read_times(committed: int) -> dict:
        commit(bootstrap, group, {(t, p): committed for t in topics for p in range(3)})
        raw = collector.collect()
        assert raw.ok, raw.error
        return {(o.topic, o.partition): o.timestamp for g in raw.groups for o in g.offsets}

    try:
        # two topics, 6 partitions: over a limit of 4, within one of 10
        assert read_times(5) == {(t, p): (base_ms + 5000) / 1000 for t in topics for p in range(3)}
        assert reader.readers_opened == 1
        assert bool(reader._readers) is not reopened  # closed at the end of the cycle, or kept
        # the positions move: read again, by a new consumer or the same one
        assert read_times(9) == {(t, p): (base_ms + 9000) / 1000 for t in topics for p in range(3)}
        assert reader.readers_opened == (2 if reopened else 1)
    finally:
        collector.close()


def _live_member(bootstrap: str, group: str, topic: str, protocol: str) -> Consumer:
    """A consumer that joined `group` and holds an assignment of `topic` (polled until it does)."""
    config = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "client.id": f"{protocol}-member"}
    if protocol == "consumer":
        config["group.protocol"] = "consumer"  # KIP-848
    consumer = Consumer(config)
    consumer.subscribe([topic])
    deadline = time.monotonic() + 60
    while not consumer.assignment() and time.monotonic() < deadline:
        consumer.poll(0.2)
    assert consumer.assignment(), f"{group} got no assignment"
    consumer.commit(offsets=[TopicPartition(topic, p, 3 + p) for p in range(2)], asynchronous=False)
    return consumer


def test_batched_group_requests_agree_with_one_call_per_group(kafka_broker, unique_name):
    """The batched path (kafka-python: one FindCoordinator, OffsetFetch v8 and DescribeGroups per
    coordinator) must see exactly what librdkafka's one-call-per-group path sees - classic groups
    with members, a KIP-848 group (described through librdkafka), Empty groups - in a few requests."""
    bootstrap = kafka_broker.bootstrap
    topic = unique_name("batched")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, per_partition=20, partitions=2)
    classic, new_protocol = unique_name("classic"), unique_name("kip848")
    empty = [unique_name(f"empty{i}") for i in range(30)]
    for i, group in enumerate(empty):
        commit(bootstrap, group, {(topic, 0): i % 20, (topic, 1): 19 - i % 20})
    members = [_live_member(bootstrap, classic, topic, "classic"), _live_member(bootstrap, new_protocol, topic, "consumer")]
    mine = {classic, new_protocol, *empty}
    try:
        views = {}
        for batched in (True, False):
            collector = KafkaCollector(settings(bootstrap, batched_group_requests=batched, group_filter=mine.__contains__))
            raw = collector.collect()
            assert raw.ok, raw.error
            views[batched] = ({g.name: g for g in raw.groups}, collector.batched_requests_sent,
                              [t for t in raw.topics if t.name == topic])
            collector.close()
    finally:
        for consumer in members:
            consumer.close()
    (batched_groups, batched_requests, batched_topics), (single_groups, single_requests, single_topics) = \
        views[True], views[False]
    # metadata, end offsets and settings through kafka-python (one Metadata, one ListOffsets per
    # leader) and through librdkafka agree, topic id included; sizes on disk come only from the
    # batched client (confluent-kafka has no DescribeLogDirs; docs/metrics.md)
    assert all(p.size_bytes > 0 for p in batched_topics[0].partitions)
    assert all(p.size_bytes is None for p in single_topics[0].partitions)

    def comparable(topics):
        return [replace(t, config=replace(t.config, fetched_at=0.0),
                        partitions=tuple(p._replace(size_bytes=None) for p in t.partitions)) for t in topics]

    assert comparable(batched_topics) == comparable(single_topics) and batched_topics[0].topic_id
    assert set(batched_groups) == set(single_groups) == mine
    for name in sorted(mine):
        a, b = batched_groups[name], single_groups[name]
        assert (a.state, a.protocol_type, a.coordinator, a.offsets, a.members, a.error) == \
               (b.state, b.protocol_type, b.coordinator, b.offsets, b.members, b.error), name
    assert batched_groups[classic].state == "Stable" and batched_groups[classic].protocol_type == "consumer"
    assert [m.assignment for m in batched_groups[classic].members] == [((topic, 0), (topic, 1))]
    assert batched_groups[new_protocol].state == "Stable" and len(batched_groups[new_protocol].members) == 1
    assert batched_groups[empty[7]].state == "Empty" and batched_groups[empty[7]].protocol_type == "simple"
    assert [(o.partition, o.offset) for o in batched_groups[empty[7]].offsets] == [(0, 7), (1, 12)]
    assert [(o.partition, o.offset) for o in batched_groups[classic].offsets] == [(0, 3), (1, 4)]
    # 32 groups: a few batched requests (bootstrap metadata, versions, FindCoordinator, OffsetFetch,
    # DescribeGroups, DescribeQuorum for the active controller, and on a first cycle DescribeConfigs
    # and DescribeLogDirs), not one or more per group; the librdkafka path sends none through it
    assert 0 < batched_requests <= 11, batched_requests
    assert single_requests == 0


@pytest.mark.parametrize("batched", [True, False])
def test_empty_groups_are_described_again_only_when_they_get_members(kafka_broker, unique_name, batched):
    """ListGroups gives each group's state: a group described Empty and still listed Empty is not
    described again (it has no members); once a consumer joins it is, and when it leaves the group
    is Empty with no members again."""
    bootstrap = kafka_broker.bootstrap
    topic, group, other = unique_name("quiet"), unique_name("quiet-group"), unique_name("quiet-other")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, per_partition=10, partitions=2)
    for g in (group, other):
        commit(bootstrap, g, {(topic, 0): 1, (topic, 1): 2})
    collector = KafkaCollector(settings(bootstrap, batched_group_requests=batched,
                                        group_filter={group, other}.__contains__))
    described: list[list[str]] = []
    if batched:
        client = collector._batched_requests()
        original = client.describe
        client.describe = lambda names: (described.append(list(names)), original(names))[1]
    else:
        original = collector._submit_describe
        collector._submit_describe = lambda admin, names: (described.append(list(names)), original(admin, names))[1]

    def cycle():
        raw = collector.collect()
        assert raw.ok, raw.error
        return {g.name: g for g in raw.groups}

    try:
        first = cycle()
        assert first[group].state == "Empty" and first[group].members == ()
        assert sorted(described[-1]) == sorted([group, other])
        second = cycle()
        assert described[-1] == [] or not (set(described[-1]) & {group, other}), described[-1]
        assert (second[group].state, second[group].protocol_type, second[group].members) == \
               (first[group].state, first[group].protocol_type, ())
        member = _live_member(bootstrap, group, topic, "classic")
        try:
            joined = cycle()
            assert group in described[-1] and other not in described[-1]
            assert joined[group].state == "Stable" and [m.client_id for m in joined[group].members] == ["classic-member"]
        finally:
            member.close()
        left = cycle()
        assert left[group].state == "Empty" and left[group].members == ()
        assert [(o.partition, o.offset) for o in left[group].offsets] == [(0, 3), (1, 4)]
    finally:
        collector.close()


def test_cluster_metadata_is_decoded_again_only_when_the_broker_answers_differently(kafka_broker, unique_name):
    """A steady cluster's metadata answer is the previous one byte for byte: its ClusterInfo is
    reused, not decoded again (collectors.kafka.metadata_answers). A new topic, more partitions, a
    topic deleted and created again (a new topic id) each change the answer and are seen at once."""
    from confluent_kafka.admin import NewPartitions

    from collectors.kafka.group_requests import BatchedGroupRequests

    bootstrap = kafka_broker.bootstrap
    topic, other = unique_name("steady"), unique_name("new")
    create_topic(bootstrap, topic, 2)
    batched = BatchedGroupRequests(bootstrap, {}, 10.0, client_id="test-metadata")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        def settled_metadata(check):
            """The metadata once `check` holds (a change reaches the broker's metadata asynchronously)."""
            deadline = time.monotonic() + 30
            while True:
                info = batched.metadata()
                if check(info) or time.monotonic() > deadline:
                    return info
                time.sleep(0.2)

        first = settled_metadata(lambda info: topic in info.topics)
        answers = batched.metadata_answers
        decoded = answers.decoded
        again = batched.metadata()
        assert again is first and answers.decoded == decoded and answers.unchanged >= 1
        assert sorted(again.topics[topic].partitions) == [0, 1] and again.topics[topic].topic_id

        create_topic(bootstrap, other, 1)
        with_other = settled_metadata(lambda info: other in info.topics)
        assert other in with_other.topics and answers.decoded > decoded

        admin.create_partitions([NewPartitions(topic, 3)])[topic].result(30)
        grown = settled_metadata(lambda info: len(info.topics[topic].partitions) == 3)
        assert sorted(grown.topics[topic].partitions) == [0, 1, 2]

        old_id = grown.topics[topic].topic_id
        admin.delete_topics([topic])[topic].result(30)
        settled_metadata(lambda info: topic not in info.topics)
        create_topic(bootstrap, topic, 1)
        recreated = settled_metadata(lambda info: topic in info.topics and info.topics[topic].topic_id != old_id)
        assert recreated.topics[topic].topic_id not in (None, old_id)
        assert sorted(recreated.topics[topic].partitions) == [0]
    finally:
        batched.close()


def test_batched_topic_settings_agree_with_librdkafka(kafka_broker, unique_name):
    """The batched path reads DescribeConfigs answers itself (collectors.kafka.group_requests):
    every setting streamscope reasons about, defaults and overrides, must be what librdkafka's
    describe_configs (the fallback path, another client) reports; a topic that does not exist is
    left out, and named with its error."""
    from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType

    from collectors.kafka.group_requests import BatchedGroupRequests
    from collectors.kafka.topic_configs import CONFIG_KEYS

    bootstrap = kafka_broker.bootstrap
    plain, tuned, missing = unique_name("plain"), unique_name("tuned"), unique_name("missing")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    create_topic(bootstrap, plain, 1)
    admin.create_topics([NewTopic(tuned, 2, 1, config={
        "cleanup.policy": "compact,delete", "retention.ms": "123456789", "retention.bytes": "987654321",
        "min.insync.replicas": "1"})])[tuned].result(30)
    names = [plain, tuned]
    batched = BatchedGroupRequests(bootstrap, {}, 10.0, client_id="test-topic-settings")
    try:
        deadline = time.monotonic() + 30
        while True:  # a new topic's settings reach every broker asynchronously
            ours, refused = batched.topic_configs([*names, missing], CONFIG_KEYS)
            if set(ours) == set(names) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names], request_timeout=10)
        theirs = {resource.name: {key: entries[key].value for key in CONFIG_KEYS if key in entries}
                  for resource, entries in ((r, f.result(10)) for r, f in futures.items())}
    finally:
        batched.close()
    assert ours == theirs
    assert refused == {missing: "UnknownTopicOrPartitionError"}  # named, not taken for settings
    assert ours[tuned] == {"cleanup.policy": "compact,delete", "retention.ms": "123456789",
                           "retention.bytes": "987654321", "min.insync.replicas": "1"}
    assert set(ours[plain]) == set(CONFIG_KEYS) and ours[plain]["cleanup.policy"] == "delete"


def test_committed_offsets_read_again_only_for_groups_whose_answer_changed(kafka_broker, unique_name):
    """OffsetFetch answers of the batched path are read against the previous answer to the same
    request (collectors.kafka.answer_decoding, rule 6): a group that committed nothing new keeps
    the very offsets read before; one that committed, however little, has its new offsets, as
    `kafka-consumer-groups` shows them."""
    from collectors.kafka.group_requests import BatchedGroupRequests

    bootstrap = kafka_broker.bootstrap
    topic = unique_name("kept")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, per_partition=30, partitions=3)
    still, moving = unique_name("still"), unique_name("moving")
    commit(bootstrap, still, {(topic, 0): 5, (topic, 1): 6, (topic, 2): 7})
    commit(bootstrap, moving, {(topic, 0): 5, (topic, 1): 6, (topic, 2): 7})
    batched = BatchedGroupRequests(bootstrap, {}, 10.0, client_id="test-kept-offsets")
    try:
        first = batched.committed_offsets([still, moving]).offsets
        commit(bootstrap, moving, {(topic, 1): 9})
        commit(bootstrap, still, {(topic, 2): 7})  # committed again, the same offset
        second = batched.committed_offsets([still, moving]).offsets
    finally:
        batched.close()
    assert second[still] is first[still]
    tool = {(r["partition"]): r["current_offset"] for r in describe_group(bootstrap, moving)}
    assert {o.partition: o.offset for o in second[moving]} == tool == {0: 5, 1: 9, 2: 7}
    assert {o.partition: o.offset for o in first[moving]} == {0: 5, 1: 6, 2: 7}
