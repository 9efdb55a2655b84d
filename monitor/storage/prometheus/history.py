"""`PrometheusHistory`: the `HistoryReader` calls answered from Prometheus' HTTP API.

What streamscope exports is what there is: series per group and topic (lag, readable lag, time
lag, rates, ETA, status), per topic (produce rate, offsets, replication) and per cluster
(brokers, collector health). Per-partition series exist only with
`exporter.partition_metrics: true`; without them the per-partition calls return nothing and
`per_partition_history` says so, for the pages to tell.

Downsampling is Prometheus': a range query returns one value per `step`, each step covering at
least the step (`max_over_time` for lags, time lags, ETAs and offsets, `avg_over_time` for
rates, the worst status seen), the same rules the embedded history applies to its buckets. Each
call is ONE range query: its parts are told apart by an `ss_field` label (`label_replace`).

A fleet exports each group from one replica at a time (the `instance` label changes on a
takeover): series are first reduced over replicas (`max by` the group's own labels), so a
replica that briefly exported the same group as another one is not counted twice.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from collectors.models import Status
from monitor.storage.prometheus.client import PrometheusClient, Series, finite
from monitor.storage.reader import (ClusterPoint, CommitPoint, GroupPoint, PartitionLagPoint, PartitionRatePoint,
                                    TopicPoint, WindowKind, commit_points)

FIELD = "ss_field"
_STATUS_RANK = {s.value: i for i, s in enumerate(Status)}

GROUP_LAG = "streamscope_kafka_consumergroup_lag"
GROUP_READABLE = "streamscope_kafka_consumergroup_readable_lag"
GROUP_LAG_SECONDS = "streamscope_kafka_consumergroup_lag_seconds"
GROUP_EXACT = "streamscope_kafka_consumergroup_lag_seconds_exact"
GROUP_LOWER = "streamscope_kafka_consumergroup_lag_seconds_lower_bound"
GROUP_CONSUME = "streamscope_kafka_consumergroup_consume_rate"
GROUP_ETA = "streamscope_kafka_consumergroup_eta_seconds"
GROUP_STATUS = "streamscope_kafka_consumergroup_status"
GROUP_MEMBERS = "streamscope_kafka_consumergroup_members"
TOPIC_PRODUCE = "streamscope_kafka_topic_produce_rate"
TOPIC_END = "streamscope_kafka_topic_end_offset"
TOPIC_MESSAGES = "streamscope_kafka_topic_messages"
TOPIC_UNDER = "streamscope_kafka_topic_partitions_under_replicated"
TOPIC_OFFLINE = "streamscope_kafka_topic_partitions_offline"
TOPIC_PARTITIONS = "streamscope_kafka_topic_partitions"
BROKERS = "streamscope_kafka_brokers"
COLLECTOR_UP = "streamscope_collector_up"
PART_LAG = "streamscope_kafka_consumergroup_partition_lag"
PART_LAG_SECONDS = "streamscope_kafka_consumergroup_partition_lag_seconds"
PART_END = "streamscope_kafka_partition_end_offset"
PART_COMMITTED = "streamscope_kafka_consumergroup_partition_committed_offset"


def fields(parts: Mapping[str, str]) -> str:
    """One expression whose series carry the name of the part they come from (`ss_field`)."""
    return " or ".join(f'label_replace({expr}, "{FIELD}", "{name}", "", "")' for name, expr in parts.items())


def by_time(series: Iterable[Series]) -> dict[float, dict[str, Any]]:
    """{at: {field: value}} over every point of every series; status series give
    {"status:<STATUS>": value}."""
    rows: dict[float, dict[str, Any]] = {}
    for s in series:
        name = s.labels.get(FIELD, "")
        if name == "status":
            name = f"status:{s.labels.get('status', '')}"
        for at, value in s.points:
            rows.setdefault(at, {})[name] = value
    return rows


def worst_status(row: Mapping[str, Any]) -> str | None:
    """The worst status whose series was 1 (the embedded history keeps the worst of a bucket)."""
    current = [key[len("status:"):] for key, value in row.items() if key.startswith("status:") and value >= 1]
    return max(current, key=lambda s: _STATUS_RANK.get(s, -1)) if current else None


def as_int(value: float | None) -> int | None:
    value = finite(value)
    return None if value is None else int(round(value))


def time_lag_method(row: Mapping[str, Any]) -> str | None:
    seconds = finite(row.get("time_lag"))
    if seconds is None:
        return None
    if row.get("exact", 0) >= 1:
        return "exact"
    return "interpolated" if seconds > 0 else "none"


class PrometheusHistory:
    """A `HistoryReader` over the Prometheus HTTP API (see the module docstring)."""

    def __init__(self, client: PrometheusClient, *, clock: Callable[[], float] = time.time):
        self._client = client
        self._clock = clock
        self._lock = threading.Lock()
        self._partition_check: tuple[float, bool] | None = None  # (checked at, answer)

    # -- helpers ------------------------------------------------------------------------------

    def _step(self, start: float, end: float, max_points: int) -> tuple[float, str]:
        """(step, window): at most `max_points` steps, none shorter than a scrape, each looking
        back over at least two scrapes (so a step never falls between two samples)."""
        scrape = self._client.config.scrape_interval_seconds
        step = max(scrape, (end - start) / max(1, max_points - 1))
        window_ms = int(math.ceil(max(step, 2 * scrape) * 1000))
        return step, f"{window_ms}ms"

    def _sel(self, name: str, **labels: str) -> str:
        return self._client.selector(name, **labels)

    def _range(self, parts: Mapping[str, str], start: float, end: float, step: float) -> dict[float, dict]:
        return by_time(self._client.query_range(fields(parts), start, end, step))

    # -- HistoryReader ------------------------------------------------------------------------

    def clusters(self) -> list[str]:
        expr = " or ".join(f"group by (cluster) ({self._sel(name)})" for name in (BROKERS, GROUP_MEMBERS,
                                                                                   TOPIC_PARTITIONS))
        return sorted({s.labels["cluster"] for s in self._client.query(expr) if s.labels.get("cluster")})

    def group_series(self, cluster: str, group: str, start: float, end: float,
                     max_points: int = 500) -> list[GroupPoint]:
        step, w = self._step(start, end, max_points)
        sel = lambda name: self._sel(name, cluster=cluster, group=group)  # noqa: E731
        per_topic = "max by (cluster, group, topic)"
        parts = {
            "lag": f"sum by (cluster, group) ({per_topic} (max_over_time({sel(GROUP_LAG)}[{w}])))",
            "readable": f"sum by (cluster, group) ({per_topic} (max_over_time({sel(GROUP_READABLE)}[{w}])))",
            "time_lag": f"max by (cluster, group) (max_over_time({sel(GROUP_LAG_SECONDS)}[{w}]))",
            "exact": f"max by (cluster, group) (max_over_time({sel(GROUP_EXACT)}[{w}]))",
            "lower": f"max by (cluster, group) (max_over_time({sel(GROUP_LOWER)}[{w}]))",
            "consume": f"sum by (cluster, group) ({per_topic} (avg_over_time({sel(GROUP_CONSUME)}[{w}])))",
            # the group's partitions are its topics' (a group reads whole topics, as a rule)
            "produce": f"sum by (cluster) (max by (cluster, topic) (avg_over_time("
                       f"{self._sel(TOPIC_PRODUCE, cluster=cluster)}[{w}])) and on (cluster, topic) "
                       f"{per_topic} (max_over_time({sel(GROUP_LAG)}[{w}])))",
            "eta": f"max by (cluster, group) (max_over_time({sel(GROUP_ETA)}[{w}]))",
            "status": f"max by (status) (max_over_time({sel(GROUP_STATUS)}[{w}]))",
        }
        out: list[GroupPoint] = []
        for at, row in sorted(self._range(parts, start, end, step).items()):
            if "lag" not in row:
                continue  # no replica exported the group then
            out.append(GroupPoint(
                at=at, lag=as_int(row.get("lag")), readable_lag=as_int(row.get("readable")),
                time_lag_seconds=finite(row.get("time_lag")), time_lag_method=time_lag_method(row),
                time_lag_lower_bound=row.get("lower", 0) >= 1, consume_rate=finite(row.get("consume")),
                produce_rate=finite(row.get("produce")), eta_seconds=finite(row.get("eta")),
                status=worst_status(row)))
        return out

    def partition_lag_series(self, cluster: str, group: str, start: float, end: float,
                             max_points: int = 200) -> list[PartitionLagPoint]:
        step, w = self._step(start, end, max_points)
        parts = {name: f"max by (topic, partition) (max_over_time({self._sel(metric, cluster=cluster, group=group)}[{w}]))"
                 for name, metric in (("lag", PART_LAG), ("time_lag", PART_LAG_SECONDS))}
        rows: dict[tuple[float, str, int], dict[str, float]] = {}
        for s in self._client.query_range(fields(parts), start, end, step):
            key = (s.labels.get("topic", ""), _partition(s.labels))
            for at, value in s.points:
                rows.setdefault((at, *key), {})[s.labels.get(FIELD, "")] = value
        return [PartitionLagPoint(at=at, topic=topic, partition=partition, lag=as_int(row.get("lag")),
                                  time_lag_seconds=finite(row.get("time_lag")))
                for (at, topic, partition), row in sorted(rows.items()) if "lag" in row]

    def topic_series(self, cluster: str, topic: str, start: float, end: float,
                     max_points: int = 500) -> list[TopicPoint]:
        step, w = self._step(start, end, max_points)
        sel = lambda name: self._sel(name, cluster=cluster, topic=topic)  # noqa: E731
        parts = {
            "produce": f"max by (cluster, topic) (avg_over_time({sel(TOPIC_PRODUCE)}[{w}]))",
            "end": f"max by (cluster, topic) (max_over_time({sel(TOPIC_END)}[{w}]))",
            "messages": f"max by (cluster, topic) (max_over_time({sel(TOPIC_MESSAGES)}[{w}]))",
            "under": f"max by (cluster, topic) (max_over_time({sel(TOPIC_UNDER)}[{w}]))",
            "offline": f"max by (cluster, topic) (max_over_time({sel(TOPIC_OFFLINE)}[{w}]))",
        }
        return [TopicPoint(at=at, produce_rate=finite(row.get("produce")), end_offset_sum=as_int(row.get("end")),
                           message_count=as_int(row.get("messages")), under_replicated=as_int(row.get("under")),
                           offline=as_int(row.get("offline")))
                for at, row in sorted(self._range(parts, start, end, step).items()) if "end" in row]

    def partition_rate_series(self, cluster: str, topic: str, start: float, end: float,
                              max_points: int = 200) -> list[PartitionRatePoint]:
        step, w = self._step(start, end, max_points)
        expr = f"max by (partition) (max_over_time({self._sel(PART_END, cluster=cluster, topic=topic)}[{w}]))"
        out: list[PartitionRatePoint] = []
        for s in self._client.query_range(expr, start, end, step):
            partition, previous = _partition(s.labels), None
            for at, value in s.points:
                offset = as_int(value)
                if offset is None:
                    continue
                rate = None
                if previous is not None and offset >= previous[1] and at > previous[0]:
                    rate = (offset - previous[1]) / (at - previous[0])
                out.append(PartitionRatePoint(at=at, partition=partition, end_offset=offset, rate=rate))
                previous = (at, offset)
        return sorted(out, key=lambda p: (p["at"], p["partition"]))

    def cluster_series(self, cluster: str, start: float, end: float,
                       max_points: int = 500) -> list[ClusterPoint]:
        step, w = self._step(start, end, max_points)
        sel = lambda name: self._sel(name, cluster=cluster)  # noqa: E731
        parts = {
            "up": f"min(min_over_time({self._sel(COLLECTOR_UP, collector=f'kafka:{cluster}')}[{w}]))",
            "lag": f"sum(max by (group, topic) (max_over_time({sel(GROUP_LAG)}[{w}])))",
            "time_lag": f"max(max_over_time({sel(GROUP_LAG_SECONDS)}[{w}]))",
            "groups": f"count(max by (group) (max_over_time({sel(GROUP_MEMBERS)}[{w}])))",
            "brokers": f"max(max_over_time({sel(BROKERS)}[{w}]))",
        }
        return [ClusterPoint(at=at, ok=row.get("up", 0) >= 1, total_lag=as_int(row.get("lag")),
                             max_time_lag_seconds=finite(row.get("time_lag")), groups=as_int(row.get("groups")),
                             brokers=as_int(row.get("brokers")))
                for at, row in sorted(self._range(parts, start, end, step).items()) if "up" in row or "brokers" in row]

    def commit_history(self, cluster: str, group: str, start: float, end: float,
                       limit: int = 10) -> list[CommitPoint]:
        """Commits seen in the exported per-partition committed offsets (so only with partition
        metrics), each dated by the scrape step that first showed it."""
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if end < start:
            return []
        step, _ = self._step(start, end, 1000)
        expr = f"max by (topic, partition) ({self._sel(PART_COMMITTED, cluster=cluster, group=group)})"
        out: list[CommitPoint] = []
        for s in self._client.query_range(expr, start, end, step):
            observed = ((at, int(v)) for at, v in s.points if math.isfinite(v))
            out.extend(commit_points(s.labels.get("topic", ""), _partition(s.labels), observed, limit))
        out.sort(key=lambda c: (c["topic"], c["partition"], c["at"]))
        return out

    def window(self, cluster: str, kind: WindowKind, key: str | None, seconds: float,
               now: float | None = None) -> list[dict[str, Any]]:
        """The alert rules' rows, one per scrape interval (a fleet's replicas evaluate their own
        alerts on their embedded windows; this serves the same call for completeness)."""
        end = self._clock() if now is None else now
        start = end - seconds
        points = max(2, min(1000, int(seconds / self._client.config.scrape_interval_seconds) + 1))
        if kind == "group":
            return [dict(p) for p in self.group_series(cluster, key or "", start, end, points)]
        if kind == "topic":
            return [dict(p) for p in self.topic_series(cluster, key or "", start, end, points)]
        return [dict(p) for p in self.cluster_series(cluster, start, end, points)]

    # -- what only the embedded history has -----------------------------------------------------

    @property
    def per_partition_history(self) -> bool:
        """Whether per-partition series are exported (`exporter.partition_metrics`); asked at
        most once a minute."""
        now = time.monotonic()
        with self._lock:
            if self._partition_check is not None and now - self._partition_check[0] < 60:
                return self._partition_check[1]
        try:
            answer = bool(self._client.query(f"count({self._sel(PART_LAG)}) or count({self._sel(PART_END)})"))
        except Exception:
            answer = False
        with self._lock:
            self._partition_check = (now, answer)
        return answer


def _partition(labels: Mapping[str, str]) -> int:
    try:
        return int(labels.get("partition", "-1"))
    except ValueError:
        return -1
