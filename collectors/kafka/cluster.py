"""Cluster metadata as the collector keeps it, whichever client fetched it.

Two clients can answer a cycle's metadata and offset requests: kafka-python (the batched path,
`collectors.kafka.group_requests`: one Metadata request with topic ids, one ListOffsets per
partition leader) and librdkafka (`AdminClient.list_topics` and `list_offsets`, the fallback when
a cluster's client settings have no kafka-python equivalent). Both are turned into these types.
"""
from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from collectors.models import Broker


class PartitionInfo(NamedTuple):
    """A named tuple: built 10,000 times a cycle at 10,000 partitions (a frozen dataclass costs
    several times more to build)."""

    leader: int  # -1 without a leader (offline)
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


class ReplicaSets:
    """One tuple object per distinct replica list of a metadata answer. A cluster has few (its
    brokers' combinations), its partitions many: sharing them keeps 20,000 tuples per 10,000
    partitions out of the snapshot (1.1 MB in the parent, which unpickles it every cycle: pickle
    sends a shared object once)."""

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[int, ...], tuple[int, ...]] = {}

    def __call__(self, ids) -> tuple[int, ...]:
        ids = tuple(ids)
        return self._seen.setdefault(ids, ids)


class PartitionKeys:
    """One ``(topic, partition)`` tuple per collected partition, the same object every cycle.

    The collector's maps that outlive a cycle (end, earliest and stable offsets, the cached
    ListOffsets requests, log sizes) key on these rather than on a tuple each of their own, made
    anew every cycle: 0.56 MB per map at 10,000 partitions (measured, the collector process)."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[tuple[str, int], tuple[str, int]] = {}

    def __call__(self, topic: str, partition: int) -> tuple[str, int]:
        key = (topic, partition)
        return self._keys.setdefault(key, key)

    def keep_only(self, keys: list[tuple[str, int]]) -> None:
        """Forget the partitions not in ``keys`` (this cycle's, made by this object)."""
        if len(self._keys) > len(keys):
            self._keys = {key: key for key in keys}


@dataclass(frozen=True, slots=True)
class TopicInfo:
    partitions: dict[int, PartitionInfo]
    topic_id: str | None = None  # None when this client's metadata does not carry it
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    brokers: tuple[Broker, ...]
    controller_id: int | None
    topics: dict[str, TopicInfo]

    def leaders(self, partitions) -> dict[int, list[tuple[str, int]]]:
        """(topic, partition) pairs grouped by their leader (offline ones under -1)."""
        out: dict[int, list[tuple[str, int]]] = {}
        for key in partitions:
            info = self.topics.get(key[0])
            p = info.partitions.get(key[1]) if info is not None else None
            out.setdefault(p.leader if p is not None else -1, []).append(key)
        return out


def topic_id_text(value) -> str | None:
    """A topic id in Kafka's text form (base64 of the 16 bytes, no padding), whatever the client
    returned: librdkafka's `Uuid`, or kafka-python's `uuid.UUID` or its string."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = uuid.UUID(value)
        except ValueError:
            return value  # already in Kafka's text form
    if isinstance(value, uuid.UUID):
        if value.int == 0:
            return None  # Kafka's "no id" (ZERO_UUID)
        return base64.b64encode(value.bytes).decode().rstrip("=")
    return str(value)


def from_librdkafka(metadata) -> ClusterInfo:
    """confluent-kafka's ClusterMetadata (from `list_topics`), without topic ids."""
    shared = ReplicaSets()
    brokers = tuple(Broker(id=b.id, host=b.host, port=b.port)
                    for b in sorted(metadata.brokers.values(), key=lambda b: b.id))
    topics = {
        name: TopicInfo(
            partitions={pid: PartitionInfo(p.leader, shared(p.replicas), shared(p.isrs)) for pid, p in t.partitions.items()},
            error=None if t.error is None else str(t.error),
        )
        for name, t in metadata.topics.items()
    }
    return ClusterInfo(brokers, known_controller(metadata.controller_id), topics)


def known_controller(controller_id: int | None) -> int | None:
    """A Metadata answer's controller id, None for Kafka's "none known" (-1)."""
    return controller_id if controller_id is not None and controller_id >= 0 else None
