"""Synthetic snapshots and history for tests, benchmarks and dashboard development.

    python -m tests.dashboard_sample --port 8060     # the dashboard over synthetic data

Builds real `collectors.models` / `collectors.spark.models` objects (no Kafka, no Spark) and a
real `History`, and the `WebContext` the dashboard reads over them.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from collectors.kafka.partition_health import replication_factor, topic_under_min_isr
from collectors.kafka.vector_retention import retention_risks
from collectors.models import (
    Broker, ClusterState, CollectorHealth, CommittedOffset, ConsumerGroup, GroupLag, GroupMember, Histogram,
    KafkaClusterSnapshot, KafkaLagView, LogDir, PartitionLag, PartitionMetadata, ProbeStats, Snapshot, Status,
    TimeLagMethod, Topic, TopicConfig, TopicRates,
)
from collectors.spark.views import spark_views
from monitor.web.context import WebContext, WebSettings

HOSTILE_GROUP = 'evil"\'<script>alert(1)</script>\n<b>bold</b>&amp;'


@dataclass
class GroupSpec:
    name: str
    topic: str
    rate: float  # consume rate, messages/s
    lag: Callable[[int, int], int] | None = None  # (cycle, partition) -> lag
    status: Status = Status.OK
    members: int = 1
    state: str = "Stable"


@dataclass
class TopicSpec:
    name: str
    partitions: int
    rate: float  # produce rate, messages/s
    under_replicated: tuple[int, ...] = ()
    offline: tuple[int, ...] = ()
    internal: bool = False
    retention_seconds: float = 7 * 86400.0  # -1: no limit
    cleanup_policy: str = "delete"


@dataclass
class ClusterSpec:
    name: str = "demo"
    topics: list[TopicSpec] = field(default_factory=list)
    groups: list[GroupSpec] = field(default_factory=list)


def default_spec(hostile: bool = False) -> ClusterSpec:
    spec = ClusterSpec(
        "demo",
        topics=[TopicSpec("clickstream", 6, 50.0), TopicSpec("orders", 3, 12.0, under_replicated=(2,),
                                                             retention_seconds=3600.0),
                TopicSpec("enriched-clicks", 4, 40.0),
                TopicSpec("__consumer_offsets", 50, 0.0, internal=True, cleanup_policy="compact")],
        groups=[
            GroupSpec("clickstream-archiver", "clickstream", 50.0, lambda c, p: 3 + p),
            GroupSpec("clickstream-enricher-slow", "clickstream", 45.0,
                      lambda c, p: 40 * c + 25 * p, status=Status.WARN),
            GroupSpec("orders-billing", "orders", 0.0, lambda c, p: 100 + 12 * c, status=Status.STOP,
                      members=0, state="Empty"),
        ],
    )
    if hostile:
        spec.groups.append(GroupSpec(HOSTILE_GROUP, "orders", 12.0, lambda c, p: 7 * p))
    return spec


def cluster_state(spec: ClusterSpec, at: float, cycle: int, *, stale: bool = False,
                  interval: float = 10.0) -> ClusterState:
    """One cycle of a synthetic cluster: offsets grow with `cycle` at each topic's rate."""
    topics, rates, ends = [], [], {}
    for t in spec.topics:
        parts = []
        per = t.rate / max(1, t.partitions)
        for p in range(t.partitions):
            latest = int(10_000 + p * 37 + per * interval * cycle)
            ends[(t.name, p)] = latest
            isr = (1,) if p in t.under_replicated else (1, 2, 3)
            leader = -1 if p in t.offline else 1 + p % 3
            parts.append(PartitionMetadata(t.name, p, leader, (1, 2, 3), isr, 1_000 + p, latest,
                                           size_bytes=(latest - 1_000 - p) * 120))
        config = TopicConfig(t.cleanup_policy, int(t.retention_seconds * 1000) if t.retention_seconds > 0 else -1,
                             -1, 2, fetched_at=at)
        topics.append(Topic(t.name, tuple(parts), internal=t.internal, config=config))
        rates.append(TopicRates(
            spec.name, t.name, t.partitions, sum(ends[(t.name, p)] for p in range(t.partitions)),
            sum(pm.message_count or 0 for pm in parts), t.rate,
            tuple(per * (0.7 + 0.6 * ((p * 7) % 5) / 4) for p in range(t.partitions)),
            len(t.under_replicated), len(t.offline),
            replication_factor(topics[-1]), topic_under_min_isr(topics[-1]),  # as derive counts them
        ))
    raw_groups, lag_groups = [], []
    tmap = {t.name: t for t in spec.topics}
    for g in spec.groups:
        t = tmap[g.topic]
        offsets, plags = [], []
        for p in range(t.partitions):
            end = ends[(t.name, p)]
            lag = max(0, int(g.lag(cycle, p))) if g.lag else 0
            offsets.append(CommittedOffset(t.name, p, end - lag))
            tl = lag / max(1e-9, t.rate / t.partitions) if lag else 0.0
            method = TimeLagMethod.EXACT if p == 0 and lag else TimeLagMethod.INTERPOLATED if lag else TimeLagMethod.NONE
            plags.append(PartitionLag(g.name, t.name, p, end - lag, end, lag, tl, method,
                                      g.rate / t.partitions, g.status,
                                      f"consumer-{p % max(1, g.members)}" if g.members else None))
        members = tuple(GroupMember(f"m-{i}", f"consumer-{i}", "/127.0.0.1",
                                    tuple((t.name, p) for p in range(t.partitions) if p % g.members == i))
                        for i in range(g.members))
        raw_groups.append(ConsumerGroup(g.name, g.state, members, tuple(offsets), at - 0.2, coordinator=1 + len(g.name) % 3,
                                        assignor="cooperative-sticky" if members else None))
        worst = max(plags, key=lambda pl: pl.time_lag_seconds or 0.0)
        total = sum(pl.lag for pl in plags)
        eta = None
        if total and g.rate > t.rate:
            eta = total / (g.rate - t.rate)
        lag_groups.append(GroupLag(
            spec.name, g.name, g.state, g.members, g.members == 0,
            at - 600 if g.members == 0 else None, total, worst.time_lag_seconds,
            worst.time_lag_method, g.rate, t.rate, eta, g.status, tuple(plags), (t.name,), at - 0.2,
        ))
    raw = KafkaClusterSnapshot(
        spec.name, at - 0.5, at, brokers=(Broker(1, "127.0.0.1", 9092),), controller_id=1,
        topics=tuple(topics), groups=tuple(raw_groups), end_offsets_fetched_at=at - 0.3,
        log_dirs=(LogDir(1, "/var/lib/kafka", sum(p.size_bytes or 0 for t in topics for p in t.partitions),
                         500_000_000_000, 320_000_000_000,
                         topic_bytes=tuple((t.name, sum(p.size_bytes or 0 for p in t.partitions)) for t in topics)),),
        log_dirs_fetched_at=at - 0.1,
    )
    view = KafkaLagView(spec.name, at, tuple(lag_groups), tuple(rates),
                        retention=retention_risks(raw, lag_groups, rates))
    return ClusterState(raw, view, stale=stale, probe=probe_stats(at, cycle))


def probe_stats(at: float, rounds: int) -> ProbeStats:
    """An end-to-end probe that got every record back (about 12 ms each)."""
    bounds = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    counts = tuple(0 if b < 0.012 else rounds for b in bounds) + (rounds,)
    h = Histogram(bounds, counts, 0.012 * rounds)
    return ProbeStats("streamscope-probe", 1, True, rounds, rounds, rounds,
                      (("setup", 0), ("produce", 0), ("timeout", 0), ("commit", 0)), h, h, h,
                      last_round_at=at, last_success_at=at)


def spark_app(at: float, *, app_id: str = "app-20261124-0001", query_name: str = "enrich",
              batches: int = 30, trigger_ms: int = 2000, topic: str = "clickstream",
              failed: bool = False, dstream: bool = False) -> Any:
    """A SparkAppSnapshot with one Structured Streaming query (and optionally DStream stats)."""
    from collectors.spark import models as sm

    bl = []
    for i in range(batches):
        ts = at - (batches - i) * trigger_ms / 1000.0
        dur = int(trigger_ms * (0.55 + 0.6 * (0.5 + 0.5 * math.sin(i / 3.0))))
        bl.append(sm.BatchProgress(
            batch_id=100 + i, run_id="run-1", origin="listener", received_at=ts + dur / 1000,
            timestamp=ts, duration_ms=dur,
            durations=sm.TriggerDurations(add_batch_ms=int(dur * 0.8), trigger_execution_ms=dur),
            num_input_rows=100, input_rows_per_second=50.0 + 5 * math.sin(i / 4.0),
            processed_rows_per_second=80.0 + 10 * math.cos(i / 5.0),
            watermark=ts - 12.0, event_time_min=ts - 4.0, event_time_avg=ts - 3.0,
            event_time_max=ts - 2.0,
            state_operators=(sm.StateOperatorProgress("stateStoreSave", 120 + 3 * i, 4, 40_000 + 900 * i),),
            sources=(sm.SourceProgress(
                description=f"KafkaV2[Subscribe[{topic}]]", start_offset=None, end_offset=None,
                latest_offset=None,
                end_offsets=tuple(sm.PartitionOffset(topic, p, 10_000 + p * 37 + i * 10) for p in range(6)),
                latest_offsets=tuple(sm.PartitionOffset(topic, p, 10_000 + p * 37 + i * 10 + 5) for p in range(6)),
                num_input_rows=100, input_rows_per_second=50.0, processed_rows_per_second=80.0,
                max_offsets_behind_latest=5.0),),
            sink_description="org.apache.spark.sql.kafka010.KafkaSourceProvider$KafkaTable@60280f38",
            sink_output_rows=100, sink_topics=("enriched-clicks",),
        ))
    query = sm.StreamingQuery(
        id="3f0c1d2e-0000-4000-8000-000000000001", name=query_name, run_id="run-1",
        state=sm.QueryState.FAILED if failed else sm.QueryState.ACTIVE,
        exception="org.apache.spark.SparkException: boom" if failed else None,
        last_batch_id=bl[-1].batch_id if bl else None, batches=tuple(bl), updated_at=at,
        trigger_interval_ms=trigger_ms,  # as the collector estimates it from the batch times
    )
    ds = None
    if dstream:
        ds = sm.DStreamStats(
            start_time=at - 3600, batch_duration_ms=2000, num_receivers=1, num_active_receivers=1,
            num_inactive_receivers=0, total_completed_batches=500, retained_completed_batches=20,
            active_batches=1, processed_records=10_000, received_records=10_100,
            avg_input_rate=40.0, avg_scheduling_delay_ms=30.0, avg_processing_time_ms=900.0,
            avg_total_delay_ms=930.0, fetched_at=at,
            receivers=(sm.DStreamReceiver(0, "SocketReceiver-0", True, "0", "127.0.0.1", 40.0),),
            batches=tuple(sm.DStreamBatch(int((at - 2 * i) * 1000), at - 2 * i, "COMPLETED", 80,
                                          20 + i, 800 + 30 * (i % 5), 820 + 30 * (i % 5))
                          for i in range(20)),
        )
    return sm.SparkAppSnapshot(
        app=sm.SparkApp(app_id, "streamscope-demo-enricher", "http://127.0.0.1:4040", None,
                        at - 3600, None, "4.2.0", False, at),
        collected_at=at,
        jobs=sm.JobSummary(1, 1, 250, (sm.FailedJob(17, "foreachBatch at enrich.py:42", None, at - 900,
                                                    at - 890, 4, 1),), at),
        stages=sm.StageSummary((sm.FailedStage(33, 0, "save at enrich.py:42", "Task failed: OOM", 4,
                                               at - 900, at - 890),), 4, 0, at),
        executors=(sm.Executor("driver", "127.0.0.1:40123", True, 1_500_000, 400_000_000, 0, 1200, 0, 2,
                               4000, 4002, 2, 2, 600_000, at),),
        queries=(query,), dstream=ds,
    )


class SampleStore:
    def __init__(self, snapshot: Snapshot | None = None):
        self._snapshot = snapshot

    def latest(self) -> Snapshot | None:
        return self._snapshot

    def publish(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot


class SampleAlerting:
    """An `AlertService` (monitor.web.context) answering with fixed lists, in the alert engine's shapes."""

    def __init__(self, alerts: list[dict] | None = None, silences: list[dict] | None = None,
                 notifications: list[dict] | None = None, receivers: tuple[str, ...] = ()):
        self.alerts = alerts or []
        self.silences = silences or []
        self.notifications = notifications or []
        self.receiver_names = receivers

    def list_alerts(self, state: str | None = None) -> list[dict]:
        return [a for a in self.alerts if state is None or a["state"] == state]

    def alert_history(self) -> list[dict]:
        return []

    def list_silences(self, state: str | None = None) -> list[dict]:
        return list(self.silences)

    def create_silence(self, data) -> dict:
        raise NotImplementedError

    def expire_silence(self, silence_id: str) -> dict:
        raise NotImplementedError

    def list_notifications(self, limit: int = 100, receiver: str | None = None) -> list[dict]:
        return list(self.notifications)


def alert(alertname: str, state: str, *, severity: str = "warning", labels: dict | None = None,
          value: float | None = None, active_at: float = 0.0, resolved_at: float | None = None,
          summary: str = "", silenced: bool = False) -> dict:
    """An alert as `alerts.engine.AlertView.to_dict` gives it."""
    return {
        "fingerprint": f"fp-{alertname}-{sorted((labels or {}).items())}", "alertname": alertname,
        "state": state, "severity": severity, "labels": {"alertname": alertname, **(labels or {})},
        "annotations": {"summary": summary} if summary else {}, "value": value,
        "active_at": active_at, "fired_at": active_at if state != "pending" else None,
        "resolved_at": resolved_at, "startsAt": None, "endsAt": None,
        "status": {"state": "suppressed" if silenced else state, "silencedBy": [], "inhibitedBy": []},
        "dashboard_url": "",
    }


def context(store: SampleStore, history=None, *, interval: float = 10.0,
            clock: Callable[[], float] = time.time, alerting=None, spark_configured: bool = False,
            internal_topics: frozenset[str] = frozenset()) -> WebContext:
    """What the web layer reads, over the sample store and history."""
    settings = WebSettings(interval_seconds=interval, stale_after_seconds=3 * interval,
                           internal_topics=internal_topics, spark_configured=spark_configured)
    return WebContext(snapshots=store, settings=settings,
                      history=history.kafka if history is not None else None, alerts=alerting, clock=clock)


def health(name: str, at: float, *, up: bool = True, kind: str = "kafka", error: str | None = None,
           cycles: int = 10) -> CollectorHealth:
    return CollectorHealth(name, kind, up, at, at if up else at - 120, 0.08, error, cycles, 0 if up else 3)


def build(history=None, *, spec: ClusterSpec | None = None, cycles: int = 30, interval: float = 10.0,
          end: float | None = None, spark: bool = False, stale: bool = False,
          alerting=None, clock: Callable[[], float] | None = None) -> WebContext:
    """A WebContext whose history holds `cycles` cycles ending at `end` and whose latest
    snapshot is the last of them (`ctx.snapshots` is a `SampleStore`)."""
    end = time.time() if end is None else end
    spec = spec or default_spec()
    state = None
    for i in range(cycles):
        at = end - (cycles - 1 - i) * interval
        state = cluster_state(spec, at, i, interval=interval)
        if history is not None:
            history.kafka.append(state)
    store = SampleStore()
    ctx = context(store, history, interval=interval, clock=clock or (lambda: end), alerting=alerting)
    if state is not None and stale:
        state = ClusterState(state.raw, state.lag, stale=True)
    health_rows = (health(f"kafka:{spec.name}", end, up=not stale,
                          error="KafkaError: broker down" if stale else None),)
    apps = ()
    if spark:
        apps = (spark_app(end),)
        health_rows += (health("spark:http://127.0.0.1:4040", end, kind="spark"),)
    clusters = (state,) if state else ()
    store.publish(Snapshot(at=end, clusters=clusters, health=health_rows, spark=spark_views(apps, clusters)))
    return ctx


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - developer tool
    import argparse
    import tempfile
    from pathlib import Path

    from flask import Flask
    from waitress import serve

    from monitor.web.dashboard import mount_dashboard
    from monitor.storage import History

    ap = argparse.ArgumentParser(description="Serve the dashboard over synthetic data.")
    ap.add_argument("--port", type=int, default=8060)
    ap.add_argument("--hostile", action="store_true", help="add a group with a hostile name")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="streamscope-sample-")
    history = History(Path(tmp) / "history.db")
    ctx = build(history, spec=default_spec(hostile=args.hostile), cycles=120, spark=True,
                alerting=SampleAlerting([alert("ConsumerLagHigh", "firing", value=1234,
                                               labels={"cluster": "demo", "group": "clickstream-enricher-slow"},
                                               active_at=time.time() - 300, summary="lag above 1000 for 5m")]))
    app = Flask("streamscope-sample")
    mount_dashboard(app, ctx)
    print(f"http://127.0.0.1:{args.port}")
    serve(app, host="127.0.0.1", port=args.port)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
