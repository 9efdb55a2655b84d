"""Composition root: builds every subsystem from the config and runs them in order.

Each subsystem has the same lifecycle (`start()`, `stop()`); `Monitor.start()` starts them in
dependency order (history → sources → collection loop → web) and `stop()` in reverse. The
collection loop is the only place that calls Kafka or Spark; everything else reads the latest
`Snapshot` or the history.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

from prometheus_client import CollectorRegistry

from collectors.exporter import MetricsCache, SnapshotCollector
from collectors.models import ClusterState, CollectorHealth, Snapshot
from monitor.config import Config
from monitor.history import History
from monitor.kafka_source import KafkaSource

log = logging.getLogger(__name__)


class Source(Protocol):
    name: str
    kind: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def cycle(self): ...


class SnapshotStore:
    """The latest snapshot, swapped atomically; readers never block the collection loop."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._listeners: list[Callable[[Snapshot], None]] = []
        self.cycle_event = threading.Condition()
        self.cycles = 0

    def latest(self) -> Snapshot | None:
        return self._snapshot

    def publish(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        with self.cycle_event:
            self.cycles += 1
            self.cycle_event.notify_all()

    def wait_for_cycle(self, after: int, timeout: float) -> bool:
        """Block until more than `after` cycles were published (tests and the CLI use it)."""
        with self.cycle_event:
            return self.cycle_event.wait_for(lambda: self.cycles > after, timeout)


class Monitor:
    def __init__(self, config: Config, *, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self.history = History(
            config.history.path,
            retention_seconds=config.history.retention_seconds,
            downsample_after_seconds=config.history.downsample_after_seconds,
            downsample_step_seconds=config.history.downsample_step_seconds,
            clock=clock,
        )
        self.store = SnapshotStore()
        self.kafka_sources = [KafkaSource(c, config.collection, self.history, clock=clock) for c in config.clusters]
        self.spark_source = _build_spark_source(config, self.history, clock)
        self.registry = registry or CollectorRegistry(auto_describe=False)
        self.exporter = SnapshotCollector(self.store.latest, partition_metrics=config.exporter.partition_metrics)
        self.registry.register(self.exporter)
        self.metrics = MetricsCache(self.registry)
        self.alerting = _build_alerting(config, self)
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.kafka_sources) + 1), thread_name_prefix="cycle")
        self._last_prune = 0.0
        self.web = None

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def sources(self) -> list:
        return [*self.kafka_sources, *([self.spark_source] if self.spark_source else [])]

    def start(self, *, serve: bool = True, loop: bool = True) -> "Monitor":
        for source in self.sources:
            source.start()
        if self.alerting is not None:
            self.alerting.start()
        self.metrics.refresh()
        if loop:
            self._loop = threading.Thread(target=self._run_loop, name="collection-loop", daemon=True)
            self._loop.start()
        if serve:
            from monitor.web import WebServer

            self.web = WebServer(self, self.config.web)
            self.web.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.web is not None:
            self.web.stop()
        if self._loop is not None:
            self._loop.join(timeout=self.config.collection.interval_seconds + 60)
        for source in reversed(self.sources):
            source.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self.alerting is not None:
            self.alerting.stop()
        self.history.close()

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the collection loop ----------------------------------------------------------------------

    def _run_loop(self) -> None:
        interval = self.config.collection.interval_seconds
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.run_cycle()
            except Exception:  # the loop must survive anything a cycle throws
                log.exception("collection cycle failed")
            self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

    def run_cycle(self) -> Snapshot:
        """One cycle: collect every source in parallel, then derive, store, publish, serialise.

        Spark is collected alongside Kafka so that each Structured Streaming query's source
        offsets can join the Kafka derivation as a consumer group of kind "spark-query": its lag
        in messages and seconds, status and ETA come from the same code as any group's.
        """
        raw_futures = [self._pool.submit(source.collect_raw) for source in self.kafka_sources]
        spark_future = self._pool.submit(self.spark_source.cycle) if self.spark_source else None
        spark, spark_health = (), None
        if spark_future is not None:
            spark, spark_health = spark_future.result()
        clusters: list[ClusterState] = []
        health: list[CollectorHealth] = []
        for source, future in zip(self.kafka_sources, raw_futures):
            raw = future.result()
            extra = (self.spark_source.consumer_groups(spark, source.cluster, topics={t.name for t in raw.topics})
                     if self.spark_source else ())
            state, h = source.ingest(raw, extra_groups=extra)
            if state is not None:
                clusters.append(state)
            health.append(h)
        if spark_health is not None:
            health.extend(spark_health)
        now = self.clock()
        snapshot = Snapshot(at=now, clusters=tuple(clusters), health=tuple(health), spark=tuple(spark))
        self.store.publish(snapshot)
        if self.alerting is not None:
            try:
                self.alerting.on_snapshot(snapshot, now)
            except Exception:
                log.exception("alert evaluation failed")
        self.metrics.refresh()
        if now - self._last_prune >= self.config.history.prune_interval_seconds:
            self._last_prune = now
            self.history.prune(now)
        return snapshot


def _build_spark_source(config: Config, history: History, clock):
    spark = config.spark
    if not (spark.ui_urls or spark.scan_host or spark.master_url or spark.history_server_url or spark.progress_topic):
        return None
    from monitor.spark_source import SparkSource

    return SparkSource(config, history, clock=clock)


def _build_alerting(config: Config, monitor: "Monitor"):
    """The built-in rules are evaluated unless `alerting.enabled: false`, with or without an
    `alerting:` section: the Alerts page and API show what fires even with no receiver (then
    nothing is sent)."""
    from monitor.alerting import AlertingWiring, alerting_config

    alerting = alerting_config(config)
    if not alerting.enabled:
        return None
    return AlertingWiring(config, monitor, alerting)
