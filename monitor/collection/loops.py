"""The collection: every source runs its own loop, a publisher turns their latest results into
one `Snapshot`.

Every source (each Kafka cluster, Spark) stores its latest result in a slot when its own cycle
ends, so a hung or slow cluster is stale alone (its slot keeps its last state and ages). A
publisher thread builds a Snapshot from the slots whenever one changed and hands it on
(`publish`: store it, evaluate alerts, serialise metrics). `run_cycle()` does one round of all of
it synchronously, for tests, benchmarks and `--once`-style use.

Spark is collected alongside Kafka so that each Structured Streaming query's source offsets can
join the Kafka derivation as a consumer group of kind "spark-query": its lag in messages and
seconds, status and ETA come from the same code as any group's.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from collectors.memory import release_free_memory
from collectors.models import ClusterState, CollectorHealth, Snapshot, StoreHealth
from collectors.spark.models import SparkAppSnapshot
from collectors.spark.views import spark_views
from monitor.collection.kafka_source import KafkaSource
from monitor.fleet.fleet import Fleet

if TYPE_CHECKING:  # imported only where Spark is configured (monitor.app.root)
    from monitor.collection.spark_source import SparkSource

log = logging.getLogger(__name__)


class Collection:
    """The collection loops as a `Service`: `start()` runs them, `stop()` ends them."""

    def __init__(self, kafka_sources: Sequence[KafkaSource], spark_source: SparkSource | None, *,
                 interval_seconds: float, clock: Callable[[], float],
                 store_health: Callable[[], StoreHealth | None], publish: Callable[[Snapshot], None],
                 fleet: Fleet | None = None):
        self._kafka_sources = list(kafka_sources)
        self._spark_source = spark_source
        self._fleet = fleet  # in a fleet, Spark is collected by the owner of its unit only
        self._interval = interval_seconds
        self._clock = clock
        self._store_health = store_health
        self._publish_to = publish
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(self._kafka_sources) + 1), thread_name_prefix="cycle")
        self._slots_lock = threading.Lock()
        self._kafka_slots: dict[str, tuple[ClusterState | None, CollectorHealth]] = {}
        self._spark_apps: tuple[SparkAppSnapshot, ...] = ()
        self._spark_health: tuple[CollectorHealth, ...] = ()
        self._publish_lock = threading.Lock()
        self._publish_wanted = threading.Event()
        self._wakes: list[threading.Event] = []  # one per source loop: `wake()` starts their next cycle now

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        for source in self._kafka_sources:
            self._spawn(f"collect-{source.name}", lambda s=source: self._kafka_cycle(s, self._latest_spark_apps))
        if self._spark_source is not None:
            self._spawn("collect-spark", self._spark_cycle)
        publisher = threading.Thread(target=self._publish_loop, name="publish", daemon=True)
        publisher.start()
        self._threads.append(publisher)

    def wake(self) -> None:
        """Start every source's next cycle now rather than at its interval (a fleet replica that
        was just given units collects them at once)."""
        for event in self._wakes:
            event.set()

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        self._publish_wanted.set()
        # A cycle waiting on an unreachable cluster would hold the stop for its timeouts (51 s at
        # the default 30 s request timeout, measured): `docker stop` kills after 10 s.
        for source in self._kafka_sources:
            source.interrupt()
        for thread in self._threads:
            thread.join(timeout=self._interval + 60)

    def close(self) -> None:
        """Release the threads `run_cycle` uses (started or not, the loops are stopped first)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _spawn(self, name: str, cycle: Callable[[], object]) -> None:
        wake = threading.Event()
        self._wakes.append(wake)

        def loop() -> None:
            while not self._stop.is_set():
                started = time.monotonic()
                wake.clear()
                try:
                    cycle()
                except Exception:  # a source's loop survives anything its cycle throws
                    log.exception("%s: collection cycle failed", name)
                self._publish_wanted.set()
                wake.wait(max(0.0, self._interval - (time.monotonic() - started)))

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
            # The cycle's garbage (the previous snapshot, serialised metrics) is free now; without
            # this glibc keeps its pages (10 MB of 150 at 1,000 groups x 10 partitions, measured).
            release_free_memory()

    # -- one cycle --------------------------------------------------------------------------------

    def run_cycle(self) -> Snapshot:
        """One cycle of every source in parallel, then publish."""
        spark_future = self._pool.submit(self._spark_cycle) if self._spark_source else None
        futures = [self._pool.submit(self._kafka_cycle, source,
                                     spark_future.result if spark_future else self._latest_spark_apps)
                   for source in self._kafka_sources]
        for future in futures:
            future.result()
        if spark_future is not None:
            spark_future.result()
        return self._publish()

    def _latest_spark_apps(self) -> tuple[SparkAppSnapshot, ...]:
        with self._slots_lock:
            return self._spark_apps

    def _spark_cycle(self) -> tuple[SparkAppSnapshot, ...]:
        if self._fleet is not None and not self._fleet.owns_spark():
            with self._slots_lock:
                self._spark_apps, self._spark_health = (), ()
            return ()
        apps, health = self._spark_source.cycle()
        if self._fleet is not None:
            self._fleet.spark_collected()
        with self._slots_lock:
            self._spark_apps, self._spark_health = tuple(apps), tuple(health)
        return apps

    def _kafka_cycle(self, source: KafkaSource, spark_apps: Callable[[], tuple[SparkAppSnapshot, ...]]) -> None:
        raw = source.collect_raw()
        if not raw.ok and self._stop.is_set():
            return  # ended by `stop` (`interrupt`): the cluster did not fail, so nothing is recorded
        extra = ()
        if self._spark_source is not None:
            extra = self._spark_source.consumer_groups(spark_apps(), source.cluster, topics={t.name for t in raw.topics})
        state, health = source.ingest(raw, extra_groups=extra)
        with self._slots_lock:
            self._kafka_slots[source.name] = (state, health)

    def _publish(self) -> Snapshot:
        with self._publish_lock:
            with self._slots_lock:
                slots = [self._kafka_slots.get(s.name) for s in self._kafka_sources]
                spark, spark_health = self._spark_apps, self._spark_health
            clusters = tuple(state for state, _ in filter(None, slots) if state is not None)
            health = tuple(h for _, h in filter(None, slots)) + spark_health
            snapshot = Snapshot(at=self._clock(), clusters=clusters, health=health, spark=spark_views(spark, clusters),
                                history=self._store_health())
            self._publish_to(snapshot)
            return snapshot
