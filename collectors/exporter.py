"""Prometheus metric families of a snapshot: collector health, history health and Kafka (the
Spark families are in `collectors.spark.exporter`).

Each function yields fresh families from the values it is given, so a deleted group or topic
simply is not in the next output (no stale series, no global gauges). Names are the public
contract, documented in docs/metrics.md. The web layer (`monitor.web.metrics`) assembles them and
serialises once per collection cycle.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from collectors.kafka.errors import ERROR_KINDS, OTHER
from collectors.metrics_text import TextFamily
from collectors.models import ClusterState, Snapshot, Status, StoreHealth


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
    c, cg, cgt, ct = ("cluster",), ("cluster", "group"), ("cluster", "group", "topic"), ("cluster", "topic")
    brokers = TextFamily("streamscope_kafka_brokers", "gauge", "Brokers in the cluster metadata.", c)
    controller = TextFamily("streamscope_kafka_controller_id", "gauge", "Broker id of the active controller.", c)
    requests = TextFamily("streamscope_kafka_collector_requests", "gauge", "Requests the last collection cycle sent to the cluster.", c)
    phases = TextFamily("streamscope_kafka_collector_phase_duration_seconds", "gauge", "Time the last cycle spent in each phase.", c + ("phase",))
    topic_partitions = TextFamily("streamscope_kafka_topic_partitions", "gauge", "Partitions of the topic.", ct)
    under = TextFamily("streamscope_kafka_topic_partitions_under_replicated", "gauge", "Partitions whose ISR is smaller than the replica set.", ct)
    offline = TextFamily("streamscope_kafka_topic_partitions_offline", "gauge", "Partitions without a leader.", ct)
    end_offset = TextFamily("streamscope_kafka_topic_end_offset", "gauge", "Sum of the partitions' end offsets (high watermarks).", ct)
    messages = TextFamily("streamscope_kafka_topic_messages", "gauge", "Messages retained (sum of end - earliest offsets).", ct)
    produce = TextFamily("streamscope_kafka_topic_produce_rate", "gauge", "Messages produced per second over the rate window.", ct)
    lag = TextFamily("streamscope_kafka_consumergroup_lag", "gauge", "Offsets between the committed offset and the end (high watermark), summed over the topic's partitions: what kafka-consumer-groups shows.", cgt)
    readable = TextFamily("streamscope_kafka_consumergroup_readable_lag", "gauge", "Records the group will still read, summed over the topic's partitions: control markers (and, read_committed, aborted or open transactions) excluded.", cgt)
    lag_seconds = TextFamily("streamscope_kafka_consumergroup_lag_seconds", "gauge", "Age of the oldest readable unconsumed record (worst partition of the topic); 0 when nothing is left to read.", cgt)
    lag_exact = TextFamily("streamscope_kafka_consumergroup_lag_seconds_exact", "gauge", "1 if lag_seconds was read from the record itself, 0 if interpolated from end-offset history.", cgt)
    lag_lower = TextFamily("streamscope_kafka_consumergroup_lag_seconds_lower_bound", "gauge", "1 if lag_seconds is only a lower bound (a partition's oldest unread record predates the end-offset history and was not read yet), else 0.", cgt)
    uncommitted = TextFamily("streamscope_kafka_consumergroup_uncommitted_partitions", "gauge", "Partitions of topics the group consumes that have no committed offset (kafka-consumer-groups shows '-').", cg)
    positions_read = TextFamily("streamscope_kafka_collector_positions_read", "gauge", "Group positions the last cycle read (readable lag and exact time lag).", c)
    consume = TextFamily("streamscope_kafka_consumergroup_consume_rate", "gauge", "Messages the group consumed per second over the rate window.", cgt)
    eta = TextFamily("streamscope_kafka_consumergroup_eta_seconds", "gauge", "Catch-up ETA: lag / (consume rate - produce rate); +Inf when not catching up.", cg)
    status = TextFamily("streamscope_kafka_consumergroup_status", "gauge", "Burrow-style status: 1 for the group's current status, 0 for the others.", cg + ("status",))
    members = TextFamily("streamscope_kafka_consumergroup_members", "gauge", "Members of the group.", cg)
    empty = TextFamily("streamscope_kafka_consumergroup_empty", "gauge", "1 if the group has no members (still reported until the empty-group TTL).", cg)
    info = TextFamily("streamscope_kafka_consumergroup", "info", "Group state and protocol.", cg)
    part_lag = TextFamily("streamscope_kafka_consumergroup_partition_lag", "gauge", "Messages behind per partition.", cgt + ("partition",))
    part_lag_seconds = TextFamily("streamscope_kafka_consumergroup_partition_lag_seconds", "gauge", "Age of the oldest unconsumed record per partition.", cgt + ("partition",))
    part_committed = TextFamily("streamscope_kafka_consumergroup_partition_committed_offset", "gauge", "Committed offset per partition.", cgt + ("partition",))
    part_readable = TextFamily("streamscope_kafka_consumergroup_partition_readable_lag", "gauge", "Records left to read per partition (see readable_lag).", cgt + ("partition",))
    part_end = TextFamily("streamscope_kafka_partition_end_offset", "gauge", "End offset (high watermark) per partition.", ct + ("partition",))
    part_earliest = TextFamily("streamscope_kafka_partition_earliest_offset", "gauge", "Earliest retained offset per partition.", ct + ("partition",))

    for state in clusters:
        cluster = state.raw.cluster
        brokers.add([cluster], len(state.raw.brokers))
        if state.raw.controller_id is not None:
            controller.add([cluster], state.raw.controller_id)
        requests.add([cluster], state.raw.requests)
        positions_read.add([cluster], state.raw.positions_read)
        for phase, seconds in state.raw.phase_seconds:
            phases.add([cluster, phase], seconds)
        for t in state.lag.topics:
            values = [cluster, t.topic]
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
                    values = [cluster, topic.name, str(p.partition)]
                    if p.latest_offset is not None:
                        part_end.add(values, p.latest_offset)
                    if p.earliest_offset is not None:
                        part_earliest.add(values, p.earliest_offset)
        for g in state.lag.groups:
            gv = [cluster, g.group]
            members.add(gv, g.members)
            uncommitted.add(gv, g.uncommitted_partitions)
            empty.add(gv, 1.0 if g.is_empty else 0.0)
            info.add(gv, {"state": g.state})
            for s in Status:
                status.add(gv + [s.value], 1.0 if g.status is s else 0.0)
            if g.eta_seconds is not None:
                eta.add(gv, g.eta_seconds)
            elif g.readable_lag > 0 and g.consume_rate is not None and g.produce_rate is not None:
                eta.add(gv, math.inf)
            per_topic: dict[str, list] = defaultdict(list)
            for p in g.partitions:
                per_topic[p.topic].append(p)
                if partition_metrics:
                    pv = gv + [p.topic, str(p.partition)]
                    part_lag.add(pv, p.lag)
                    part_readable.add(pv, p.readable_lag)
                    if p.committed_offset is not None:
                        part_committed.add(pv, p.committed_offset)
                    if p.time_lag_seconds is not None:
                        part_lag_seconds.add(pv, p.time_lag_seconds)
            for topic, parts in per_topic.items():
                tv = gv + [topic]
                lag.add(tv, sum(p.lag for p in parts))
                readable.add(tv, sum(p.readable_lag for p in parts))
                timed = [p for p in parts if p.time_lag_seconds is not None]
                if timed:
                    worst = max(timed, key=lambda p: p.time_lag_seconds)
                    lag_seconds.add(tv, worst.time_lag_seconds)
                    lag_exact.add(tv, 1.0 if worst.time_lag_method.value == "exact" else 0.0)
                    lag_lower.add(tv, 1.0 if any(p.time_lag_lower_bound for p in timed) else 0.0)
                rates = [p.consume_rate for p in parts if p.consume_rate is not None]
                if rates:
                    consume.add(tv, sum(rates))
    families = [brokers, controller, requests, positions_read, phases, topic_partitions, under, offline, end_offset,
                messages, produce, lag, readable, lag_seconds, lag_exact, lag_lower, consume, eta, status, members,
                uncommitted, empty, info]
    if partition_metrics:
        families += [part_lag, part_readable, part_lag_seconds, part_committed, part_end, part_earliest]
    return families
