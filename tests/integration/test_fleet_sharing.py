"""Two replicas of a fleet in one process on the real broker: Kafka shares the groups between
them, each exports only its own (with its `instance` label), cluster-wide series come from one
of them, and when one stops the other continues its groups from the windows it handed over."""
from __future__ import annotations

import time

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.app.config import load_config
from monitor.app.root import Monitor
from tests.helpers import wait_until
from tests.kafka_helpers import commit, create_topic, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

GROUPS = 30


def replica(bootstrap: str, prefix: str, tmp_path, name: str) -> Monitor:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "shared", "bootstrap_servers": bootstrap, "groups": {"allow": [f"{prefix}-.*"]},
                      "topics": {"allow": [f"{prefix}-.*"]}}],
        "collection": {"interval_seconds": 1},
        "history": {"path": str(tmp_path / f"{name}.db")},
        "web": {"port": 0},
        "fleet": {"name": prefix, "partitions": 8, "session_timeout_seconds": 6, "state_interval_seconds": 1,
                  "instance": name},
    }))
    return Monitor(load_config(path, environ={}))


def exported(monitor: Monitor) -> dict[str, set]:
    text = requests.get(f"{monitor.web.url}/metrics", timeout=10).text
    out: dict[str, set] = {"groups": set(), "instances": set(), "brokers": set(), "topics": set()}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out["instances"].add(sample.labels.get("instance"))
            if family.name == "streamscope_kafka_consumergroup_members":
                out["groups"].add(sample.labels["group"])
            elif family.name == "streamscope_kafka_brokers":
                out["brokers"].add(sample.labels["cluster"])
            elif family.name == "streamscope_kafka_topic_partitions":
                out["topics"].add(sample.labels["topic"])
    return out


def test_two_replicas_share_the_groups_and_hand_them_over(kafka_broker, unique_name, tmp_path):
    prefix = unique_name("fleet")
    topic = f"{prefix}-t"
    create_topic(kafka_broker.bootstrap, topic, 2)
    produce(kafka_broker.bootstrap, topic, per_partition=40, partitions=2)
    groups = {f"{prefix}-g{i:02d}" for i in range(GROUPS)}
    for i, group in enumerate(sorted(groups)):
        commit(kafka_broker.bootstrap, group, {(topic, 0): i, (topic, 1): i})

    one = replica(kafka_broker.bootstrap, prefix, tmp_path, "one").start()
    two = None
    try:
        two = replica(kafka_broker.bootstrap, prefix, tmp_path, "two").start()

        def shared():
            a, b = exported(one), exported(two)
            return (a["groups"] | b["groups"] == groups and not a["groups"] & b["groups"]
                    and a["groups"] and b["groups"]) and (a, b)
        a, b = wait_until(shared, 120, "the groups shared, each exported once")
        assert a["instances"] == {"one"} and b["instances"] == {"two"}
        assert len(a["brokers"] | b["brokers"]) == 1 and bool(a["brokers"]) != bool(b["brokers"])
        assert (a["topics"] or b["topics"]) == {topic} and not (a["topics"] and b["topics"])

        moved = b["groups"]
        time.sleep(2.5)  # a few cycles of windows written by two
        handed_over_at = time.time()
        two.stop()
        two = None
        wait_until(lambda: exported(one)["groups"] == groups, 60, "one to export every group")
        windows = one.kafka_sources[0].windows
        for group in moved:
            series = windows.committed_series(group, topic, 0)
            assert series and series[0].at < handed_over_at - 1, f"{group}: windows did not continue"
        assert one.fleet.takeovers >= len(moved)
    finally:
        if two is not None:
            two.stop()
        one.stop()
