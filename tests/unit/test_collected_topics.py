"""KafkaCollector._collected_topics: the topics a cycle collects, and their partitions ordered by
leader. The metadata is a table.

Rule 1 - every topic of the metadata the filter keeps is collected (internal ones when asked),
         with its partitions, while a passing error leaves them listed.
Rule 2 - a topic some group committed on is collected, whatever the filter: its lag must be known.
Rule 3 - a topic a group committed on that the metadata does not have (deleted) is not.
"""
from __future__ import annotations

from collectors.kafka.cluster import ClusterInfo, PartitionInfo, TopicInfo
from collectors.kafka.collector import KafkaCollector
from collectors.kafka.settings import KafkaCollectorSettings
from collectors.models import CommittedOffset


def topic(*leaders: int, error: str | None = None) -> TopicInfo:
    return TopicInfo({p: PartitionInfo(leader, (leader,), (leader,)) for p, leader in enumerate(leaders)}, error=error)


INFO = ClusterInfo(brokers=(), controller_id=1, topics={
    "orders": topic(2, 1), "audit": topic(1), "__consumer_offsets": topic(1),
    "starting": topic(error="LEADER_NOT_AVAILABLE"), "moving": topic(2, error="LEADER_NOT_AVAILABLE")})


def collected(committed: dict, **settings):
    c = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1", **settings))
    return c._collected_topics(INFO, committed)


def test_rule_1_the_kept_topics_of_the_metadata_by_leader():
    got = collected({})
    assert got.topic_names == {"orders", "audit", "moving"}
    assert got.partitions == [("audit", 0), ("orders", 1), ("moving", 0), ("orders", 0)]
    assert got.by_leader == {1: [("audit", 0), ("orders", 1)], 2: [("moving", 0), ("orders", 0)]}
    assert collected({}, include_internal_topics=True).topic_names == {"orders", "audit", "moving", "__consumer_offsets"}


def test_rule_2_and_3_topics_committed_on_are_collected_if_they_exist():
    committed = {"g": (CommittedOffset("audit", 0, 1), CommittedOffset("deleted", 0, 5)),
                 "h": (CommittedOffset("__consumer_offsets", 0, 3),)}
    got = collected(committed, topic_filter=lambda name: name == "orders")
    assert got.topic_names == {"orders", "audit", "__consumer_offsets"}
    assert ("deleted", 0) not in got.partitions
