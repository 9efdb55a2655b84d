"""/metrics content: a custom collector over the latest `Snapshot`, serialised once per cycle.

`SnapshotCollector` yields fresh families from whatever snapshot is current (health, history,
Kafka and Spark families from `collectors.exporter` and `collectors.spark.exporter`, plus the
alert engine's); `MetricsCache.refresh` serialises them once per collection cycle and scrapes
serve the cached bytes, so any number of scrapers cost nothing and a scrape never triggers I/O.
This is the only module that imports an exporter.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from collectors.exporter import health_families, history_families, kafka_families
from collectors.models import Snapshot
from collectors.spark.exporter import spark_families
from monitor import __version__

SnapshotSource = Callable[[], Snapshot | None]
FamilySource = Callable[[], Iterable[Metric]]


class SnapshotCollector(Collector):
    """Yields streamscope's metric families from the latest snapshot."""

    def __init__(self, source: SnapshotSource, *, partition_metrics: bool = False,
                 extra_sources: Iterable[FamilySource] = ()):
        self._source = source
        self._partition_metrics = partition_metrics
        self._extra_sources = list(extra_sources)

    def add_source(self, source: FamilySource) -> None:
        """More families (alerts) from subsystems that own their own data."""
        self._extra_sources.append(source)

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("streamscope_build", "streamscope version.", labels=[])
        info.add_metric([], {"version": __version__})
        yield info
        snapshot = self._source()
        if snapshot is not None:
            yield from health_families(snapshot)
            if snapshot.history is not None:
                yield from history_families(snapshot.history)
            yield from kafka_families(snapshot.clusters, partition_metrics=self._partition_metrics)
            if snapshot.spark:
                yield from spark_families(snapshot.spark)
        for source in self._extra_sources:
            yield from source()


class MetricsCache:
    """Serialises a registry once per cycle; scrapes read the cached bytes."""

    def __init__(self, registry: CollectorRegistry):
        self._registry = registry
        self._lock = threading.Lock()
        self._payload = b""
        self.last_refresh_seconds = 0.0

    def refresh(self) -> bytes:
        started = time.perf_counter()
        payload = generate_latest(self._registry)
        with self._lock:
            self._payload = payload
        self.last_refresh_seconds = time.perf_counter() - started
        return payload

    def latest(self) -> bytes:
        with self._lock:
            return self._payload


def snapshot_metrics(source: SnapshotSource, *, partition_metrics: bool,
                     registry: CollectorRegistry | None = None) -> tuple[SnapshotCollector, MetricsCache]:
    """The collector over `source`, registered, and the cache that serialises it."""
    registry = registry or CollectorRegistry(auto_describe=False)
    collector = SnapshotCollector(source, partition_metrics=partition_metrics)
    registry.register(collector)
    return collector, MetricsCache(registry)
