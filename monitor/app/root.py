"""The composition root: builds every part from the config, starts them in order, stops them in
reverse.

    history → sources (Kafka clusters, Spark) → alert delivery → collection loops → web

Every long-running part is a `Service` (`start()`, `stop()`). Each gets only what it reads: the
collection gets its sources and a `publish` callback, the alert service the latest snapshot and
the history's windows, the web layer a `WebContext`. Each published snapshot is stored as the
latest, evaluated by the alert engine and serialised for /metrics; the history is pruned every
`history.prune_interval_seconds` (docs/architecture.md).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from collectors.memory import gc_paused, release_free_memory, review_frozen
from collectors.models import Snapshot
from monitor.app.alerting import AlertDelivery, build_alerting
from monitor.app.config import Config
from monitor.app.dashboard import prometheus_reader
from monitor.app.lifecycle import Services
from monitor.collection.kafka_source import KafkaSource, collector_settings
from monitor.collection.loops import Collection
from monitor.collection.snapshots import SnapshotStore
from monitor.fleet.fleet import Fleet, build_fleet, default_instance
from monitor.storage import History, HistoryError
from monitor.web.context import WebContext, WebSettings
from monitor.web.metrics import FleetLabels, snapshot_metrics
from monitor.web.server import WebServer

log = logging.getLogger(__name__)


def fleet_of(config: Config, clock: Callable[[], float]) -> Fleet:
    """This replica's membership of `config.fleet`, on the cluster it names."""
    cluster = config.fleet_cluster
    settings = collector_settings(cluster)
    port = config.web.port
    instance = config.fleet.instance or default_instance(port if port else os.getpid())
    return build_fleet(config.fleet, bootstrap_servers=cluster.bootstrap_servers, client_config=settings.client_config,
                       instance=instance, whole_clusters=config.fleet.whole_clusters, spark=config.spark.enabled,
                       request_timeout=cluster.request_timeout_seconds, clock=clock)


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
        # `--fleet NAME`: this replica shares the work with the others through Kafka (docs/scaling.md)
        self.fleet = fleet_of(config, clock) if config.fleet.enabled else None
        fleet = self.fleet
        self.kafka_sources = [KafkaSource(c, config.collection, self.history, clock=clock, fleet=fleet)
                              for c in config.clusters]
        self.spark_source = None
        if config.spark.enabled:  # else the Spark collector is never imported (~1.5 MB, docs/performance.md)
            from monitor.collection.spark_source import SparkSource
            self.spark_source = SparkSource(config.spark, config.clusters, self.history, clock=clock)
        labels = FleetLabels(fleet.instance, fleet.owns_cluster) if fleet is not None else None
        self.exporter, self.metrics = snapshot_metrics(self.store.latest, registry=registry, fleet=labels,
                                                       partition_metrics=config.exporter.partition_metrics)
        self.alerting = build_alerting(config, self.store.latest, self.history.kafka, clock, scope=fleet)
        if self.alerting is not None:
            self.exporter.add_source(self.alerting.metric_families)
        self.collection = Collection(self.kafka_sources, self.spark_source,
                                     interval_seconds=config.collection.interval_seconds, clock=clock,
                                     store_health=self.history.write_status, publish=self._publish, fleet=fleet)
        if fleet is not None:
            self.exporter.add_source(fleet.metric_families)
            fleet.on_release = self._released
            fleet.on_hand_over = self._hand_over
            fleet.on_acquire = self.collection.wake
        self._publish_lock = threading.Lock()
        self._collected: Snapshot | None = None  # the last snapshot collected, before a fleet's cut
        # history.backend prometheus: the pages read the fleet's history from Prometheus (the
        # embedded file is still written: alert windows, restarts)
        self._prometheus = prometheus_reader(config, clock) if config.history.backend == "prometheus" else None
        self.web: WebServer | None = None
        self._services = Services()
        self._last_prune = 0.0

    def start(self, *, serve: bool = True, loop: bool = True) -> Monitor:
        # Its port is taken first: one that cannot be had fails the start before anything runs.
        web = WebServer(self.web_context(), self.config.web) if serve else None
        try:
            if self.fleet is not None:  # joined first, left last: the sources write their windows before
                self._services.start(self.fleet.membership)
            for source in (*self.kafka_sources, *([self.spark_source] if self.spark_source else [])):
                self._services.start(source)
            if self.alerting is not None:
                self._services.start(AlertDelivery(self.alerting))
            self.metrics.refresh()
            if loop:
                self._services.start(self.collection)
        except BaseException:
            if web is not None:
                web.stop()  # never served: its socket closes
            raise
        # The start's reading (the sources' replays) was this thread's: its connection and page
        # cache would otherwise be kept for as long as the monitor runs.
        self.history.release_reader()
        if web is not None:
            self.web = web
            self._services.start(web)
        return self

    def stop(self) -> None:
        """Stop what was started, last first, then close what was opened when built."""
        self._services.stop_all()
        self.collection.close()
        if self.alerting is not None:
            self.alerting.close()
        self.history.close()
        if self._prometheus is not None:
            self._prometheus[0].close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def run_cycle(self) -> Snapshot:
        """One collection cycle of every source, published (tests, benchmarks)."""
        return self.collection.run_cycle()

    def web_context(self) -> WebContext:
        """What the web layer reads."""
        settings = WebSettings(
            interval_seconds=self.config.collection.interval_seconds,
            stale_after_seconds=self.config.stale_after_seconds,
            internal_topics=frozenset(t for t in (self.config.spark.progress_topic,) if t)
            | {c.probe.topic for c in self.config.clusters if c.probe.enabled},
            spark_configured=self.spark_source is not None,
        )
        history = self._prometheus[1] if self._prometheus is not None else self.history.kafka
        return WebContext(snapshots=self.store, settings=settings, history=history,
                          alerts=self.alerting, metrics=self.metrics, clock=self.clock)

    def _publish(self, snapshot: Snapshot) -> None:
        """A new snapshot: the latest for readers, evaluated by the alert engine, serialised.
        In a fleet: cut to this replica's units, with the alert state of units taken over
        imported first and this replica's alert state written after."""
        with self._publish_lock:
            self._collected = snapshot
            if self.fleet is not None:
                snapshot = self.fleet.owned_view(snapshot)
            self.store.publish(snapshot)
            if self.alerting is not None:
                try:
                    if self.fleet is not None:
                        for data in self.fleet.take_alert_states().values():
                            self.alerting.import_unit(data)
                    with gc_paused(keep=True):  # a record, view and dicts per alert, no reference cycles
                        self.alerting.evaluate_once(snapshot.at)
                    if self.fleet is not None:
                        self.fleet.write_alert_states(self.alerting.export_units())
                except Exception:
                    log.exception("alert evaluation failed")
            self.metrics.refresh()
        self._prune(snapshot.at)
        review_frozen()  # now and then: cyclic garbage a freeze held back (collectors.memory)
        release_free_memory()  # the previous snapshot and serialisation are garbage now

    def _hand_over(self, partitions: frozenset[int]) -> None:
        """Partitions revoked in a rebalance: their units' alert state as it is now (what the
        receivers were told since the last cycle) is written for the next owner. Under the
        publish lock: no cycle evaluates meanwhile."""
        if self.alerting is None:
            return
        with self._publish_lock:
            try:
                self.fleet.hand_over_alert_states(self.alerting.export_units(), partitions)
            except Exception:
                log.exception("handing the alert state of partitions %s over failed", sorted(partitions))

    def _released(self, partitions: frozenset[int]) -> None:
        """Partitions another replica owns now (or may: fenced): their units' alerts are its to
        evaluate, and their series leave /metrics now rather than at the next cycle. Under the
        publish lock: a cycle being published does not write their alert states after this."""
        with self._publish_lock:
            if self.alerting is not None:
                units = {u for u in self.alerting.export_units() if self.fleet.units.partition(u) in partitions}
                if units:
                    self.alerting.release_units(units)
            if self._collected is not None:
                self.store.publish(self.fleet.owned_view(self._collected))
                self.metrics.refresh()

    def _prune(self, now: float) -> None:
        if now - self._last_prune < self.config.history.prune_interval_seconds:
            return
        self._last_prune = now
        try:
            self.history.prune(now)
        except HistoryError:
            pass  # History reports its own write failures (rate-limited)
