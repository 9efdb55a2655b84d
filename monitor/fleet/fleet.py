"""A replica's view of its fleet: what it owns, what it collects, what it exports, whose alerts
it evaluates, and what it hands over (docs/scaling.md).

    Kafka group membership ──► owned partitions ──► units (collectors.units)
                                     │
        scope(cluster) ◄─────────────┤  the collector lists only the replica's groups
        owned_view(snapshot) ◄───────┤  /metrics, alerts and pages see only its units
        alert scope ◄────────────────┘  one owner per alert

On assignment the units' last states are read back from the coordination topic (`acquired`):
group windows wait for the cluster's next cycle whose scope includes them (`take_windows`),
alert states for the first published snapshot that collected their unit (`take_alert_states`),
so an alert is never evaluated on a unit not collected yet (it would resolve). On revocation or
loss (`released`) the units' alerts are dropped without a transition (`on_release`).
Owners write group windows every `state_interval_seconds` (and when they stop), alert states
whenever they change.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from collectors.models import ClusterState, Snapshot
from collectors.units import SPARK_UNIT, CollectScope, UnitMap, cluster_unit
from monitor.fleet.settings import FleetConfig
from monitor.fleet.state import (GroupWindows, StateError, alerts_key, decode, decode_group, encode, parse_key,
                                 windows_key)

if TYPE_CHECKING:
    from monitor.fleet.membership import MembershipSettings

log = logging.getLogger(__name__)

_SPARK = "\0spark"  # the Spark collection's entry among the clusters' collected partitions


def default_instance(port: int) -> str:
    """<host name>:<web port>: what Prometheus calls a target, unique per replica."""
    return f"{socket.gethostname()}:{port}"


class Fleet:
    def __init__(self, config: FleetConfig, units: UnitMap, membership: MembershipSettings, *,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.units = units
        self.instance = membership.instance
        from monitor.fleet.membership import FleetMembership  # the Kafka client: only in a fleet

        self.membership = FleetMembership(membership, self)
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[int, dict[str, bytes]] = {}  # partition -> windows records read back
        self._alerts: dict[int, dict[str, bytes]] = {}  # partition -> alert records read back
        self._collected: dict[str, frozenset[int]] = {}  # cluster -> partitions its last good cycle collected
        self._written_alerts: dict[str, bytes | None] = {}  # unit -> last alert record written
        self.on_release: Callable[[frozenset[int]], None] | None = None  # the alert side drops their units
        # a graceful revocation: the alert side writes their units' last state first
        self.on_hand_over: Callable[[frozenset[int]], None] | None = None
        self.on_acquire: Callable[[], None] | None = None  # the collection starts a cycle at once
        self.takeovers = 0  # units whose state was read back and taken over

    # -- ownership (OwnershipListener) -------------------------------------------------------------

    def acquired(self, partition: int, states: Mapping[str, bytes]) -> None:
        windows, alerts = {}, {}
        for key, value in states.items():
            try:
                kind = parse_key(key)[0]
            except StateError:
                continue
            (windows if kind == "w" else alerts)[key] = value
        with self._lock:
            self._windows[partition] = windows
            self._alerts[partition] = alerts
        log.info("fleet: %s owns partition %d (%d group windows, %d alert states to continue from)",
                 self.instance, partition, len(windows), len(alerts))
        if self.on_acquire is not None:
            self.on_acquire()

    def released(self, partitions: frozenset[int], lost: bool) -> None:
        # Revoked in a rebalance, the partitions go to their new owner once this returns: what
        # was told since the last cycle's write (a notification sent by the delivery thread)
        # must reach it, or it tells the receivers again. Lost ones may be another's already.
        if not lost and self.on_hand_over is not None:
            self.on_hand_over(partitions)
        with self._lock:
            for p in partitions:
                self._windows.pop(p, None)
                self._alerts.pop(p, None)
            self._collected = {c: ps - partitions for c, ps in self._collected.items()}
            for unit in [u for u in self._written_alerts if self.units.partition(u) in partitions]:
                del self._written_alerts[unit]
        if self.on_release is not None:
            self.on_release(partitions)

    def hand_over_alert_states(self, states: Mapping[str, dict], partitions: frozenset[int]) -> None:
        """The last alert states of `partitions`' units, written and acknowledged (within the
        request timeout) before the partitions go to their next owner."""
        self.write_alert_states(states, partitions)
        left = self.membership.flush(self.membership.settings.request_timeout)
        if left:
            log.warning("fleet: %d state records not acknowledged before handing partitions %s over", left,
                        sorted(partitions))

    def owned(self) -> frozenset[int]:
        return self.membership.owned()

    def owns_unit(self, unit: str) -> bool:
        return self.units.partition(unit) in self.owned()

    # -- collection ----------------------------------------------------------------------------------

    def scope(self, cluster: str) -> CollectScope:
        return CollectScope(cluster, self.units, self.owned())

    def owns_spark(self) -> bool:
        return self.owns_unit(SPARK_UNIT)

    def take_windows(self, cluster: str, scope: CollectScope) -> dict[str, GroupWindows]:
        """The windows read back for `cluster`'s groups on the partitions of `scope` (the cycle
        that collected them imports them; groups of other clusters wait for theirs)."""
        out: dict[str, GroupWindows] = {}
        with self._lock:
            for p in scope.owned:
                records = self._windows.get(p)
                for key in [k for k in records or () if parse_key(k)[1] == cluster]:
                    value = records.pop(key)
                    try:
                        state = decode_group(value)
                    except StateError as exc:
                        log.warning("fleet: ignoring the windows of %s: %s", key, exc)
                        continue
                    out[state.group] = state
        self.takeovers += len(out)
        return out

    def collected(self, cluster: str, scope: CollectScope) -> None:
        """A good cycle of `cluster` collected the units of `scope`'s partitions."""
        with self._lock:
            self._collected[cluster] = scope.owned

    def spark_collected(self) -> None:
        with self._lock:
            self._collected[_SPARK] = self.owned()

    def write_windows(self, cluster: str, records: Mapping[str, bytes | None]) -> None:
        """Group windows records ({group: record or None for gone}) of `cluster`."""
        owned = self.owned()
        for group, value in records.items():
            partition = self.units.partition(self.units.group_unit(cluster, group))
            if partition in owned:  # a group that moved meanwhile is its new owner's to write
                self.membership.write(windows_key(cluster, group), value, partition)

    # -- what is exported and alerted on -------------------------------------------------------------

    def owned_view(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot cut to this replica's units: its groups, the cluster-wide data of the
        clusters whose unit it owns, Spark when it owns that."""
        owned = self.owned()
        clusters = tuple(self._owned_cluster(state, owned) for state in snapshot.clusters)
        spark = snapshot.spark if self.units.partition(SPARK_UNIT) in owned else ()
        return replace(snapshot, clusters=clusters, spark=spark)

    def _owned_cluster(self, state: ClusterState, owned: frozenset[int]) -> ClusterState:
        cluster = state.raw.cluster
        mine = lambda group: self.units.partition(self.units.group_unit(cluster, group)) in owned  # noqa: E731
        raw = replace(state.raw, groups=tuple(g for g in state.raw.groups if mine(g.name)))
        lag = replace(state.lag, groups=tuple(g for g in state.lag.groups if mine(g.group)),
                      retention=tuple(r for r in state.lag.retention if mine(r.group)))
        if self.units.partition(cluster_unit(cluster)) not in owned:
            raw = replace(raw, topics=(), brokers=(), controller_id=None, log_dirs=(), log_dirs_fetched_at=None,
                          log_dirs_error=None, topic_configs_error=None, probe=None)
            lag = replace(lag, topics=())
            return replace(state, raw=raw, lag=lag, probe=None)
        return replace(state, raw=raw, lag=lag)

    def owns_cluster(self, cluster: str) -> bool:
        """Whether this replica exports `cluster`'s cluster-wide series."""
        return self.owns_unit(cluster_unit(cluster))

    # -- alerts ----------------------------------------------------------------------------------------

    def alert_unit(self, labels: Mapping[str, str]) -> str | None:
        """The unit an alert belongs to; None for a replica's own alerts (its history)."""
        cluster = labels.get("cluster")
        if cluster:
            group = labels.get("group")
            return self.units.group_unit(cluster, group) if group else cluster_unit(cluster)
        if labels.get("app") or labels.get("collector", "").startswith("spark"):
            return SPARK_UNIT
        return None

    def owns_alert(self, labels: Mapping[str, str]) -> bool:
        unit = self.alert_unit(labels)
        return unit is None or self._alert_active(unit)

    def unit(self, labels: Mapping[str, str]) -> str | None:  # the AlertScope protocol
        return self.alert_unit(labels)

    def owns(self, labels: Mapping[str, str]) -> bool:  # the AlertScope protocol
        return self.owns_alert(labels)

    def _alert_active(self, unit: str) -> bool:
        """Owned, and collected since it was acquired (its alerts evaluate on its data)."""
        partition = self.units.partition(unit)
        if partition not in self.owned():
            return False
        with self._lock:
            return partition in self._collected.get(self._collection_of(unit), frozenset())

    @staticmethod
    def _collection_of(unit: str) -> str:
        if unit == SPARK_UNIT:
            return _SPARK
        return unit.split("/", 2)[1]

    def take_alert_states(self) -> dict[str, dict]:
        """Alert states read back for units that are now evaluated here ({unit: state})."""
        out: dict[str, dict] = {}
        with self._lock:
            candidates = [(p, key) for p, records in self._alerts.items() for key in records]
        for p, key in candidates:
            unit = parse_key(key)[1]
            if not self._alert_active(unit):
                continue
            with self._lock:
                value = self._alerts.get(p, {}).pop(key, None)
            if value is None:
                continue
            try:
                data = decode(value)
                out[unit] = data["s"]
            except (StateError, KeyError) as exc:
                log.warning("fleet: ignoring the alert state of %s: %s", unit, exc)
        return out

    def write_alert_states(self, states: Mapping[str, dict], partitions: frozenset[int] | None = None) -> None:
        """The units' alert states, written when they changed; tombstones for units whose
        state is gone. Those of the owned partitions, or of `partitions` (being handed over)."""
        owned = self.owned() if partitions is None else partitions
        current = {unit: encode({"s": data}) for unit, data in states.items() if self.units.partition(unit) in owned}
        with self._lock:
            gone = [u for u, v in self._written_alerts.items() if v is not None and u not in current
                    and self.units.partition(u) in owned]
            changes = {u: v for u, v in current.items() if self._written_alerts.get(u) != v}
            changes.update({u: None for u in gone})
            self._written_alerts.update(changes)
        for unit, value in changes.items():
            self.membership.write(alerts_key(unit), value, self.units.partition(unit))

    # -- /metrics ---------------------------------------------------------------------------------------

    def metric_families(self) -> Iterable[Metric]:
        owned = self.owned()
        labels = ["fleet"]
        name = [self.config.name or ""]
        partitions = GaugeMetricFamily("streamscope_fleet_partitions_owned",
                                       "Coordination partitions this replica owns.", labels=labels)
        partitions.add_metric(name, len(owned))
        stats = self.membership.stats
        families: list[Metric] = [partitions]
        for metric, doc, value in (
                ("rebalances", "Assignments and revocations of coordination partitions seen.", stats.rebalances),
                ("partitions_lost", "Partitions lost (session timeout, fencing) rather than handed over.", stats.lost),
                ("takeovers", "Group windows read back and continued from another owner's state.", self.takeovers),
                ("state_writes", "State records written to the coordination topic.", stats.writes),
                ("state_write_failures", "State records that could not be written.", stats.write_failures)):
            family = CounterMetricFamily(f"streamscope_fleet_{metric}", doc, labels=labels)
            family.add_metric(name, value)
            families.append(family)
        return families


def build_fleet(config: FleetConfig, *, bootstrap_servers: str, client_config: Mapping, instance: str,
                whole_clusters: Iterable[str], spark: bool, request_timeout: float,
                clock: Callable[[], float] = time.time) -> Fleet:
    from monitor.fleet.membership import MembershipSettings

    units = UnitMap(partitions=config.partitions, whole_clusters=frozenset(whole_clusters), spark=spark)
    membership = MembershipSettings(
        bootstrap_servers=bootstrap_servers, topic=config.topic_name, group_id=config.group_id,
        partitions=config.partitions, instance=instance, session_timeout=config.session_timeout_seconds,
        replication_factor=config.replication_factor, client_config=dict(client_config),
        request_timeout=request_timeout)
    return Fleet(config, units, membership, clock=clock)
