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
from dataclasses import dataclass

try:  # ISA-L's deflate: the same gzip format, ~6x faster than zlib's at level 1 (see _gzip)
    from isal import isal_zlib as _deflate
except ImportError:  # a platform without its wheel: the standard library's
    import zlib as _deflate
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from collectors.exporter import health_families, history_families, kafka_families, kafka_text_families
from collectors.memory import gc_paused
from collectors.metrics_text import TextFamily, TextWriter
from collectors.models import Snapshot
from collectors.spark.exporter import spark_families
from monitor import __version__
from monitor.web import gzip_segments

SnapshotSource = Callable[[], Snapshot | None]
FamilySource = Callable[[], Iterable[Metric]]
# Text written directly: bytes, or families (`collectors.metrics_text`) that `MetricsCache` writes
TextSource = Callable[[], "bytes | list[TextFamily]"]


@dataclass(frozen=True)
class FleetLabels:
    """A fleet replica's /metrics: every series carries its `instance`, and a cluster's
    cluster-wide series (the Kafka families without a `group` label, but the collector's own
    statistics) come only from the owner of the cluster's unit."""

    instance: str
    owns_cluster: Callable[[str], bool]

    def metric(self, metric: Metric) -> Metric:
        metric.samples = [s._replace(labels={**s.labels, "instance": self.instance}) for s in metric.samples]
        return metric

    def text_family(self, family: TextFamily) -> TextFamily:
        rows = family.rows
        if "group" not in family.labels and not family.name.startswith("streamscope_kafka_collector_") \
                and "cluster" in family.labels:
            at = family.labels.index("cluster")
            rows = [row for row in rows if self.owns_cluster(row[0][at])]
        return TextFamily(family.name, family.kind, family.doc, family.labels + ("instance",),
                          [(values + (self.instance,), value) for values, value in rows])


class SnapshotCollector(Collector):
    """Yields streamscope's metric families from the latest snapshot."""

    def __init__(self, source: SnapshotSource, *, partition_metrics: bool = False,
                 extra_sources: Iterable[FamilySource] = (), kafka_as_text: bool = False,
                 fleet: FleetLabels | None = None):
        self._source = source
        self._fleet = fleet
        self._partition_metrics = partition_metrics
        self._extra_sources = list(extra_sources)
        # The Kafka families are most of /metrics (a few series per group and topic): with
        # `kafka_as_text`, `MetricsCache` writes them itself (collectors.metrics_text, same bytes,
        # a fraction of the cost) from the snapshot the rest was collected from.
        self._kafka_as_text = kafka_as_text
        self._collected: Snapshot | None = None

    def add_source(self, source: FamilySource) -> None:
        """More families (alerts) from subsystems that own their own data."""
        self._extra_sources.append(source)

    def collect(self) -> Iterator[Metric]:
        if self._fleet is None:
            yield from self._families()
        else:
            yield from map(self._fleet.metric, self._families())

    def _families(self) -> Iterator[Metric]:
        info = InfoMetricFamily("streamscope_build", "streamscope version.", labels=[])
        info.add_metric([], {"version": __version__})
        yield info
        snapshot = self._source()
        if self._kafka_as_text:
            self._collected = snapshot  # for `kafka_text`, which lets it go
        if snapshot is not None:
            yield from health_families(snapshot)
            if snapshot.history is not None:
                yield from history_families(snapshot.history)
            if not self._kafka_as_text:
                yield from kafka_families(snapshot.clusters, partition_metrics=self._partition_metrics)
            if snapshot.spark:
                yield from spark_families(snapshot.spark)
        for source in self._extra_sources:
            yield from source()

    def kafka_text(self) -> list[TextFamily]:
        """The Kafka families of the snapshot the last `collect()` used, for `MetricsCache` to
        write as exposition text.

        The snapshot is not kept past this: held here, the last cycle's snapshot (its view, its
        records) stayed alive while the next one was published and its alerts evaluated, which set
        the parent's peak (docs/performance.md, the thirty-second pass)."""
        snapshot, self._collected = self._collected, None
        if not self._kafka_as_text or snapshot is None:
            return []
        families = kafka_text_families(snapshot.clusters, partition_metrics=self._partition_metrics)
        if self._fleet is not None:
            families = [self._fleet.text_family(f) for f in families]
        return families


# gzip level 1: a 20 MB /metrics compresses ~20x (zlib: ~60 ms; level 6 ~8% smaller at ~3x the
# time). ISA-L's levels are 0-3; its level 1 is ~4% larger than zlib's, in a sixth of the time.
GZIP_LEVEL = gzip_segments.LEVEL  # one level for the copy made at once and family by family
_GZIP_WBITS = 16 + 15  # a gzip stream (header, modification time 0, CRC-32), 32 KiB window


class MetricsCache:
    """Serialises a registry once per cycle (plus text written directly, `text_sources`, called
    after the registry was collected); scrapes read the cached bytes.

    A gzip copy (`latest_gzip`, for scrapers that accept it, as Prometheus does) is compressed at
    most once per payload: by the first gzip scrape, or by `refresh` itself when a gzip scrape
    came since the previous refresh, so a regular gzip scraper does not wait for compression and
    nothing is compressed while no scraper asks for it. `refresh` makes it family by family
    (`gzip_segments`): a family unchanged since the last refresh is neither written nor
    compressed again.

    Only the forms scrapers asked for since the previous refresh are kept: with gzip scrapers
    alone, the plain bytes (3 MB at 1,000 groups x 10 partitions, 25 MB at 10,000 groups) are not
    made, and a plain scrape of that payload decompresses it (once)."""

    def __init__(self, registry: CollectorRegistry, text_sources: Iterable[TextSource] = ()):
        self._registry = registry
        self._text_sources = list(text_sources)
        self._writer = TextWriter()
        self._segments = gzip_segments.GzipSegments() if gzip_segments.available else None
        self._lock = threading.Lock()
        self._compress_lock = threading.Lock()  # one compression at a time, so one per payload
        # the latest payload: plain, gzip, or both; never neither
        self._plain: bytes | None = b""
        self._gzip: bytes | None = None
        self._gzip_asked = False
        self._plain_asked = False
        self.last_refresh_seconds = 0.0

    def refresh(self) -> bytes | None:
        """Serialise the latest families. Returns the plain payload, or None when only gzip
        scrapers asked since the last refresh: then only the gzip copy is made (`latest()`
        decompresses it for a plain scrape)."""
        started = time.perf_counter()
        gzip_asked, plain_asked = self._gzip_asked, self._plain_asked
        self._gzip_asked = self._plain_asked = False
        with gc_paused():  # a row tuple per series, no reference cycles (collectors.memory)
            parts = [generate_latest(self._registry), *(source() for source in self._text_sources)]
            if gzip_asked and self._segments is not None:
                gzipped = self._segments.gzip(_flat(parts))
                made = _deflate.decompress(gzipped, wbits=_GZIP_WBITS) if plain_asked else None
            else:
                # one join: a 20 MB payload is copied once, not once per concatenation
                made = b"".join([part if isinstance(part, bytes) else self._writer.render(part).encode()
                                 for part in parts])
                gzipped = _gzip(made) if gzip_asked else None
            del parts
        self.last_refresh_seconds = time.perf_counter() - started
        with self._lock:
            self._plain, self._gzip = (made if gzipped is None or plain_asked else None), gzipped
        return made

    def latest(self) -> bytes:
        self._plain_asked = True
        with self._lock:
            plain, gzipped = self._plain, self._gzip
        if plain is not None:
            return plain
        plain = _deflate.decompress(gzipped, wbits=_GZIP_WBITS)
        with self._lock:
            if self._gzip is gzipped:
                self._plain = plain
        return plain

    def latest_gzip(self) -> bytes:
        """The latest payload, gzip-compressed (compressed here if `refresh` did not)."""
        self._gzip_asked = True
        with self._compress_lock:
            with self._lock:
                plain, gzipped = self._plain, self._gzip
            if gzipped is None:
                gzipped = _gzip(plain)
                with self._lock:
                    if self._plain is plain:
                        self._gzip = gzipped
            return gzipped


def _flat(parts: list) -> Iterable:
    """Bytes parts and the families of family lists, in order."""
    for part in parts:
        if isinstance(part, bytes):
            yield part
        else:
            yield from part


def _gzip(payload: bytes) -> bytes:
    """The payload gzip-compressed, by ISA-L where installed: at 1,000 groups (2.3 MB) 0.8 against
    4.7 ms of CPU with zlib, 103 against 99 KiB (docs/performance.md, the thirtieth pass)."""
    return _deflate.compress(payload, GZIP_LEVEL, wbits=_GZIP_WBITS)


def snapshot_metrics(source: SnapshotSource, *, partition_metrics: bool, registry: CollectorRegistry | None = None,
                     fleet: FleetLabels | None = None) -> tuple[SnapshotCollector, MetricsCache]:
    """The collector over `source`, registered, and the cache that serialises it."""
    registry = registry or CollectorRegistry(auto_describe=False)
    collector = SnapshotCollector(source, partition_metrics=partition_metrics, kafka_as_text=True, fleet=fleet)
    registry.register(collector)
    return collector, MetricsCache(registry, text_sources=[collector.kafka_text])
