"""Builders for hand-made snapshots (tests): real `collectors.models` and
`collectors.spark.models` objects with defaults that keep the tests short."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from collectors.models import (Broker, ClusterState, CollectorHealth, GroupLag, KafkaClusterSnapshot,
                               KafkaLagView, PartitionLag, PartitionMetadata, Snapshot, Status, TimeLagMethod, Topic,
                               TopicRates)
from collectors.spark import models as sm
from collectors.spark.views import spark_views

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
             spark: Iterable[sm.SparkAppSnapshot] = ()) -> Snapshot:
    """A snapshot as the collection publishes it: Spark apps as their views, lag against `clusters`."""
    clusters = tuple(clusters)
    return Snapshot(at=at, clusters=clusters, health=tuple(health), spark=spark_views(spark, clusters))


def inputs(snap: Snapshot | None, windows: Mapping[tuple[str, str, str], list[dict]] | None = None) -> StaticInputs:
    return StaticInputs(snap, dict(windows or {}))


# ----------------------------------------------------------------------------- Spark


def spark_batch(batch_id: int, duration_ms: int | None = 1000, input_rps: float | None = 100.0,
                processed_rps: float | None = 200.0, timestamp: float | None = None, *,
                status: str = "COMPLETED", sources: Iterable[sm.SourceProgress] = ()) -> sm.BatchProgress:
    return sm.BatchProgress(batch_id=batch_id, run_id="r", origin="listener", received_at=timestamp or 0.0,
                            timestamp=timestamp, duration_ms=duration_ms, status=status,
                            input_rows_per_second=input_rps, processed_rows_per_second=processed_rps,
                            sources=tuple(sources))


def kafka_source(topic: str, end: Iterable[int] = (), latest: Iterable[int] = (), *,
                 max_behind: float | None = None) -> sm.SourceProgress:
    """A Kafka source of a batch: its end offsets (the query's position) and latest offsets, per partition."""
    return sm.SourceProgress(
        description=f"KafkaV2[Subscribe[{topic}]]", start_offset=None, end_offset=None, latest_offset=None,
        end_offsets=tuple(sm.PartitionOffset(topic, p, o) for p, o in enumerate(end)),
        latest_offsets=tuple(sm.PartitionOffset(topic, p, o) for p, o in enumerate(latest)),
        max_offsets_behind_latest=max_behind)


def spark_query(name: str, *, state: sm.QueryState = sm.QueryState.ACTIVE, exception: str | None = None,
                batches: Iterable[sm.BatchProgress] = (), trigger_interval_ms: int | None = 2000,
                updated_at: float = 0.0) -> sm.StreamingQuery:
    batches = tuple(batches)
    return sm.StreamingQuery(id=f"id-{name}", name=name, run_id="r", state=state, exception=exception,
                             last_batch_id=batches[-1].batch_id if batches else None, batches=batches,
                             updated_at=updated_at, trigger_interval_ms=trigger_interval_ms)


def spark_app(name: str, queries: Iterable[sm.StreamingQuery] = (), *, app_id: str | None = None,
              failed_jobs: int | None = None, failed_job_times: Iterable[float] = (), stale: bool = False,
              completed: bool = False, at: float = 0.0) -> sm.SparkAppSnapshot:
    """An app; `failed_jobs` is the driver's counter, `failed_job_times` the listed failed jobs' completion."""
    times = tuple(failed_job_times)
    jobs = None
    if times:
        jobs = sm.JobSummary(active=0, failed=len(times), succeeded=None, fetched_at=at, failed_jobs=tuple(
            sm.FailedJob(i, f"job {i}", None, t, t, 1, 1) for i, t in enumerate(times)))
    driver = sm.DriverMetrics(namespace=name, fetched_at=at, jobs_failed_total=failed_jobs) \
        if failed_jobs is not None else None
    return sm.SparkAppSnapshot(
        app=sm.SparkApp(id=app_id or f"app-{name}", name=name, ui_url=None, attempt=None, start_time=at - 999,
                        end_time=None, spark_version="4.2.0", completed=completed, fetched_at=at),
        collected_at=at, queries=tuple(queries), jobs=jobs, driver=driver, stale=stale)
