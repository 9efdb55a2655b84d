"""The benchmark's protocol floors (bench/floor.py) against a real broker: both send the cycle's
requests and see the same cluster, and the decode-only one converts nothing (it is the floor the
collector benchmark divides by, so it must count what the admin-API floor counts)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings
from tests.kafka_helpers import commit, create_topic, produce

pytestmark = pytest.mark.integration

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from floor import AdminApiFloor, Floor  # noqa: E402


def test_both_floors_see_the_same_cluster_with_the_same_requests(kafka_broker, unique_name):
    bootstrap = kafka_broker.bootstrap
    topics = [unique_name(f"t{i}") for i in range(3)]
    for topic in topics:
        create_topic(bootstrap, topic, 4)
        produce(bootstrap, topic, per_partition=3, partitions=4)
    groups = [unique_name(f"g{i}") for i in range(5)]
    for i, group in enumerate(groups):
        commit(bootstrap, group, {(topics[i % 3], p): 1 for p in range(4)})
    cycles = []
    for kind in (Floor, AdminApiFloor):
        floor = kind(bootstrap, f"{unique_name}-g.*", f"{unique_name}-t.*")
        try:
            floor.cycle()  # connections and versions
            cycles.append(floor.cycle(earliest=True))
        finally:
            floor.close()
    decode_only, admin_api = cycles
    assert (decode_only.topics, decode_only.partitions, decode_only.groups) == (3, 12, 5)
    assert (admin_api.topics, admin_api.partitions, admin_api.groups) == (3, 12, 5)
    # Metadata, ListGroups, OffsetFetch, DescribeGroups, ListOffsets latest + earliest (one
    # broker), and FindCoordinator when the client asks it again; the admin calls may add
    # lookups of their own, never fewer requests
    assert 6 <= decode_only.requests <= 7 and admin_api.requests >= decode_only.requests
    assert decode_only.cpu > 0 and decode_only.wall > 0


def test_reused_offset_requests_answer_like_fresh_ones(kafka_broker, unique_name):
    """The collector sends the same ListOffsets request again while a leader's partitions do not
    change: after records arrive, the reused request's answer is the new end offsets."""
    bootstrap = kafka_broker.bootstrap
    topic = unique_name("t")
    create_topic(bootstrap, topic, 3)
    produce(bootstrap, topic, per_partition=2, partitions=3)
    collector = KafkaCollector(KafkaCollectorSettings(
        cluster="floor", bootstrap_servers=bootstrap, request_timeout=10,
        group_filter=lambda n: False, topic_filter=lambda n: n == topic))
    try:
        def end_offsets():
            raw = collector.collect()
            assert raw.ok, raw.error
            return [p.latest_offset for t in raw.topics for p in t.partitions]

        assert end_offsets() == [2, 2, 2]
        produce(bootstrap, topic, per_partition=5, partitions=3)
        assert end_offsets() == [7, 7, 7]
        assert len(collector._batched._offset_requests) >= 1  # the request was kept and sent again
    finally:
        collector.close()
