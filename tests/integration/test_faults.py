"""A monitor never fails silently: a full history disk, and one hung cluster among healthy ones.

Real broker(s), a real filesystem filled to the last byte (a tmpfs, as root), SIGSTOP.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import time

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.root import Monitor
from monitor.app.config import Config
from tests.helpers import wait_until
from tests.kafka_helpers import commit, create_topic, lagging_group, produce

pytestmark = pytest.mark.integration


def _value(monitor: Monitor, name: str, **labels) -> float | None:
    text = requests.get(f"{monitor.web.url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def _healthz(monitor: Monitor) -> dict:
    return requests.get(f"{monitor.web.url}/healthz", timeout=5).json()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB filesystem of its own (tmpfs), so it can really be filled. Root only."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI"):
            pytest.fail("mounting a tmpfs needs root and mount(8) (CI is set, so this fails)")
        pytest.skip("mounting a tmpfs needs root and mount(8) (skipped outside CI)")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(mountpoint) -> None:
    """Write zeros until the filesystem has no byte left (unbuffered: every write is the disk's)."""
    fd = os.open(mountpoint / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_full_history_disk_collection_and_alerts_go_on_and_heal(kafka_broker, unique_name, tmp_path, small_disk,
                                                                   caplog):
    bootstrap = kafka_broker.bootstrap
    topic, group = unique_name("disk-full"), unique_name("reader")
    lagging_group(bootstrap, topic, group, records=10, committed=4)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"rules": [
        {"name": "HistoryDown", "kind": "history_down", "for": "0s"},
        {"name": "Lag", "kind": "consumer_lag_messages", "threshold": 7, "for": "0s", "matchers": [f'topic="{topic}"']},
    ]}))
    config = Config.model_validate({
        "clusters": [{"name": "default", "bootstrap_servers": bootstrap}],
        "history": {"path": str(small_disk / "history.db")},
        "web": {"port": 0},
        "collection": {"interval_seconds": 1, "isolate_process": False},
        # the alert store lives elsewhere: this test is about the history store
        "alerting": {"include_default_rules": False, "rules_files": [str(rules)],
                     "store_path": str(tmp_path / "alerts.db")},
    })
    monitor = Monitor(config).start(serve=True, loop=False)
    try:
        monitor.run_cycle()
        assert _value(monitor, "streamscope_history_up") == 1
        _fill(small_disk)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="monitor.storage"):
            produce(bootstrap, topic, per_partition=5, partitions=1)  # lag 6 -> 11: the Lag alert fires
            for _ in range(3):
                snapshot = monitor.run_cycle()
                assert not snapshot.clusters[0].stale and snapshot.health[0].up  # collection goes on
        assert _value(monitor, "streamscope_history_up") == 0
        assert _value(monitor, "streamscope_history_write_failures_total") >= 3
        assert _value(monitor, "streamscope_kafka_consumergroup_lag", group=group, topic=topic) == 11
        health = _healthz(monitor)
        assert health["status"] == "degraded"
        assert health["history"]["up"] is False and "full" in health["history"]["error"]
        firing = {a["alertname"] for a in monitor.alerting.list_alerts("firing")}
        assert firing == {"HistoryDown", "Lag"}  # evaluation went on, and says what is wrong
        tracebacks = [r for r in caplog.records if r.exc_info]
        assert len(tracebacks) == 1, [r.getMessage() for r in caplog.records]  # one, not one per cycle
        (small_disk / "filler").unlink()
        monitor.run_cycle()
        assert _value(monitor, "streamscope_history_up") == 1
        assert _healthz(monitor)["history"]["up"] is True
        assert "HistoryDown" not in {a["alertname"] for a in monitor.alerting.list_alerts("firing")}
        assert monitor.history.kafka.groups_latest("default")  # stored again
    finally:
        monitor.stop()


def test_a_hung_cluster_is_stale_alone(kafka_broker, kafka_box_factory, unique_name, tmp_path):
    """Two clusters, one broker SIGSTOPped: the healthy cluster keeps publishing every cycle."""
    frozen = kafka_box_factory()
    for box in (kafka_broker, frozen):
        topic = unique_name("t")
        create_topic(box.bootstrap, topic, 1)
        produce(box.bootstrap, topic, per_partition=3, partitions=1)
        commit(box.bootstrap, unique_name("g"), {(topic, 0): 1})
    config = Config.model_validate({
        "clusters": [{"name": "healthy", "bootstrap_servers": kafka_broker.bootstrap, "request_timeout_seconds": 2},
                     # a cycle against the frozen broker hangs until its 10 s timeouts
                     {"name": "frozen", "bootstrap_servers": frozen.bootstrap, "request_timeout_seconds": 10}],
        "history": {"path": str(tmp_path / "history.db")},
        "web": {"port": 0},
        "collection": {"interval_seconds": 1, "stale_after_seconds": 4},
    })
    monitor = Monitor(config).start(serve=True, loop=True)

    def collector(health: dict, name: str) -> dict:
        return next(c for c in health["collectors"] if c["name"] == f"kafka:{name}")

    try:
        wait_until(lambda: all(c["up"] and not c["stale"] for c in _healthz(monitor)["collectors"])
                   and len(_healthz(monitor)["collectors"]) == 2, 60, "both clusters up")
        os.kill(frozen.broker_pid, signal.SIGSTOP)
        try:
            ages = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                health = _healthz(monitor)
                ages.append(collector(health, "healthy")["age_seconds"])
                time.sleep(0.5)
            frozen_health = collector(_healthz(monitor), "frozen")
        finally:
            os.kill(frozen.broker_pid, signal.SIGCONT)
        # the healthy cluster published every cycle (1 s, plus its own collection time); waiting
        # for the frozen one would have let it age to its 10 s timeout
        assert max(ages) < 4.0, ages
        assert frozen_health["stale"] is True and _healthz(monitor)["status"] == "degraded"
        wait_until(lambda: not collector(_healthz(monitor), "frozen")["stale"], 90, "the frozen cluster recovers")
    finally:
        monitor.stop()
