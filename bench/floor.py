"""The protocol's floor for one collection cycle: only the requests a cycle cannot do without.

One kafka-python client sends, per cycle: Metadata (all topics), ListGroups, one batched
FindCoordinator, one OffsetFetch per coordinator for all groups (v8, KIP-709), one DescribeGroups
per coordinator, and one ListOffsets per partition leader for the latest offsets (plus one for
the earliest, which move only with retention). Nothing is derived, stored or read beyond that:
the time and CPU it takes is what any collector built on the same decoding library must spend at
least. Benchmarks print their ratio to it (`bench_kafka.py` does).

    python bench/floor.py --bootstrap 127.0.0.1:9092 --groups 'bench-group-.*' --cycles 5

Two floors are measured. The **decode-only floor** (`Floor`, the one ratios are taken against)
sends those requests through kafka-python and decodes the answers, and converts nothing: no dict
per partition, no TopicPartition, no OffsetAndMetadata. The ListOffsets requests are built once
(a collector can keep them), encoded on every send. The **admin-API floor** (`AdminApiFloor`)
makes the same requests through kafka-python's public admin calls, which convert every answer
to dicts and named objects: what a collector written against that API spends.
"""
from __future__ import annotations

import argparse
import re
import resource
import time
from dataclasses import dataclass

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.protocol.consumer.offsets import ListOffsetsRequest
from kafka.protocol.metadata import MetadataRequest
from kafka.metrics.measurable_stat import AbstractMeasurableStat


@dataclass(frozen=True)
class FloorCycle:
    wall: float
    cpu: float
    requests: int
    topics: int
    partitions: int
    groups: int


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _DecodeOnlyAdmin(KafkaAdminClient):
    """The admin client's coordinator lookup and batching, without turning answers into objects."""

    def _list_group_offsets_process_response(self, response, group_id=None):
        return {}

    def _describe_groups_process_response(self, response):
        return {}


class AdminApiFloor:
    """The floor's requests through kafka-python's public admin calls (answers converted)."""

    admin_class = KafkaAdminClient

    def __init__(self, bootstrap: str, group_pattern: str = ".*", topic_pattern: str = ".*"):
        self._admin = self.admin_class(bootstrap_servers=bootstrap, request_timeout_ms=60_000,
                                       client_id="streamscope-floor")
        self._groups = re.compile(group_pattern)
        self._topics = re.compile(topic_pattern)
        self._sent = 0
        counter = self

        class _Count(AbstractMeasurableStat):
            def record(self, config, value, time_ms):
                counter._sent += 1

            def measure(self, config, now):
                return counter._sent

        sensor = self._admin._metrics.sensor("request-latency")
        sensor.add(self._admin._metrics.metric_name("floor-requests", "admin-metrics", "requests"), _Count())

    def cycle(self, *, earliest: bool = False) -> FloorCycle:
        sent, wall, cpu = self._sent, time.perf_counter(), _cpu()
        topics = [t for t in self._admin.describe_topics() if self._topics.fullmatch(t["name"])]
        groups = sorted(g["group_id"] for g in self._admin.list_groups() if self._groups.fullmatch(g["group_id"]))
        self._admin.list_group_offsets(groups)
        self._admin.describe_groups(groups)
        partitions = [TopicPartition(t["name"], p["partition_index"]) for t in topics for p in t["partitions"]]
        self._admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions})
        if earliest:
            self._admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions})
        return FloorCycle(time.perf_counter() - wall, _cpu() - cpu, self._sent - sent, len(topics),
                          len(partitions), len(groups))

    def close(self) -> None:
        self._admin.close()


class Floor(AdminApiFloor):
    """The decode-only floor: the same requests, answers decoded and nothing more."""

    admin_class = _DecodeOnlyAdmin

    def __init__(self, bootstrap: str, group_pattern: str = ".*", topic_pattern: str = ".*"):
        super().__init__(bootstrap, group_pattern, topic_pattern)
        self._offset_requests: dict[OffsetSpec, tuple[tuple, dict[int, ListOffsetsRequest]]] = {}

    def _send(self, request, node_id=None):
        manager = self._admin._manager
        return manager.run(manager.send, request, node_id)

    def cycle(self, *, earliest: bool = False) -> FloorCycle:
        sent, wall, cpu = self._sent, time.perf_counter(), _cpu()
        metadata = self._send(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                              include_cluster_authorized_operations=False,
                                              include_topic_authorized_operations=False))
        # (topic, partition ids, their leaders): what the ListOffsets requests need, read once
        topics = [(t.name, [(p.partition_index, p.leader_id) for p in t.partitions])
                  for t in metadata.topics if self._topics.fullmatch(t.name)]
        groups = sorted(g["group_id"] for g in self._admin.list_groups() if self._groups.fullmatch(g["group_id"]))
        self._admin.list_group_offsets(groups)
        self._admin.describe_groups(groups)
        specs = (OffsetSpec.LATEST, OffsetSpec.EARLIEST) if earliest else (OffsetSpec.LATEST,)
        for spec in specs:
            for leader, request in self._requests(topics, spec).items():
                self._send(request, leader)
        return FloorCycle(time.perf_counter() - wall, _cpu() - cpu, self._sent - sent, len(topics),
                          sum(len(parts) for _name, parts in topics), len(groups))

    def _requests(self, topics, spec) -> dict[int, ListOffsetsRequest]:
        """One ListOffsets request per leader, built again only when the topics' layout changes."""
        layout = tuple((name, tuple(parts)) for name, parts in topics)
        known = self._offset_requests.get(spec)
        if known is None or known[0] != layout:
            by_leader: dict[int, dict[str, list]] = {}
            partition_type = ListOffsetsRequest.ListOffsetsTopic.ListOffsetsPartition
            for name, parts in topics:
                for pid, leader in parts:
                    by_leader.setdefault(leader, {}).setdefault(name, []).append(
                        partition_type(partition_index=pid, timestamp=int(spec)))
            requests = {leader: ListOffsetsRequest(isolation_level=0, topics=[
                            ListOffsetsRequest.ListOffsetsTopic(name=name, partitions=parts)
                            for name, parts in by_topic.items()])
                        for leader, by_topic in by_leader.items() if leader >= 0}
            known = self._offset_requests[spec] = (layout, requests)
        return known[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--groups", default=".*", help="regex of the groups to collect")
    parser.add_argument("--topics", default=".*", help="regex of the topics to collect")
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    for kind in (Floor, AdminApiFloor):
        floor = kind(args.bootstrap, args.groups, args.topics)
        try:
            floor.cycle()  # connections, versions, metadata caches
            print(kind.__doc__.splitlines()[0])
            print(f"{'cycle':>5} {'wall s':>7} {'cpu s':>6} {'requests':>8} {'topics':>6} {'partitions':>10} {'groups':>6}")
            for i in range(args.cycles):
                c = floor.cycle()
                print(f"{i:>5} {c.wall:>7.3f} {c.cpu:>6.3f} {c.requests:>8} {c.topics:>6} {c.partitions:>10} {c.groups:>6}")
        finally:
            floor.close()


if __name__ == "__main__":
    main()
