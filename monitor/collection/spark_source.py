"""Spark as a source of the monitor: SparkCollector + progress feed + history.

`cycle()` runs one Spark collection (driver UIs, port scan, standalone master, History Server,
and the listener's progress topic when `spark.progress_topic` is set), stores it in history and
returns the app snapshots with the collector health entries. `consumer_groups(apps, cluster,
topics)` turns every Structured Streaming query that reads Kafka into a consumer group of kind
"spark-query" for the Kafka derivation of one cluster (docs/architecture.md, "Spark queries as
Kafka consumer groups").
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

from collectors.models import CollectorHealth, ConsumerGroup
from collectors.spark.collector import SparkCollector
from collectors.spark.defaults import DEFAULT_MAX_BATCHES, DEFAULT_TIMEOUT, FEED_HEALTH_NAME
from collectors.spark.discovery import PortRangeTarget, Target, parse_target
from collectors.spark.lag import query_as_consumer_group
from collectors.spark.models import QueryState, SparkAppSnapshot
from collectors.spark.progress import ProgressFeed
from collectors.spark.views import spark_views
from monitor.collection.kafka_source import collector_settings
from monitor.collection.settings import KafkaClusterConfig, SparkConfig
from monitor.settings import ConfigError
from monitor.storage import History, HistoryError

log = logging.getLogger(__name__)

QUERY_GROUP_KIND = "spark-query"

_GROUP_STATE = {
    QueryState.ACTIVE: "Stable",
    QueryState.TERMINATED: "Empty",
    QueryState.FAILED: "Dead",
    QueryState.UNKNOWN: "Unknown",
}


def build_targets(spark: SparkConfig) -> tuple[Target, ...]:
    """SparkCollector targets of the `spark` section; ConfigError naming the key when invalid."""
    targets: list[Target] = []

    def add(key: str, make: Callable[[], Target]) -> None:
        try:
            t = make()
        except ValueError as e:
            raise ConfigError(f"invalid configuration: {key}: {e}") from None
        if any(t.name == other.name for other in targets):
            raise ConfigError(f"invalid configuration: {key}: duplicate Spark target {t.name}")
        targets.append(t)

    for i, url in enumerate(spark.ui_urls):
        add(f"spark.ui_urls.{i}", lambda url=url: parse_target(url))
    if spark.scan_host:
        add("spark.scan_ports", lambda: PortRangeTarget(spark.scan_host.strip("[]"), *spark.scan_port_range))
    if spark.master_url:
        url = spark.master_url.strip()
        add("spark.master_url", lambda: parse_target(
            url if url.startswith(("master=", "master+proxy=")) else f"master={url}"))
    if spark.history_server_url:
        url = spark.history_server_url.strip()
        add("spark.history_server_url", lambda: parse_target(
            url if url.startswith("history=") else f"history={url}"))
    return tuple(targets)


def progress_cluster(spark: SparkConfig, clusters: Sequence[KafkaClusterConfig]) -> KafkaClusterConfig | None:
    """The Kafka cluster the progress topic is read from: `spark.progress_cluster`, else the
    first configured cluster. ConfigError when the topic is set and no cluster fits."""
    if not spark.progress_topic:
        return None
    if spark.progress_cluster:
        for c in clusters:
            if c.name == spark.progress_cluster:
                return c
        raise ConfigError(
            f"invalid configuration: spark.progress_cluster: no cluster named "
            f"{spark.progress_cluster!r} (clusters: {', '.join(c.name for c in clusters) or 'none'})")
    if not clusters:
        raise ConfigError("invalid configuration: spark.progress_topic: no Kafka cluster is "
                          "configured to read it from (add one under clusters)")
    return clusters[0]


class SparkSource:
    """One SparkCollector for all configured Spark targets (a `Service`); `clusters` are the
    Kafka clusters the queries may read (and the progress topic is read from)."""

    name = "spark"
    kind = "spark"

    def __init__(self, spark: SparkConfig, clusters: Sequence[KafkaClusterConfig], history: History, *,
                 clock: Callable[[], float] = time.time, feed: ProgressFeed | None = None,
                 max_batches: int = DEFAULT_MAX_BATCHES):
        self._spark = spark
        self._clusters = tuple(clusters)
        self._history = history
        self._clock = clock
        self.targets = build_targets(spark)
        self._feed_cluster = progress_cluster(spark, clusters)
        self._feed: Any = feed
        self._owns_feed = False
        self._max_batches = max_batches
        self._collector: SparkCollector | None = None
        self._last_apps: tuple[SparkAppSnapshot, ...] = ()

    @property
    def collector(self) -> SparkCollector | None:
        return self._collector

    @property
    def feed(self) -> Any:
        return self._feed

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._collector is not None:
            return
        if self._feed is None and self._feed_cluster is not None:
            from collectors.spark.feed_kafka import KafkaProgressFeed  # the Kafka client: only when used

            settings = collector_settings(self._feed_cluster)
            self._feed = KafkaProgressFeed(settings.bootstrap_servers, self._spark.progress_topic,
                                           client_config=settings.client_config)
            self._owns_feed = True
            log.info("spark: reading listener progress from topic %s on cluster %s",
                     self._spark.progress_topic, self._feed_cluster.name)
        t = float(self._spark.request_timeout_seconds)
        self._collector = SparkCollector(self.targets, timeout=(min(DEFAULT_TIMEOUT[0], t), t), feed=self._feed,
                                         max_batches=self._max_batches, clock=self._clock,
                                         down_app_ttl=float(self._spark.down_app_ttl_seconds))

    def stop(self) -> None:
        collector, self._collector = self._collector, None
        if collector is not None:
            collector.close()
        if self._feed is not None and self._owns_feed:
            try:
                self._feed.close()
            except Exception:  # noqa: BLE001
                log.exception("spark: closing the progress feed failed")
            self._feed = None
            self._owns_feed = False

    # -- one cycle ------------------------------------------------------------------------------

    def cycle(self) -> tuple[tuple[SparkAppSnapshot, ...], tuple[CollectorHealth, ...]]:
        """Collect, store in history, return (app snapshots, health entries)."""
        assert self._collector is not None, "start() first"
        now = self._clock()
        try:
            apps = self._collector.collect(now)
        except Exception:  # the collector never raises by design; a bug must not stop the loop
            log.exception("spark: collection cycle failed")
            apps = tuple(replace(a, stale=True, collected_at=now) for a in self._last_apps)
        self._last_apps = apps
        health = self._health()
        try:
            self._history.spark.append(now, spark_views(apps))
        except HistoryError:
            pass  # History logs and reports its write failures (rate-limited); collection goes on
        return apps, health

    def _health(self) -> tuple[CollectorHealth, ...]:
        out = []
        for h in self._collector.health() if self._collector else ():
            feed = self._feed
            if h.name == FEED_HEALTH_NAME and feed is not None and h.up:
                healthy = getattr(feed, "healthy", True)
                err = getattr(feed, "last_error", None)
                if not healthy:
                    h = replace(h, up=False, error=err or "progress topic unreachable")
                elif getattr(feed, "assigned_partitions", (0,)) == () and err:
                    h = replace(h, error=err)  # topic not there yet: not an outage
            out.append(h)
        return tuple(out)

    # -- Spark queries as Kafka consumer groups -------------------------------------------------

    def consumer_groups(self, apps: Iterable[SparkAppSnapshot], cluster: str,
                        topics: set[str] | frozenset[str] | None = None) -> tuple[ConsumerGroup, ...]:
        """Every Structured Streaming query reading Kafka topics of `cluster`, as a consumer
        group of kind "spark-query" (see the module docstring)."""
        pinned = self._spark.progress_cluster
        if pinned:
            if cluster != pinned:
                return ()
            topics = None
        elif topics is None and len(self._clusters) > 1:
            topics = self._stored_topics(cluster)
        best: dict[str, tuple[tuple, ConsumerGroup]] = {}
        for snap in apps:
            for q in snap.queries:
                g = query_as_consumer_group(q)
                if g is None:
                    continue
                offsets = g.offsets
                if topics is not None:
                    offsets = tuple(o for o in offsets if o.topic in topics)
                    if not offsets:
                        continue
                g = replace(g, offsets=offsets, state=_GROUP_STATE.get(q.state, "Unknown"),
                            members=(), kind=QUERY_GROUP_KIND)
                rank = (q.state == QueryState.ACTIVE, g.offsets_fetched_at)
                cur = best.get(g.name)
                if cur is None or rank > cur[0]:
                    if cur is not None:
                        log.debug("spark: two queries map to group %s; keeping the %s one",
                                  g.name, "active" if rank[0] else "newer")
                    best[g.name] = (rank, g)
        return tuple(best[name][1] for name in sorted(best))

    def _stored_topics(self, cluster: str) -> set[str]:
        try:
            return {t["topic"] for t in self._history.kafka.topics_latest(cluster)}
        except HistoryError:
            log.exception("spark: could not read the topics of cluster %s from history", cluster)
            return set()
