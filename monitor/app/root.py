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
from monitor.app.config import Config
from monitor.storage import History, HistoryError
from monitor.collection.kafka_source import KafkaSource

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
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self.kafka_sources) + 1), thread_name_prefix="cycle")
        self._last_prune = 0.0
        # The latest result of every source: each publishes when its own cycle ends, so a hung or
        # slow cluster is stale alone (its slot keeps its last state and ages).
        self._slots_lock = threading.Lock()
        self._kafka_slots: dict[str, tuple[ClusterState | None, CollectorHealth]] = {}
        self._spark_apps: tuple = ()
        self._spark_health: tuple[CollectorHealth, ...] = ()
        self._publish_lock = threading.Lock()
        self._publish_wanted = threading.Event()
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
            self._start_loops()
        if serve:
            from monitor.web import WebServer

            self.web = WebServer(self, self.config.web)
            self.web.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.web is not None:
            self.web.stop()
        self._publish_wanted.set()
        for thread in self._threads:
            thread.join(timeout=self.config.collection.interval_seconds + 60)
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

    # -- collection -------------------------------------------------------------------------------
    #
    # Every source (each Kafka cluster, Spark) runs its own loop and stores its latest result in a
    # slot; a publisher thread turns the slots into a Snapshot whenever one changed (publish,
    # alert evaluation, metrics serialisation). `run_cycle()` does one round of all of it
    # synchronously, for tests, benchmarks and `--once`-style use.

    def _start_loops(self) -> None:
        for source in self.kafka_sources:
            self._spawn(f"collect-{source.name}", lambda s=source: self._kafka_cycle(s, self._latest_spark_apps))
        if self.spark_source is not None:
            self._spawn("collect-spark", self._spark_cycle)
        publisher = threading.Thread(target=self._publish_loop, name="publish", daemon=True)
        publisher.start()
        self._threads.append(publisher)

    def _spawn(self, name: str, cycle: Callable[[], object]) -> None:
        def loop() -> None:
            interval = self.config.collection.interval_seconds
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    cycle()
                except Exception:  # a source's loop survives anything its cycle throws
                    log.exception("%s: collection cycle failed", name)
                self._publish_wanted.set()
                self._stop.wait(max(0.0, interval - (time.monotonic() - started)))

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            self._publish_wanted.wait()
            self._publish_wanted.clear()
            if self._stop.is_set():
                return
            try:
                self._publish()
            except Exception:
                log.exception("publishing the snapshot failed")

    def run_cycle(self) -> Snapshot:
        """One cycle of every source in parallel, then publish: derive, store, evaluate, serialise.

        Spark is collected alongside Kafka so that each Structured Streaming query's source
        offsets can join the Kafka derivation as a consumer group of kind "spark-query": its lag
        in messages and seconds, status and ETA come from the same code as any group's.
        """
        spark_future = self._pool.submit(self._spark_cycle) if self.spark_source else None
        futures = [self._pool.submit(self._kafka_cycle, source,
                                     spark_future.result if spark_future else self._latest_spark_apps)
                   for source in self.kafka_sources]
        for future in futures:
            future.result()
        if spark_future is not None:
            spark_future.result()
        return self._publish()

    def _latest_spark_apps(self) -> tuple:
        with self._slots_lock:
            return self._spark_apps

    def _spark_cycle(self) -> tuple:
        apps, health = self.spark_source.cycle()
        with self._slots_lock:
            self._spark_apps, self._spark_health = tuple(apps), tuple(health)
        return apps

    def _kafka_cycle(self, source: KafkaSource, spark_apps: Callable[[], tuple]) -> None:
        raw = source.collect_raw()
        extra = ()
        if self.spark_source is not None:
            extra = self.spark_source.consumer_groups(spark_apps(), source.cluster, topics={t.name for t in raw.topics})
        state, health = source.ingest(raw, extra_groups=extra)
        with self._slots_lock:
            self._kafka_slots[source.name] = (state, health)

    def _publish(self) -> Snapshot:
        with self._publish_lock:
            with self._slots_lock:
                slots = [self._kafka_slots.get(s.name) for s in self.kafka_sources]
                spark, spark_health = self._spark_apps, self._spark_health
            clusters = tuple(state for state, _ in filter(None, slots) if state is not None)
            health = tuple(h for _, h in filter(None, slots)) + spark_health
            now = self.clock()
            snapshot = Snapshot(at=now, clusters=clusters, health=health, spark=spark,
                                history=self.history.write_status())
            self.store.publish(snapshot)
            if self.alerting is not None:
                try:
                    self.alerting.on_snapshot(snapshot, now)
                except Exception:
                    log.exception("alert evaluation failed")
            self.metrics.refresh()
            if now - self._last_prune >= self.config.history.prune_interval_seconds:
                self._last_prune = now
                try:
                    self.history.prune(now)
                except HistoryError:
                    pass  # History reports its own write failures (rate-limited)
            return snapshot


def _build_spark_source(config: Config, history: History, clock):
    spark = config.spark
    if not (spark.ui_urls or spark.scan_host or spark.master_url or spark.history_server_url or spark.progress_topic):
        return None
    from monitor.collection.spark_source import SparkSource

    return SparkSource(config, history, clock=clock)


def _build_alerting(config: Config, monitor: "Monitor"):
    """The built-in rules are evaluated unless `alerting.enabled: false`, with or without an
    `alerting:` section: the Alerts page and API show what fires even with no receiver (then
    nothing is sent)."""
    from monitor.app.alerting import AlertingWiring, alerting_config

    alerting = alerting_config(config)
    if not alerting.enabled:
        return None
    return AlertingWiring(config, monitor, alerting)
