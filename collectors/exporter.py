"""Prometheus metric families of a snapshot: collector health, history health and Kafka (the
Spark families are in `collectors.spark.exporter`).

Each function yields fresh families from the values it is given, so a deleted group or topic
simply is not in the next output (no stale series, no global gauges). Names are the public
contract, documented in docs/metrics.md. The web layer (`monitor.web.metrics`) assembles them and
serialises once per collection cycle.
"""
from __future__ import annotations

import math
from typing import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from collectors.kafka.errors import ERROR_KINDS, OTHER
from collectors.kafka.log_dirs import topic_bytes
from collectors.kafka.partition_health import (min_insync_replicas, preferred_leader, replication_factor,
                                               topic_counts, topic_under_min_isr, under_min_isr)
from collectors.metrics_text import TextFamily
from collectors.models import ClusterState, Histogram, ProbeStats, Snapshot, Status, StoreHealth, TimeLagMethod


def _gauge(name: str, doc: str, labels: list[str], unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels, unit=unit)


def health_families(snapshot: Snapshot) -> Iterator[Metric]:
    labels = ["collector", "kind"]
    up = _gauge("streamscope_collector_up", "1 if the collector's last cycle succeeded, else 0.", labels)
    stale = _gauge("streamscope_collector_stale", "1 if the data served is older than the staleness limit (last good data kept).", labels)
    last = _gauge("streamscope_collector_last_success_timestamp_seconds", "UNIX time of the collector's last successful cycle.", labels)
    duration = _gauge("streamscope_collector_duration_seconds", "Duration of the collector's last cycle.", labels)
    cycles = CounterMetricFamily("streamscope_collector_cycles", "Collection cycles run.", labels=labels)
    failures = CounterMetricFamily("streamscope_collector_failures", "Collection cycles that failed.", labels=labels)
    restarts = CounterMetricFamily("streamscope_collector_restarts", "Restarts of the collector's child process, by "
                                   "why the previous one ended (exit, signal, timeout).", labels=labels + ["reason"])
    last_error = InfoMetricFamily("streamscope_collector_last_error", "Kind of error of the collector's last cycle "
                                  "(only while it fails): " + ", ".join(ERROR_KINDS) + ".",
                                  labels=labels)
    for h in snapshot.health:
        values = [h.name, h.kind]
        up.add_metric(values, 1.0 if h.up else 0.0)
        stale.add_metric(values, 0.0 if h.up else 1.0)
        if h.last_success_at is not None:
            last.add_metric(values, h.last_success_at)
        duration.add_metric(values, h.duration_seconds)
        cycles.add_metric(values, h.cycles_total)
        failures.add_metric(values, h.failures_total)
        for reason, count in h.restarts:
            restarts.add_metric(values + [reason], count)
        if not h.up and h.error is not None:
            # a bounded label: anything unknown (e.g. a Spark error) is "other"
            last_error.add_metric(values, {"error": h.error_kind if h.error_kind in ERROR_KINDS else OTHER})
    yield from (up, stale, last, duration, cycles, failures, restarts, last_error)


def history_families(history: StoreHealth) -> Iterator[Metric]:
    up = _gauge("streamscope_history_up", "1 if writes to the history database work, 0 while they fail (collection goes on).", [])
    up.add_metric([], 1.0 if history.up else 0.0)
    failures = CounterMetricFamily("streamscope_history_write_failures", "History writes that failed.", labels=[])
    failures.add_metric([], history.failures_total)
    yield up
    yield failures
    if history.last_success_at is not None:
        last = _gauge("streamscope_history_last_write_success_timestamp_seconds", "UNIX time of the last successful history write.", [])
        last.add_metric([], history.last_success_at)
        yield last


def kafka_families(clusters: Iterable[ClusterState], *, partition_metrics: bool) -> Iterator[Metric]:
    """The Kafka families as prometheus_client metrics (see `kafka_text_families`)."""
    for family in kafka_text_families(clusters, partition_metrics=partition_metrics):
        yield family.to_metric()


def kafka_text_families(clusters: Iterable[ClusterState], *, partition_metrics: bool) -> list[TextFamily]:
    """The Kafka families, written fast by `collectors.metrics_text.TextWriter` (the largest part
    of /metrics: a few series per group and topic)."""
    clusters = tuple(clusters)
    cluster_families, partition_families = _cluster_text_families(clusters, partition_metrics)
    group_families, group_partition_families = _group_text_families(clusters, partition_metrics)
    families = cluster_families + group_families
    if partition_metrics:
        families += group_partition_families + partition_families
    families += topic_health_families(clusters, partition_metrics=partition_metrics)
    families += log_dir_families(clusters, partition_metrics=partition_metrics)
    families += retention_families(clusters, partition_metrics=partition_metrics)
    families += group_protocol_families(clusters)
    families += probe_families(clusters)
    return families


# Label names shared by the Kafka families.
_C, _CG, _CGT, _CT = ("cluster",), ("cluster", "group"), ("cluster", "group", "topic"), ("cluster", "topic")
_CTP = _CT + ("partition",)
_STATUS_LABELS = tuple((s, s.value) for s in Status)
_EXACT = TimeLagMethod.EXACT


def _cluster_text_families(clusters: tuple[ClusterState, ...], partition_metrics: bool):
    """Per cluster and per topic; and per partition (end and earliest offsets) when enabled."""
    brokers = TextFamily("streamscope_kafka_brokers", "gauge", "Brokers in the cluster metadata.", _C)
    controller = TextFamily("streamscope_kafka_controller_id", "gauge", "Node id of the active controller: the leader of the KRaft metadata quorum (a ZooKeeper-mode cluster: its controller broker); absent while not known.", _C)
    requests = TextFamily("streamscope_kafka_collector_requests", "gauge", "Requests the last collection cycle sent to the cluster.", _C)
    positions_read = TextFamily("streamscope_kafka_collector_positions_read", "gauge", "Group positions the last cycle read (readable lag and exact time lag).", _C)
    phases = TextFamily("streamscope_kafka_collector_phase_duration_seconds", "gauge", "Time the last cycle spent in each phase.", _C + ("phase",))
    listing = TextFamily("streamscope_kafka_consumergroups_listing_complete", "gauge", "1 if every broker answered the last cycle's ListGroups; 0 if some did not (their groups were carried over from the cycle before).", _C)
    failed = TextFamily("streamscope_kafka_consumergroups_failed", "gauge", "Groups whose committed offsets the last cycle could not fetch (their lag is unknown; the error is in the API).", _C)
    topic_partitions = TextFamily("streamscope_kafka_topic_partitions", "gauge", "Partitions of the topic.", _CT)
    under = TextFamily("streamscope_kafka_topic_partitions_under_replicated", "gauge", "Partitions whose ISR is smaller than the replica set.", _CT)
    offline = TextFamily("streamscope_kafka_topic_partitions_offline", "gauge", "Partitions without a leader.", _CT)
    end_offset = TextFamily("streamscope_kafka_topic_end_offset", "gauge", "Sum of the partitions' end offsets (high watermarks).", _CT)
    messages = TextFamily("streamscope_kafka_topic_messages", "gauge", "Messages retained (sum of end - earliest offsets).", _CT)
    produce = TextFamily("streamscope_kafka_topic_produce_rate", "gauge", "Messages produced per second over the rate window.", _CT)
    part_end = TextFamily("streamscope_kafka_partition_end_offset", "gauge", "End offset (high watermark) per partition.", _CT + ("partition",))
    part_earliest = TextFamily("streamscope_kafka_partition_earliest_offset", "gauge", "Earliest retained offset per partition.", _CT + ("partition",))

    for state in clusters:
        cluster = state.raw.cluster
        brokers.add([cluster], len(state.raw.brokers))
        if state.raw.controller_id is not None:
            controller.add([cluster], state.raw.controller_id)
        requests.add([cluster], state.raw.requests)
        positions_read.add([cluster], state.raw.positions_read)
        for phase, seconds in state.raw.phase_seconds:
            phases.add([cluster, phase], seconds)
        if state.raw.ok:  # a failed cycle says nothing of groups (collector_up says it failed)
            listing.add([cluster], 1.0 if state.raw.groups_complete else 0.0)
            failed.add([cluster], len(state.raw.failed_groups))
        for t in state.lag.topics:
            values = (cluster, t.topic)  # one key tuple for the topic's families
            topic_partitions.add(values, t.partitions)
            under.add(values, t.under_replicated)
            offline.add(values, t.offline)
            end_offset.add(values, t.end_offset_sum)
            messages.add(values, t.message_count)
            if t.produce_rate is not None:
                produce.add(values, t.produce_rate)
        if partition_metrics:
            for topic in state.raw.topics:
                for p in topic.partitions:
                    values = (cluster, topic.name, str(p.partition))
                    if p.latest_offset is not None:
                        part_end.add(values, p.latest_offset)
                    if p.earliest_offset is not None:
                        part_earliest.add(values, p.earliest_offset)
    return ([brokers, controller, requests, positions_read, phases, listing, failed, topic_partitions, under, offline, end_offset,
             messages, produce], [part_end, part_earliest])


def _group_text_families(clusters: tuple[ClusterState, ...], partition_metrics: bool):
    """Per group and per group and topic; and per group partition when enabled."""
    lag = TextFamily("streamscope_kafka_consumergroup_lag", "gauge", "Offsets between the committed offset and the end (high watermark), summed over the topic's partitions: what kafka-consumer-groups shows.", _CGT)
    readable = TextFamily("streamscope_kafka_consumergroup_readable_lag", "gauge", "Records the group will still read, summed over the topic's partitions: control markers (and, read_committed, aborted or open transactions) excluded.", _CGT)
    lag_seconds = TextFamily("streamscope_kafka_consumergroup_lag_seconds", "gauge", "Age of the oldest readable unconsumed record (worst partition of the topic); 0 when nothing is left to read.", _CGT)
    lag_exact = TextFamily("streamscope_kafka_consumergroup_lag_seconds_exact", "gauge", "1 if lag_seconds was read from the record itself, 0 if interpolated from end-offset history.", _CGT)
    lag_lower = TextFamily("streamscope_kafka_consumergroup_lag_seconds_lower_bound", "gauge", "1 if lag_seconds is only a lower bound (a partition's oldest unread record predates the end-offset history and was not read yet), else 0.", _CGT)
    uncommitted = TextFamily("streamscope_kafka_consumergroup_uncommitted_partitions", "gauge", "Partitions of topics the group consumes that have no committed offset (kafka-consumer-groups shows '-').", _CG)
    consume = TextFamily("streamscope_kafka_consumergroup_consume_rate", "gauge", "Messages the group consumed per second over the rate window.", _CGT)
    eta = TextFamily("streamscope_kafka_consumergroup_eta_seconds", "gauge", "Catch-up ETA: lag / (consume rate - produce rate); +Inf when not catching up.", _CG)
    status = TextFamily("streamscope_kafka_consumergroup_status", "gauge", "Burrow-style status: 1 for the group's current status, 0 for the others.", _CG + ("status",))
    members = TextFamily("streamscope_kafka_consumergroup_members", "gauge", "Members of the group.", _CG)
    empty = TextFamily("streamscope_kafka_consumergroup_empty", "gauge", "1 if the group has no members (still reported until the empty-group TTL).", _CG)
    info = TextFamily("streamscope_kafka_consumergroup", "info", "Group state and protocol.", _CG)
    part_lag = TextFamily("streamscope_kafka_consumergroup_partition_lag", "gauge", "Messages behind per partition.", _CGT + ("partition",))
    part_lag_seconds = TextFamily("streamscope_kafka_consumergroup_partition_lag_seconds", "gauge", "Age of the oldest unconsumed record per partition.", _CGT + ("partition",))
    part_committed = TextFamily("streamscope_kafka_consumergroup_partition_committed_offset", "gauge", "Committed offset per partition.", _CGT + ("partition",))
    part_readable = TextFamily("streamscope_kafka_consumergroup_partition_readable_lag", "gauge", "Records left to read per partition (see readable_lag).", _CGT + ("partition",))

    # Rows appended to the columns TextFamily keeps them in, without a call of `add` each: 40
    # rows a group, 400,000 a cycle at 10,000 groups. Families that have a row for the same
    # series every time share one list of label values, copied at the end.
    group_keys: list[tuple[str, ...]] = []  # members, uncommitted, empty, info
    topic_keys: list[tuple[str, ...]] = []  # lag, readable
    timed_keys: list[tuple[str, ...]] = []  # lag_seconds, lag_exact, lag_lower
    add_group, add_topic, add_timed = group_keys.append, topic_keys.append, timed_keys.append
    add_members, add_uncommitted, add_empty = members.values.append, uncommitted.values.append, empty.values.append
    add_info, add_lag, add_readable = info.values.append, lag.values.append, readable.values.append
    add_lag_seconds, add_lag_exact, add_lag_lower = lag_seconds.values.append, lag_exact.values.append, lag_lower.values.append
    status_keys, status_values = status.keys.append, status.values.append
    eta_keys, eta_values = eta.keys.append, eta.values.append
    consume_keys, consume_values = consume.keys.append, consume.values.append
    for state in clusters:
        cluster = state.raw.cluster
        for g in state.lag.groups:
            gv = (cluster, g.group)
            add_group(gv)
            add_members(g.members)
            add_uncommitted(g.uncommitted_partitions)
            add_empty(1.0 if g.is_empty else 0.0)
            add_info({"state": g.state})
            for s, label in _STATUS_LABELS:
                status_keys(gv + (label,))
                status_values(1.0 if g.status is s else 0.0)
            if g.eta_seconds is not None:
                eta_keys(gv)
                eta_values(g.eta_seconds)
            elif g.readable_lag > 0 and g.consume_rate is not None and g.produce_rate is not None:
                eta_keys(gv)
                eta_values(math.inf)
            # summed once per cycle by derive (collectors.models.topic_lags_of); fields unpacked in one step
            for topic, topic_lag, topic_readable, seconds, method, lower, rate in g.topic_lags:
                tv = gv + (topic,)
                add_topic(tv)
                add_lag(topic_lag)
                add_readable(topic_readable)
                if seconds is not None:
                    add_timed(tv)
                    add_lag_seconds(seconds)
                    add_lag_exact(1.0 if method == _EXACT else 0.0)
                    add_lag_lower(1.0 if lower else 0.0)
                if rate is not None:
                    consume_keys(tv)
                    consume_values(rate)
            if partition_metrics:
                for p in g.partitions:
                    pv = gv + (p.topic, str(p.partition))
                    part_lag.add(pv, p.lag)
                    part_readable.add(pv, p.readable_lag)
                    if p.committed_offset is not None:
                        part_committed.add(pv, p.committed_offset)
                    if p.time_lag_seconds is not None:
                        part_lag_seconds.add(pv, p.time_lag_seconds)
    for keys, families in ((group_keys, (members, uncommitted, empty, info)), (topic_keys, (lag, readable)),
                           (timed_keys, (lag_seconds, lag_exact, lag_lower))):
        for family in families:
            family.keys = keys.copy()
    return ([lag, readable, lag_seconds, lag_exact, lag_lower, consume, eta, status, members, uncommitted, empty, info],
            [part_lag, part_readable, part_lag_seconds, part_committed])


def _limit(value: int | None, scale: float = 1.0) -> float | None:
    """A retention limit in base units; -1 (no limit) is +Inf, None unknown."""
    if value is None:
        return None
    return math.inf if value < 0 else value / scale


def topic_health_families(clusters: tuple[ClusterState, ...], *, partition_metrics: bool) -> list[TextFamily]:
    """Topic settings and partition health (kafka_exporter's per-partition coverage, opt-in)."""
    info = TextFamily("streamscope_kafka_topic", "info", "Topic settings: cleanup policy, retention.ms and retention.bytes as Kafka reports them (-1: no limit).", _CT)
    retention_seconds = TextFamily("streamscope_kafka_topic_retention_seconds", "gauge", "retention.ms in seconds; +Inf without a time limit.", _CT)
    retention_bytes = TextFamily("streamscope_kafka_topic_retention_bytes", "gauge", "retention.bytes (per partition); +Inf without a size limit.", _CT)
    min_isr = TextFamily("streamscope_kafka_topic_min_insync_replicas", "gauge", "min.insync.replicas of the topic.", _CT)
    rf = TextFamily("streamscope_kafka_topic_replication_factor", "gauge", "Replicas per partition.", _CT)
    under_min = TextFamily("streamscope_kafka_topic_partitions_under_min_isr", "gauge", "Partitions with fewer in-sync replicas than min.insync.replicas: producers with acks=all fail.", _CT)
    complete = TextFamily("streamscope_kafka_topic_configs_complete", "gauge", "1 if every collected topic's settings are known and the last DescribeConfigs succeeded; 0 if not (the reason in /healthz).", _C)
    leader = TextFamily("streamscope_kafka_partition_leader", "gauge", "Broker id of the partition's leader; -1 without one.", _CTP)
    replicas = TextFamily("streamscope_kafka_partition_replicas", "gauge", "Replicas of the partition.", _CTP)
    in_sync = TextFamily("streamscope_kafka_partition_in_sync_replicas", "gauge", "In-sync replicas of the partition.", _CTP)
    preferred = TextFamily("streamscope_kafka_partition_leader_is_preferred", "gauge", "1 if the leader is the preferred (first) replica.", _CTP)
    under_replicated = TextFamily("streamscope_kafka_partition_under_replicated", "gauge", "1 if the ISR is smaller than the replica set.", _CTP)
    part_under_min = TextFamily("streamscope_kafka_partition_under_min_isr", "gauge", "1 if the ISR is smaller than min.insync.replicas.", _CTP)
    for state in clusters:
        cluster = state.raw.cluster
        replicas_of = topic_counts(state, "replication_factor", replication_factor)
        under_min_of = topic_counts(state, "under_min_isr", topic_under_min_isr)
        if state.raw.topic_configs_complete is not None:  # None: settings not asked
            complete.add([cluster], 1.0 if state.raw.topic_configs_complete else 0.0)
        for topic in state.raw.topics:
            values = (cluster, topic.name)
            rf.add(values, replicas_of[topic.name])
            c = topic.config
            if c is not None:
                info.add(values, {"cleanup_policy": c.cleanup_policy or "",
                                  "retention_ms": "" if c.retention_ms is None else str(c.retention_ms),
                                  "retention_bytes": "" if c.retention_bytes is None else str(c.retention_bytes)})
                for family, value in ((retention_seconds, _limit(c.retention_ms, 1000.0)),
                                      (retention_bytes, _limit(c.retention_bytes)), (min_isr, c.min_insync_replicas)):
                    if value is not None:
                        family.add(values, value)
            under = under_min_of[topic.name]
            if under is not None:
                under_min.add(values, under)
            if not partition_metrics:
                continue
            topic_min_isr = min_insync_replicas(topic)
            for p in topic.partitions:
                pv = values + (str(p.partition),)
                leader.add(pv, p.leader)
                replicas.add(pv, len(p.replicas))
                in_sync.add(pv, len(p.isr))
                preferred.add(pv, 1.0 if preferred_leader(p) else 0.0)
                under_replicated.add(pv, 1.0 if p.under_replicated else 0.0)
                under_min_partition = under_min_isr(p, topic_min_isr)
                if under_min_partition is not None:
                    part_under_min.add(pv, 1.0 if under_min_partition else 0.0)
    families = [info, retention_seconds, retention_bytes, min_isr, rf, under_min, complete]
    if partition_metrics:
        families += [leader, replicas, in_sync, preferred, under_replicated, part_under_min]
    return families


def log_dir_families(clusters: tuple[ClusterState, ...], *, partition_metrics: bool) -> list[TextFamily]:
    """Disk use per broker log directory and per topic (DescribeLogDirs, every N cycles)."""
    cbd = ("cluster", "broker", "log_dir")
    size = TextFamily("streamscope_kafka_broker_log_dir_bytes", "gauge", "Bytes of the partition replicas in the broker's log directory.", cbd)
    total = TextFamily("streamscope_kafka_broker_log_dir_total_bytes", "gauge", "Size of the volume the log directory is on (Kafka 3.3+).", cbd)
    usable = TextFamily("streamscope_kafka_broker_log_dir_usable_bytes", "gauge", "Free bytes usable on the volume the log directory is on (Kafka 3.3+).", cbd)
    online = TextFamily("streamscope_kafka_broker_log_dir_online", "gauge", "1 if the broker reports the log directory without an error (0: offline, e.g. a failed disk).", cbd)
    fetched = TextFamily("streamscope_kafka_log_dirs_fetched_timestamp_seconds", "gauge", "UNIX time the log directories were last fetched.", _C)
    complete = TextFamily("streamscope_kafka_log_dirs_complete", "gauge", "1 if every broker gave its log directories in the last DescribeLogDirs round; 0 if the request failed or some brokers did not (theirs kept from before; the reason in /healthz).", _C)
    per_topic = TextFamily("streamscope_kafka_topic_log_bytes", "gauge", "Bytes on disk of the topic, every replica on every broker.", _CT)
    per_partition = TextFamily("streamscope_kafka_partition_log_bytes", "gauge", "Bytes on disk of the partition's leader replica.", _CTP)
    for state in clusters:
        raw = state.raw
        cluster = raw.cluster
        if raw.log_dirs_complete is not None:  # None: log directories not asked
            complete.add([cluster], 1.0 if raw.log_dirs_complete else 0.0)
        if raw.log_dirs_fetched_at is None:
            continue
        fetched.add([cluster], raw.log_dirs_fetched_at)
        for d in raw.log_dirs:
            values = [cluster, str(d.broker), d.path]
            online.add(values, 0.0 if d.error else 1.0)
            if d.error:
                continue
            size.add(values, d.size_bytes)
            if d.total_bytes is not None:
                total.add(values, d.total_bytes)
            if d.usable_bytes is not None:
                usable.add(values, d.usable_bytes)
        for topic, n in sorted(topic_bytes(raw.log_dirs).items()):
            per_topic.add([cluster, topic], n)
        if partition_metrics:
            for t in raw.topics:
                for p in t.partitions:
                    if p.size_bytes is not None:
                        per_partition.add([cluster, t.name, str(p.partition)], p.size_bytes)
    families = [size, total, usable, online, fetched, complete, per_topic]
    if partition_metrics:
        families.append(per_partition)
    return families


def retention_families(clusters: tuple[ClusterState, ...], *, partition_metrics: bool) -> list[TextFamily]:
    """Lag against retention per group and topic (and per lagging partition, opt-in)."""
    headroom = TextFamily("streamscope_kafka_consumergroup_retention_headroom_seconds", "gauge", "Time until retention deletes the oldest record the group has not read, if it stopped now (worst partition); +Inf when nothing unread can be deleted; absent on compacted topics and while unknown.", _CGT)
    lost = TextFamily("streamscope_kafka_consumergroup_records_lost", "gauge", "Records deleted by retention that the group never read (log start offset - committed offset), summed over the topic's partitions.", _CGT)
    part_headroom = TextFamily("streamscope_kafka_consumergroup_partition_retention_headroom_seconds", "gauge", "Retention headroom per lagging partition.", _CGT + ("partition",))
    part_lost = TextFamily("streamscope_kafka_consumergroup_partition_records_lost", "gauge", "Records lost per lagging partition.", _CGT + ("partition",))
    for state in clusters:
        cluster = state.raw.cluster
        for r in state.lag.retention:
            values = (cluster, r.group, r.topic)
            lost.add(values, r.lost)
            if r.headroom_seconds is not None:
                headroom.add(values, r.headroom_seconds)
            if partition_metrics:
                for p in r.partitions:
                    pv = values + (str(p.partition),)
                    part_lost.add(pv, p.lost)
                    if p.headroom_seconds is not None:
                        part_headroom.add(pv, p.headroom_seconds)
    return [headroom, lost] + ([part_headroom, part_lost] if partition_metrics else [])


def group_protocol_families(clusters: tuple[ClusterState, ...]) -> list[TextFamily]:
    """Group coordinator, protocol type and assignor (kminion's group info)."""
    coordinator = TextFamily("streamscope_kafka_consumergroup_coordinator", "gauge", "Broker id of the group's coordinator.", _CG)
    protocol = TextFamily("streamscope_kafka_consumergroup_protocol", "info", "Protocol type (consumer, or simple for groups without members' protocol) and the partition assignor the members agreed on.", _CG)
    for state in clusters:
        cluster = state.raw.cluster
        reported = {g.group for g in state.lag.groups}
        for g in state.raw.groups:
            if g.name not in reported or g.kind != "consumer":
                continue
            gv = (cluster, g.name)
            if g.coordinator is not None:
                coordinator.add(gv, g.coordinator)
            protocol.add(gv, {"protocol_type": g.protocol_type or "", "assignor": g.assignor or ""})
    return [coordinator, protocol]


def _buckets(h: Histogram) -> tuple[tuple[tuple[float, int], ...], float]:
    return tuple(zip((*h.bounds, math.inf), h.counts)), h.sum


def probe_families(clusters: tuple[ClusterState, ...]) -> list[TextFamily]:
    """The end-to-end probe of each cluster that has one."""
    up = TextFamily("streamscope_kafka_probe_up", "gauge", "1 if the probe's last round got every record back in time and committed, else 0.", _C)
    last = TextFamily("streamscope_kafka_probe_last_success_timestamp_seconds", "gauge", "UNIX time of the probe's last successful round.", _C)
    roundtrip = TextFamily("streamscope_kafka_probe_roundtrip_seconds", "histogram", "Time from producing a probe record to consuming it back.", _C)
    produce = TextFamily("streamscope_kafka_probe_produce_seconds", "histogram", "Time from producing a probe record to its acknowledgement (acks=all).", _C)
    commit = TextFamily("streamscope_kafka_probe_commit_seconds", "histogram", "Time the probe's offset commit took.", _C)
    sent = TextFamily("streamscope_kafka_probe_records_sent", "counter", "Probe records produced.", _C)
    received = TextFamily("streamscope_kafka_probe_records_received", "counter", "Probe records consumed back in time.", _C)
    failures = TextFamily("streamscope_kafka_probe_failures", "counter", "Probe failures by reason: produce and timeout (records), commit (rounds), setup (the probe's topic or clients).", _C + ("reason",))
    for state in clusters:
        probe: ProbeStats | None = state.probe
        if probe is None:
            continue
        values = [state.raw.cluster]
        up.add(values, 1.0 if probe.up else 0.0)
        if probe.last_success_at is not None:
            last.add(values, probe.last_success_at)
        roundtrip.add(values, _buckets(probe.roundtrip))
        produce.add(values, _buckets(probe.produce))
        commit.add(values, _buckets(probe.commit))
        sent.add(values, probe.sent_total)
        received.add(values, probe.received_total)
        for reason, n in probe.failures:
            failures.add(values + [reason], n)
    return [up, last, roundtrip, produce, commit, sent, received, failures]
