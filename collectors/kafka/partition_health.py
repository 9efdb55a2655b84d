"""Partition health from the metadata and the topic's settings (kafka_exporter's coverage, plus
min.insync.replicas). Pure; the exporter, the alert kinds and the pages all ask here."""
from __future__ import annotations

from collections.abc import Callable

from collectors.models import ClusterState, PartitionMetadata, Topic


def min_insync_replicas(topic: Topic) -> int | None:
    return topic.config.min_insync_replicas if topic.config is not None else None


def preferred_leader(p: PartitionMetadata) -> bool:
    """The leader is the first replica of the assignment, where a preferred-leader election
    puts it: False while leadership has moved away (a broker restarted, say)."""
    return bool(p.replicas) and p.leader >= 0 and p.leader == p.replicas[0]


def under_min_isr(p: PartitionMetadata, min_isr: int | None) -> bool | None:
    """Fewer in-sync replicas than min.insync.replicas: producers with acks=all get
    NOT_ENOUGH_REPLICAS and write nothing. None when min.insync.replicas is not known.
    A partition without a leader is offline, not under min ISR: nothing can be written to it at
    all, it is counted (and alerted on) as offline, and Kafka's own UnderMinIsrPartitionCount is
    counted by leaders."""
    if min_isr is None:
        return None
    return p.leader >= 0 and len(p.isr) < min_isr


def topic_under_min_isr(topic: Topic) -> int | None:
    """Partitions of `topic` under min ISR; None when its min.insync.replicas is not known."""
    min_isr = min_insync_replicas(topic)
    if min_isr is None:
        return None
    return sum(1 for p in topic.partitions if under_min_isr(p, min_isr))


def replication_factor(topic: Topic) -> int:
    """Replicas of the topic's partitions (the largest, while a reassignment changes it)."""
    return max((len(p.replicas) for p in topic.partitions), default=0)


def topic_counts(state: ClusterState, field: str, count: Callable[[Topic], int | None]) -> dict[str, int | None]:
    """A count per topic of a cluster: derive's, counted once a cycle (the `TopicRates` field
    `field`), or `count` of the topic's raw metadata where the view lacks the topic or does not
    carry the count (a view not made by derive). The exporter and the alert kinds read these."""
    counts = {t.topic: getattr(t, field) for t in state.lag.topics}
    for topic in state.raw.topics:
        if counts.get(topic.name) is None:
            counts[topic.name] = count(topic)
    return counts
