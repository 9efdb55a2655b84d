"""Builders for hand-made snapshots and fake Spark objects (tests, demos, docs examples).

Only `collectors.models` objects are built here; Spark objects are small duck-typed dataclasses
with the attribute names `alerts.spark_view` reads first.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collectors.models import (Broker, ClusterState, CollectorHealth, GroupLag, KafkaClusterSnapshot,
                               KafkaLagView, PartitionLag, PartitionMetadata, Snapshot, Status, TimeLagMethod, Topic,
                               TopicRates)

from alerts.inputs import StaticInputs


def partition_lag(group: str, topic: str, partition: int, lag: int, time_lag: float | None = None,
                  status: Status = Status.OK) -> PartitionLag:
    return PartitionLag(
        group=group, topic=topic, partition=partition, committed_offset=1000, end_offset=1000 + lag, lag=lag,
        time_lag_seconds=time_lag, time_lag_method=TimeLagMethod.EXACT if time_lag is not None else TimeLagMethod.NONE,
        consume_rate=10.0, status=status,
    )


def group_lag(cluster: str, group: str, lags: Mapping[tuple[str, int], int | tuple[int, float | None]],
              *, members: int = 1, status: Status = Status.OK, at: float = 0.0) -> GroupLag:
    """`lags`: {(topic, partition): lag} or {(topic, partition): (lag, time_lag_seconds)}."""
    parts = []
    for (topic, p), v in sorted(lags.items()):
        lag, tl = (v if isinstance(v, tuple) else (v, None))
        parts.append(partition_lag(group, topic, p, lag, tl, status))
    tls = [p.time_lag_seconds for p in parts if p.time_lag_seconds is not None]
    return GroupLag(
        cluster=cluster, group=group, state="Stable" if members else "Empty", members=members,
        is_empty=members == 0, empty_since=at if members == 0 else None, lag=sum(p.lag for p in parts),
        time_lag_seconds=max(tls) if tls else None,
        time_lag_method=TimeLagMethod.EXACT if tls else TimeLagMethod.NONE, consume_rate=10.0, produce_rate=10.0,
        eta_seconds=None, status=status, partitions=tuple(parts), topics=tuple(sorted({p.topic for p in parts})),
        fetched_at=at,
    )


def topic_rates(cluster: str, topic: str, produce_rate: float | None = 1.0, *, under_replicated: int = 0,
                offline: int = 0, partitions: int = 3) -> TopicRates:
    return TopicRates(cluster=cluster, topic=topic, partitions=partitions, end_offset_sum=1000, message_count=1000,
                      produce_rate=produce_rate, partition_produce_rates=(produce_rate,) * partitions,
                      under_replicated=under_replicated, offline=offline)


def cluster_state(cluster: str = "local", *, groups: Iterable[GroupLag] = (), topics: Iterable[TopicRates] = (),
                  brokers: int = 3, stale: bool = False, error: str | None = None, at: float = 0.0,
                  raw_topics: Iterable[Topic] = ()) -> ClusterState:
    raw = KafkaClusterSnapshot(
        cluster=cluster, started_at=at, finished_at=at,
        brokers=tuple(Broker(i, f"b{i}", 9092) for i in range(1, brokers + 1)),
        topics=tuple(raw_topics), error=error,
    )
    lag = KafkaLagView(cluster=cluster, at=at, groups=tuple(groups), topics=tuple(topics))
    return ClusterState(raw=raw, lag=lag, stale=stale)


def raw_topic(name: str, *, replicas: int = 3, under_replicated: int = 0, offline: int = 0, partitions: int = 3) -> Topic:
    parts = []
    for p in range(partitions):
        isr = tuple(range(1, replicas + 1))
        leader = 1
        if p < offline:
            leader = -1
        elif p < offline + under_replicated:
            isr = isr[:-1]
        parts.append(PartitionMetadata(name, p, leader, tuple(range(1, replicas + 1)), isr, 0, 100))
    return Topic(name, tuple(parts))


def health(name: str = "kafka:local", kind: str = "kafka", *, up: bool = True, last_success_at: float | None = 0.0,
           at: float = 0.0, error: str | None = None) -> CollectorHealth:
    return CollectorHealth(name=name, kind=kind, up=up, last_attempt_at=at, last_success_at=last_success_at,
                           duration_seconds=0.1, error=error)


def snapshot(at: float = 0.0, clusters: Iterable[ClusterState] = (), health: Iterable[CollectorHealth] = (),
             spark: Iterable[Any] = ()) -> Snapshot:
    return Snapshot(at=at, clusters=tuple(clusters), health=tuple(health), spark=tuple(spark))


def inputs(snap: Snapshot | None, windows: Mapping[tuple[str, str, str], list[dict]] | None = None) -> StaticInputs:
    return StaticInputs(snap, dict(windows or {}))


# ----------------------------------------------------------------------------- fake Spark objects


@dataclass(frozen=True)
class FakeBatch:
    batch_id: int
    duration_ms: float | None = 1000.0
    input_rows_per_second: float | None = 100.0
    processed_rows_per_second: float | None = 200.0
    timestamp: float | str | None = None


@dataclass(frozen=True)
class FakeQuery:
    name: str
    state: str = "ACTIVE"
    exception: str | None = None
    recent_batches: tuple[FakeBatch, ...] = ()
    trigger_interval_ms: float | None = 2000.0
    kafka_lag: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FakeSparkApp:
    name: str
    queries: tuple[FakeQuery, ...] = ()
    failed_jobs: int | None = None
