"""Several real Apache Kafka 4.x nodes (KRaft, each broker and controller) on 127.0.0.1: a cluster
with replication, partition leaders and group coordinators spread over brokers, for the tests
that a single broker cannot prove (per-leader and per-coordinator requests, under-replicated
partitions, a broker leaving and coming back).

    with KafkaCluster(nodes=3) as cluster:
        cluster.bootstrap                  # "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
        cluster.stop_node(2)               # controlled shutdown of node 3 (index 2)
        cluster.start_node(2)              # back, same port and data

Each node is a `KafkaBox` (same jars, logs, start-up checks and exit safety net) with its node
id, the shared controller quorum and cluster id, and replication factors for internal topics
that span the cluster.
"""
from __future__ import annotations

import sys
from typing import Any, Mapping

from demo.kafka_box import (DEFAULT_JVM_OPTIONS, DEFAULT_READY_TIMEOUT_SECONDS, KafkaBox, KafkaBoxError, free_port,
                            random_cluster_id)


class KafkaCluster:
    def __init__(self, nodes: int = 3, *, broker_config: Mapping[str, Any] | None = None,
                 ready_timeout: float = DEFAULT_READY_TIMEOUT_SECONDS * 2,
                 jvm_options: tuple[str, ...] | list[str] = DEFAULT_JVM_OPTIONS) -> None:
        if nodes < 2:
            raise ValueError("a cluster has at least 2 nodes; use KafkaBox for one")
        ports = [(free_port(), free_port()) for _ in range(nodes)]  # (PLAINTEXT, CONTROLLER)
        voters = ",".join(f"{i + 1}@127.0.0.1:{controller}" for i, (_, controller) in enumerate(ports))
        replication = min(3, nodes)
        shared = {
            "controller.quorum.voters": voters,
            "offsets.topic.replication.factor": replication,
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": max(1, replication - 1),
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": max(1, replication - 1),
            "default.replication.factor": replication,
            # a stopped node is fenced and leaves the ISRs within seconds, not the default 9 s
            "broker.session.timeout.ms": 3000,
            "broker.heartbeat.interval.ms": 500,
            **(broker_config or {}),
        }
        cluster_id = random_cluster_id()
        self.nodes: list[KafkaBox] = []
        for i, (port, controller) in enumerate(ports):
            node = KafkaBox(port=port, broker_config={**shared, "node.id": i + 1}, ready_timeout=ready_timeout,
                            jvm_options=jvm_options)
            node.controller_port = controller
            node.cluster_id = cluster_id
            self.nodes.append(node)

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    def start(self) -> "KafkaCluster":
        """Launch every node, then wait until each is ready (the quorum needs a majority first)."""
        try:
            for node in self.nodes:
                node.launch_broker()
            for node in self.nodes:
                node.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    @classmethod
    def started(cls, nodes: int = 3, *, attempts: int = 2, **kwargs: Any) -> "KafkaCluster":
        """A started cluster; a start that fails is tried again on fresh ports and data, up to
        `attempts` times. The ports are picked free before the nodes bind them: another process
        can take one meanwhile, and a node that cannot bind never registers (the others then
        wait out their timeout for a quorum of brokers)."""
        for attempt in range(1, attempts + 1):
            cluster = cls(nodes, **kwargs)
            try:
                return cluster.start()
            except KafkaBoxError as error:
                if attempt == attempts:
                    raise
                print(f"KafkaCluster: start {attempt} of {attempts} failed, trying fresh ports: {error}",
                      file=sys.stderr)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop every node and remove its data. SIGKILL: once a majority is gone the last nodes
        cannot finish a controlled shutdown (no quorum) and would each wait out its timeout."""
        for node in self.nodes:
            node.stop_broker(hard=True)
        for node in self.nodes:
            node.stop()

    def stop_node(self, index: int, *, hard: bool = False) -> None:
        """Stop one node: controlled shutdown (leaders move first), or `hard` = SIGKILL."""
        self.nodes[index].stop_broker(hard=hard)

    def start_node(self, index: int) -> None:
        """Start a stopped node again on its port and data; returns when it serves its topics."""
        self.nodes[index].start_broker()

    def __enter__(self) -> "KafkaCluster":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KafkaCluster(nodes={len(self.nodes)}, bootstrap={self.bootstrap!r})"
