"""`HistoryReader`: what the web layer (JSON API, dashboard) and the alert inputs read from the
history, and nothing more. `KafkaStore` implements it over SQLite; another implementation (one
backed by Prometheus, say) serves the same calls with the same rows.

Series are oldest first, within [start, end], at most `max_points` rows (per partition for the
per-partition series), downsampled as `monitor.storage.kafka_store` describes. Time lags are
seconds, rates messages per second, statuses and methods their text values.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Protocol, TypedDict

WindowKind = Literal["group", "topic", "cluster"]


class GroupPoint(TypedDict):
    at: float
    lag: int | None
    readable_lag: int | None
    time_lag_seconds: float | None
    time_lag_method: str | None
    time_lag_lower_bound: bool
    consume_rate: float | None
    produce_rate: float | None
    eta_seconds: float | None
    status: str | None


class PartitionLagPoint(TypedDict):
    at: float
    topic: str
    partition: int
    lag: int | None
    time_lag_seconds: float | None


class TopicPoint(TypedDict):
    at: float
    produce_rate: float | None
    end_offset_sum: int | None
    message_count: int | None
    under_replicated: int | None
    offline: int | None


class PartitionRatePoint(TypedDict):
    at: float
    partition: int
    end_offset: int
    rate: float | None  # messages/s since the partition's previous point; None after a reset


class ClusterPoint(TypedDict):
    at: float
    ok: bool
    total_lag: int | None
    max_time_lag_seconds: float | None
    groups: int | None
    brokers: int | None


class CommitPoint(TypedDict):
    topic: str
    partition: int
    offset: int
    # The first cycle that saw this committed offset: the commit happened in (after, at]. For the
    # oldest entry of a range `after` is None: committed at or before `at`.
    at: float
    after: float | None


def commit_points(topic: str, partition: int, observed: Iterable[tuple[float, int]], limit: int) -> list[CommitPoint]:
    """The last `limit` commits of one partition from its committed offset as observed over time
    (oldest first): each change is a commit dated by the observation that saw it, the one before
    as the lower end of when it happened."""
    kept: list[CommitPoint] = []
    previous_at = None
    for at, offset in observed:
        if not kept or kept[-1]["offset"] != offset:
            kept.append({"topic": topic, "partition": partition, "offset": offset, "at": at, "after": previous_at})
        previous_at = at
    return kept[-limit:]


class HistoryReader(Protocol):
    def clusters(self) -> list[str]:
        """Every cluster with stored cycles, sorted."""

    def group_series(self, cluster: str, group: str, start: float, end: float,
                     max_points: int = 500) -> list[GroupPoint]: ...

    def partition_lag_series(self, cluster: str, group: str, start: float, end: float,
                             max_points: int = 200) -> list[PartitionLagPoint]: ...

    def topic_series(self, cluster: str, topic: str, start: float, end: float,
                     max_points: int = 500) -> list[TopicPoint]: ...

    def partition_rate_series(self, cluster: str, topic: str, start: float, end: float,
                              max_points: int = 200) -> list[PartitionRatePoint]: ...

    def cluster_series(self, cluster: str, start: float, end: float,
                       max_points: int = 500) -> list[ClusterPoint]: ...

    def commit_history(self, cluster: str, group: str, start: float, end: float,
                       limit: int = 10) -> list[CommitPoint]:
        """The last `limit` committed offsets per partition of `group` within [start, end], as
        the collection observed them (Kafka keeps no commit times): oldest first per partition,
        partitions in order."""

    def window(self, cluster: str, kind: WindowKind, key: str | None, seconds: float,
               now: float | None = None) -> list[dict[str, Any]]:
        """Unaggregated rows of the last `seconds` up to `now`, oldest first: what the alert
        rules' duration windows read (`alerts.inputs`)."""
