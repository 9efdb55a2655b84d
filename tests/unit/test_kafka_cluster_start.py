"""`KafkaCluster.started`: a failed start is tried again on fresh ports, up to `attempts` times."""
from __future__ import annotations

import pytest

from demo.kafka_box import KafkaBoxError
from demo.kafka_cluster import KafkaCluster


def test_a_failed_start_is_tried_again_on_fresh_ports(monkeypatch):
    tried = []

    def start(self):
        tried.append(tuple(node.controller_port for node in self.nodes))
        if len(tried) == 1:
            raise KafkaBoxError("a node did not register")
        return self

    monkeypatch.setattr(KafkaCluster, "start", start)
    cluster = KafkaCluster.started(nodes=3)
    assert len(tried) == 2 and tried[0] != tried[1]
    assert tuple(node.controller_port for node in cluster.nodes) == tried[1]


def test_the_last_failure_is_raised(monkeypatch):
    def start(self):
        raise KafkaBoxError("no quorum")

    monkeypatch.setattr(KafkaCluster, "start", start)
    with pytest.raises(KafkaBoxError, match="no quorum"):
        KafkaCluster.started(nodes=2, attempts=2)
