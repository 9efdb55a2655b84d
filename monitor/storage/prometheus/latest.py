"""`PrometheusSnapshots`: the latest values Prometheus holds, as the `Snapshot` the pages read.

`streamscope serve` runs no collector: its Overview, Topics and Consumer groups pages read what
the fleet's replicas exported, asked with one instant query (every group, topic, cluster and
collector family at once) every `refresh_seconds`, on its own thread. A group exported by two replicas at
once (a takeover in progress) is shown once.

What the exported series do not carry stays empty: per-partition offsets and lags (unless
`exporter.partition_metrics`), brokers' addresses, when an Empty group became empty. A query
that fails keeps the last snapshot (the page says how old it is) and is logged once a minute.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from collectors.models import (Broker, ClusterState, CollectorHealth, GroupLag, KafkaClusterSnapshot, KafkaLagView,
                               Snapshot, Status, TimeLagMethod, Topic, TopicLag, TopicRates)
from monitor.storage.prometheus.client import PrometheusClient, PrometheusError, Series, finite

log = logging.getLogger(__name__)

_GROUP_TOPIC = ("lag", "readable_lag", "lag_seconds", "lag_seconds_exact", "lag_seconds_lower_bound", "consume_rate")
_GROUP = ("eta_seconds", "status", "members", "empty", "uncommitted_partitions", "info")
_TOPIC = ("partitions", "partitions_under_replicated", "partitions_offline", "end_offset", "messages", "produce_rate")
_COLLECTOR = ("up", "last_success_timestamp_seconds", "duration_seconds", "cycles_total", "failures_total")
FAMILIES = ("streamscope_kafka_(consumergroup_(" + "|".join(_GROUP_TOPIC + _GROUP) + ")"
            "|topic_(" + "|".join(_TOPIC) + ")|brokers|controller_id)"
            "|streamscope_collector_(" + "|".join(_COLLECTOR) + ")")
_STATUS_RANK = {s: i for i, s in enumerate(Status)}


@dataclass
class _Group:
    per_topic: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    values: dict[str, float] = field(default_factory=dict)
    state: str = "Unknown"
    status: Status | None = None


@dataclass
class _Cluster:
    groups: dict[str, _Group] = field(default_factory=lambda: defaultdict(_Group))
    topics: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    brokers: float | None = None
    controller: float | None = None


def _keep_max(values: dict[str, float], key: str, value: float) -> None:
    """Two replicas exporting one series (a takeover in progress): the larger value is kept."""
    old = values.get(key)
    if old is None or value > old:
        values[key] = value


def _sort_series(series: Iterable[Series]) -> tuple[dict[str, _Cluster], dict[tuple[str, str], dict]]:
    clusters: dict[str, _Cluster] = defaultdict(_Cluster)
    collectors: dict[tuple[str, str], dict] = defaultdict(dict)
    for s in series:
        name, labels, value = s.labels.get("__name__", ""), s.labels, s.last
        if value is None:
            continue
        if name.startswith("streamscope_collector_"):
            key = (labels.get("collector", ""), labels.get("instance", ""))
            collectors[key][name[len("streamscope_collector_"):]] = value
            collectors[key]["kind"] = labels.get("kind", "")
            continue
        cluster = clusters[labels.get("cluster", "")]
        if name.startswith("streamscope_kafka_consumergroup_"):
            part = name[len("streamscope_kafka_consumergroup_"):]
            g = cluster.groups[labels.get("group", "")]
            if part in _GROUP_TOPIC:
                _keep_max(g.per_topic[labels.get("topic", "")], part, value)
            elif part == "info":
                g.state = labels.get("state", g.state)
            elif part == "status":
                if value >= 1:
                    status = _status(labels.get("status"))
                    if status is not None and (g.status is None or _STATUS_RANK[status] > _STATUS_RANK[g.status]):
                        g.status = status
            else:
                _keep_max(g.values, part, value)
        elif name.startswith("streamscope_kafka_topic_"):
            _keep_max(cluster.topics[labels.get("topic", "")], name[len("streamscope_kafka_topic_"):], value)
        elif name == "streamscope_kafka_brokers":
            cluster.brokers = max(value, cluster.brokers or 0)
        elif name == "streamscope_kafka_controller_id":
            cluster.controller = value
    clusters.pop("", None)
    return clusters, collectors


def _status(text: str | None) -> Status | None:
    try:
        return Status(text)
    except ValueError:
        return None


def _int(value: float | None) -> int:
    value = finite(value)
    return 0 if value is None else int(round(value))


def group_lag(cluster: str, name: str, g: _Group, topics: dict[str, dict[str, float]], at: float) -> GroupLag:
    """A group as the pages read it, from its exported series."""
    per_topic = g.per_topic
    timed = [(finite(v.get("lag_seconds")), v) for v in per_topic.values()]
    timed = [(seconds, v) for seconds, v in timed if seconds is not None]
    worst = max(timed, key=lambda item: item[0], default=None)
    method = _method(worst[0], worst[1]) if worst is not None else TimeLagMethod.NONE
    consume = [finite(v.get("consume_rate")) for v in per_topic.values()]
    produce = [finite(topics.get(t, {}).get("produce_rate")) for t in per_topic]
    return GroupLag(
        cluster=cluster, group=name, state=g.state, members=_int(g.values.get("members")),
        is_empty=g.values.get("empty", 0) >= 1, empty_since=None,
        lag=sum(_int(v.get("lag")) for v in per_topic.values()),
        time_lag_seconds=worst[0] if worst else None, time_lag_method=method,
        consume_rate=sum(c for c in consume if c is not None) if any(c is not None for c in consume) else None,
        produce_rate=sum(p for p in produce if p is not None) if any(p is not None for p in produce) else None,
        eta_seconds=finite(g.values.get("eta_seconds")), status=g.status or Status.OK, partitions=(),
        topics=tuple(sorted(t for t in per_topic if t)), fetched_at=at,
        time_lag_lower_bound=any(v.get("lag_seconds_lower_bound", 0) >= 1 for v in per_topic.values()),
        readable_lag=sum(_int(v.get("readable_lag", v.get("lag"))) for v in per_topic.values()),
        uncommitted_partitions=_int(g.values.get("uncommitted_partitions")),
        topic_lags=tuple(_topic_lag(topic, per_topic[topic]) for topic in sorted(per_topic) if topic),
    )


def _topic_lag(topic: str, values: dict[str, float]) -> TopicLag:
    """A group's lag on one topic as its exported series give it."""
    seconds = finite(values.get("lag_seconds"))
    return TopicLag(topic, _int(values.get("lag")), _int(values.get("readable_lag", values.get("lag"))), seconds,
                    _method(seconds, values), seconds is not None and values.get("lag_seconds_lower_bound", 0) >= 1,
                    finite(values.get("consume_rate")))


def _method(seconds: float | None, values: dict[str, float]) -> TimeLagMethod:
    """A topic's time lag method as its exported series give it."""
    if seconds is not None and values.get("lag_seconds_exact", 0) >= 1:
        return TimeLagMethod.EXACT
    if seconds is not None and seconds > 0:
        return TimeLagMethod.INTERPOLATED
    return TimeLagMethod.NONE


def topic_rates(cluster: str, name: str, t: dict[str, float]) -> TopicRates:
    return TopicRates(cluster=cluster, topic=name, partitions=_int(t.get("partitions")),
                      end_offset_sum=_int(t.get("end_offset")), message_count=_int(t.get("messages")),
                      produce_rate=finite(t.get("produce_rate")), partition_produce_rates=(),
                      under_replicated=_int(t.get("partitions_under_replicated")),
                      offline=_int(t.get("partitions_offline")))


def collector_health(collector: str, instance: str, values: dict, several: bool) -> CollectorHealth:
    last = finite(values.get("last_success_timestamp_seconds"))
    return CollectorHealth(
        name=f"{collector} @ {instance}" if several and instance else collector, kind=str(values.get("kind", "")),
        up=values.get("up", 0) >= 1, last_attempt_at=last or 0.0, last_success_at=last,
        duration_seconds=finite(values.get("duration_seconds")) or 0.0,
        cycles_total=_int(values.get("cycles_total")), failures_total=_int(values.get("failures_total")))


def build_snapshot(series: Iterable[Series], at: float) -> Snapshot:
    clusters, collectors = _sort_series(series)
    instances = defaultdict(set)
    for collector, instance in collectors:
        instances[collector].add(instance)
    health = tuple(collector_health(c, i, v, len(instances[c]) > 1) for (c, i), v in sorted(collectors.items()))
    states = []
    for name, c in sorted(clusters.items()):
        up = [h.up for h in health if h.name.split(" @ ")[0] == f"kafka:{name}"]
        raw = KafkaClusterSnapshot(
            cluster=name, started_at=at, finished_at=at, end_offsets_fetched_at=at,
            brokers=tuple(Broker(id=i + 1, host="", port=0) for i in range(_int(c.brokers))),
            controller_id=None if c.controller is None else _int(c.controller),
            topics=tuple(Topic(name=t, partitions=(), internal=t.startswith("__")) for t in sorted(c.topics)),
        )
        lag = KafkaLagView(cluster=name, at=at,
                           groups=tuple(group_lag(name, g, c.groups[g], c.topics, at) for g in sorted(c.groups) if g),
                           topics=tuple(topic_rates(name, t, c.topics[t]) for t in sorted(c.topics) if t))
        states.append(ClusterState(raw=raw, lag=lag, stale=bool(up) and not any(up)))
    return Snapshot(at=at, clusters=tuple(states), health=health)


class PrometheusSnapshots:
    """A `LatestSnapshot` over Prometheus (see the module docstring). A service: `start()` runs
    the query every `refresh_seconds` on its own thread, so the pages and the API only read the
    last answer (no request waits on Prometheus); `refresh()` asks once."""

    def __init__(self, client: PrometheusClient, *, refresh_seconds: float,
                 clock: Callable[[], float] = time.time):
        self._client = client
        self._refresh = refresh_seconds
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._last_warning = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def latest(self) -> Snapshot | None:
        return self._snapshot

    def refresh(self) -> Snapshot | None:
        """One instant query; a failure keeps the last snapshot (logged once a minute)."""
        at = self._clock()
        try:
            self._snapshot = build_snapshot(self._client.query(self._query(), at), at)
        except PrometheusError as exc:
            now = time.monotonic()
            if now - self._last_warning > 60:
                self._last_warning = now
                log.warning("reading the latest values from Prometheus failed: %s", exc)
        return self._snapshot

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prometheus-latest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._client.config.timeout_seconds + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self._refresh)

    def _query(self) -> str:
        matchers = ",".join([f'__name__=~"{FAMILIES}"', *self._client.config.matchers])
        return "{" + matchers + "}"
