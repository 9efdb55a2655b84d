"""One Kafka cluster as a source: collector + offset windows + derived signals + history.

Lifecycle: `start()` replays recent history into the offset windows (rates, time-lag
interpolation and status windows continue across restarts), `cycle()` runs one collection and
returns the cluster's latest `ClusterState` (the last good one, marked stale, if the cycle
failed) with its `CollectorHealth`, `stop()` ends the collector process.

In a fleet (`fleet`), a cycle collects the replica's units only (`CollectScope`), continues the
groups it took over from the windows their last owner wrote, and writes its own groups' windows
every `fleet.state_interval_seconds` and when it stops.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Iterable

from collectors.kafka.settings import KafkaCollectorSettings
from collectors.kafka.process import IsolatedKafkaCollector
from collectors.kafka.signals import SignalSettings, TopicShapes, derive, next_empty_since
from collectors.kafka.windows import OffsetWindows
from collectors.memory import gc_paused
from collectors.models import ClusterState, CollectorHealth, ConsumerGroup, KafkaClusterSnapshot, KafkaLagView
from collectors.spark.lag import join_query_groups
from collectors.units import CollectScope
from monitor.collection.settings import CollectionConfig, KafkaClusterConfig
from monitor.fleet.fleet import Fleet
from monitor.fleet.state import GroupWindows, encode_group, export_group, import_group
from monitor.storage import History, HistoryError

if TYPE_CHECKING:
    from collectors.kafka.collector import KafkaCollector

log = logging.getLogger(__name__)


def collector_settings(cluster: KafkaClusterConfig) -> KafkaCollectorSettings:
    secrets = {key: ref.resolve(f"cluster {cluster.name}: client_secrets.{key}").get()
               for key, ref in cluster.client_secrets.items()}
    return KafkaCollectorSettings(
        cluster=cluster.name,
        bootstrap_servers=cluster.bootstrap_servers,
        client_config={**cluster.client, **secrets},
        secrets=tuple(secrets.values()),
        group_filter=cluster.groups.compile(),
        topic_filter=cluster.topics.compile(),
        include_internal_topics=cluster.include_internal_topics,
        request_timeout=cluster.request_timeout_seconds,
        max_in_flight_group_requests=cluster.max_in_flight_group_requests,
        batched_group_requests=cluster.batched_group_requests,
        exact_time_lag_partitions=cluster.exact_time_lag_partitions,
        remembered_reads_per_cycle=cluster.remembered_reads_per_cycle,
        read_budget_seconds=cluster.read_budget_seconds,
        isolation_level=cluster.isolation_level,
        group_isolation_levels=tuple(cluster.group_isolation_levels.items()),
        uncommitted_partitions=cluster.uncommitted_partitions,
        group_uncommitted_partitions=tuple(cluster.group_uncommitted_partitions.items()),
        topic_ids_per_cycle=cluster.topic_ids_per_cycle,
        topic_configs_every=cluster.topic_configs_every,
        log_dirs_every=cluster.log_dirs_every,
        probe=cluster.probe.settings(),
    )


class KafkaSource:
    kind = "kafka"

    def __init__(self, cluster: KafkaClusterConfig, collection: CollectionConfig, history: History,
                 *, clock=time.time, fleet: Fleet | None = None):
        self.name = f"kafka:{cluster.name}"
        self.cluster = cluster.name
        self._settings = collector_settings(cluster)
        self._collection = collection
        self._signal_settings = SignalSettings(
            rate_window=collection.rate_window_seconds,
            status_window=collection.status_window,
            empty_group_ttl=collection.empty_group_ttl_seconds,
        )
        self._history = history
        self._clock = clock
        self._collector: KafkaCollector | IsolatedKafkaCollector | None = None
        self.windows = OffsetWindows(status_window=collection.status_window)
        self._topic_shapes = TopicShapes()  # what derive made of idle topics, for the next cycle
        self._empty_since: dict[str, float] = {}
        self._empty_since_stored: dict[str, float] | None = None  # what the history holds, when known
        self._last_good: ClusterState | None = None
        self._health = CollectorHealth(name=self.name, kind=self.kind, up=False, last_attempt_at=0.0,
                                       last_success_at=None, duration_seconds=0.0)
        # In a fleet: what this replica collects of the cluster (its units), and the group
        # windows it hands over (docs/scaling.md).
        self._fleet = fleet
        self._scope: CollectScope | None = None
        self._windows_written_at = float("-inf")
        self._windows_written: set[str] = set()  # groups whose windows this replica wrote last

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        now = self._clock()
        since = now - max(self._collection.rate_window_seconds * 2, 3600.0)
        replayed = 0
        for at, end_offsets, committed, topic_ids in self._history.kafka.replay(self.cluster, since):
            self.windows.record(at, end_offsets, committed, topic_ids)
            replayed += 1
        self._empty_since = dict(self._history.kafka.empty_since(self.cluster))
        self._empty_since_stored = dict(self._empty_since)
        log.info("kafka cluster %s: replayed %d cycles of history", self.cluster, replayed)
        if self._collection.isolate_process:
            self._collector = IsolatedKafkaCollector(self._settings)
        else:  # the Kafka client libraries load only where the collector runs
            from collectors.kafka.collector import KafkaCollector

            self._collector = KafkaCollector(self._settings)

    def interrupt(self) -> None:
        """End a cycle in flight now (the monitor is stopping): it fails, as a failed cycle does."""
        if self._collector is not None:
            self._collector.interrupt()

    def stop(self) -> None:
        if self._fleet is not None and self._last_good is not None:  # the next owner continues from here
            self._write_windows(self._last_good, self._clock(), force=True)
        if self._collector is not None:
            self._collector.close()
            self._collector = None

    # -- one cycle --------------------------------------------------------------------------------

    def collect_raw(self) -> KafkaClusterSnapshot:
        """The I/O half of a cycle (runs in the collector's child process)."""
        assert self._collector is not None, "start() first"
        if self._fleet is None:
            return self._collector.collect()
        self._scope = self._fleet.scope(self.cluster)
        return self._collector.collect(self._scope)

    def cycle(self) -> tuple[ClusterState | None, CollectorHealth]:
        return self.ingest(self.collect_raw())

    def ingest(self, raw: KafkaClusterSnapshot, extra_groups: Iterable[ConsumerGroup] = ()
               ) -> tuple[ClusterState | None, CollectorHealth]:
        """Derive signals from a raw snapshot, store them, update health.

        `extra_groups` (Spark queries as consumer groups) join the derivation; a real group of
        the same name without members (the streamscope listener commits one) is shown as the
        query (`collectors.spark.lag.join_query_groups`).
        """
        h = replace(self._health, **self._restart_health())
        now = self._clock()
        if raw.ok:
            raw = replace(raw, groups=join_query_groups(raw.groups, extra_groups))
            if self._fleet is not None and self._scope is not None:
                self._continue_groups(self._fleet.take_windows(self.cluster, self._scope))
            with gc_paused(keep=True):  # 100,000s of new objects, kept a cycle, no reference cycles
                self.windows.record_snapshot(raw)
                self._empty_since = next_empty_since(raw, self._empty_since, now)
                view = derive(raw, self.windows, now, self._signal_settings, self._empty_since, self._topic_shapes)
                state = ClusterState(raw=raw, lag=view, probe=raw.probe)
                self._store_empty_since()
                self._store(lambda: self._history.kafka.append(state))
            self._last_good = state
            if self._fleet is not None and self._scope is not None:
                self._fleet.collected(self.cluster, self._scope)
                self._write_windows(state, now)
            self._health = replace(h, up=True, last_attempt_at=raw.started_at, last_success_at=raw.finished_at,
                                   duration_seconds=raw.finished_at - raw.started_at, error=None, error_kind=None,
                                   cycles_total=h.cycles_total + 1)
            return state, self._health
        self._health = replace(h, up=False, last_attempt_at=raw.started_at,
                               duration_seconds=raw.finished_at - raw.started_at, error=raw.error,
                               error_kind=raw.error_kind, cycles_total=h.cycles_total + 1, failures_total=h.failures_total + 1)
        self._store(lambda: self._history.kafka.append_failure(self.cluster, raw.started_at, raw.error))
        # The probe runs beside the collection: its counters are fresh even when the cycle failed.
        if self._last_good is None:
            empty = KafkaLagView(cluster=self.cluster, at=raw.started_at, groups=(), topics=())
            return ClusterState(raw=raw, lag=empty, stale=True, probe=raw.probe), self._health
        return replace(self._last_good, stale=True, probe=raw.probe), self._health

    # -- fleet: handing groups over ----------------------------------------------------------------

    def _continue_groups(self, states: dict[str, GroupWindows]) -> None:
        """Groups taken over: their windows, rates, status and Empty time go on from the states
        their last owner wrote."""
        for group, state in states.items():
            import_group(self.windows, state)
            if state.empty_since is not None:
                self._empty_since[group] = state.empty_since
        if states:
            log.info("kafka cluster %s: continuing %d group(s) from their last owner", self.cluster, len(states))

    def _write_windows(self, state: ClusterState, now: float, *, force: bool = False) -> None:
        """Every `fleet.state_interval_seconds`: the windows of the groups collected (a tombstone
        for each group gone from the cluster, so the topic does not keep it)."""
        if not force and now - self._windows_written_at < self._fleet.config.state_interval_seconds:
            return
        self._windows_written_at = now
        records: dict[str, bytes | None] = {}
        for g in state.lag.groups:
            value = encode_group(export_group(self.windows, g.group, ((p.topic, p.partition) for p in g.partitions),
                                              self._empty_since.get(g.group)))
            if value is not None:
                records[g.group] = value
        gone: set[str] = set()
        if state.raw.groups_complete and self._scope is not None:
            listed = {g.name for g in state.raw.groups}
            gone = {g for g in self._windows_written - set(records) if g not in listed and self._scope.owns_group(g)}
        self._windows_written = set(records)
        self._fleet.write_windows(self.cluster, {**records, **dict.fromkeys(gone)})

    def _store_empty_since(self) -> None:
        """Written when it changed: a group stays Empty for hours, and its row with it."""
        if self._empty_since == self._empty_since_stored:
            return
        current = dict(self._empty_since)
        try:
            self._history.kafka.set_empty_since(self.cluster, current)
        except HistoryError:  # logged and reported by History; written again next cycle
            return
        self._empty_since_stored = current

    @staticmethod
    def _store(write) -> None:
        """History is optional at run time: a failed write (History logs and reports it) costs the
        stored history of this cycle, never the cycle; windows and rates go on from memory."""
        try:
            write()
        except HistoryError:
            pass

    def _restart_health(self) -> dict:
        """Restarts of the collector's child process, for the health (none when in-process)."""
        if not isinstance(self._collector, IsolatedKafkaCollector):
            return {}
        return {"restarts": tuple(self._collector.restarts_by_reason.items()),
                "last_exit": self._collector.last_exit}

    @property
    def health(self) -> CollectorHealth:
        return self._health
