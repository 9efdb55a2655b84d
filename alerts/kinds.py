"""One small pure function per rule kind.

    fn(snapshot, window, rule, now) -> list[Sample]

`snapshot` is a `collectors.models.Snapshot` (Spark apps as its typed views), `window` is
`AlertInputs.window` (as a `Windows`, which also has `peaks` where the inputs do), `now` the
evaluation time. Each function
returns the label sets that breach *now*; `for`, `keep_firing_for`, matchers, silences and
grouping are the engine's business.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from operator import attrgetter

from collectors.kafka.partition_health import topic_counts, topic_under_min_isr
from collectors.models import Snapshot, Topic
from collectors.spark.models import SparkQueryView
from collectors.values import finite_float as _num

from .inputs import Sample
from .rules import RuleKind, RuleSpec

log = logging.getLogger(__name__)

WindowFn = Callable[[str, str, str, float, float], list[dict]]
# (cluster, kind, field, seconds, now) -> {key: the greatest finite value of `field` in the window}
PeaksFn = Callable[[str, str, str, float, float], dict[str, float]]
KindFn = Callable[[Snapshot, WindowFn, RuleSpec, float], list[Sample]]


# ------------------------------------------------------------------------------------ Kafka


def _per_group_topic(snapshot: Snapshot, threshold: float, value: str, lower: str | None = None) -> list[Sample]:
    """One sample per (cluster, group, topic) whose `value` (a field of `TopicLag`, summed once a
    cycle by derive) is above `threshold`; a group without topic detail gives one sample of its
    own `value` (topic set when it has one topic). With `lower` (the field saying the value is
    only a lower bound), a value at or below the threshold that is only a lower bound gives a held
    sample (see `Sample`): the alert neither starts nor resolves on it."""
    out = []
    value_of = attrgetter(value)
    lower_of = attrgetter(lower) if lower else lambda _: False

    def add(of, labels: tuple[tuple[str, str], ...]) -> None:
        v = value_of(of)
        if v is None:
            return
        if v > threshold:
            out.append(Sample(labels, float(v)))
        elif lower_of(of):
            out.append(Sample(labels, float(v), True))

    # labels in `Sample`'s order (sorted by name), made here: a sample per group and topic
    for cs in snapshot.clusters:
        cluster = ("cluster", cs.lag.cluster)
        for g in cs.lag.groups:
            group = ("group", g.group)
            if not g.topic_lags:
                add(g, (cluster, group, ("topic", g.topics[0])) if len(g.topics) == 1 else (cluster, group))
            for t in g.topic_lags:
                add(t, (cluster, group, ("topic", t.topic)))
    return out


def consumer_lag_messages(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Records left to read (readable lag): a consumer caught up on a transaction marker is 0."""
    return _per_group_topic(snapshot, rule.effective_threshold, "readable_lag")


def consumer_lag_seconds(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Age of the oldest readable unconsumed record. Fires on a lower bound above the threshold,
    never resolves on one below it."""
    return _per_group_topic(snapshot, rule.effective_threshold, "time_lag_seconds", "time_lag_lower_bound")


def group_status(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    wanted = set(rule.effective_statuses)
    out = []
    for cs in snapshot.clusters:
        cluster = ("cluster", cs.lag.cluster)
        for g in cs.lag.groups:
            if g.status in wanted:  # labels in `Sample`'s order (sorted by name), made here
                out.append(Sample((cluster, ("group", g.group), ("status", g.status.value)), float(g.status.severity)))
    return out


def empty_group_with_lag(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    thr = rule.effective_threshold
    return [
        Sample((("cluster", cs.lag.cluster), ("group", g.group)), float(g.readable_lag))  # labels in order
        for cs in snapshot.clusters for g in cs.lag.groups
        if g.is_empty and g.readable_lag > thr
    ]


def topic_produce_stopped(snapshot: Snapshot, window: Windows, rule: RuleSpec, now: float) -> list[Sample]:
    thr = rule.effective_threshold
    out = []
    for cs in snapshot.clusters:
        idle = [t for t in cs.lag.topics if t.produce_rate is not None and t.produce_rate <= thr]
        if not idle:
            continue
        # Every idle topic asks whether it produced within the window (1 h by default): with its
        # rows, 1,000 idle topics read 240,000 of them each cycle at a 15 s interval (~0.4 s);
        # the greatest rate per topic is one query (`Windows.peaks`), where the inputs have it.
        # (below 0 a topic without rows would count as having produced: the rows answer that)
        peaks = window.peaks(cs.lag.cluster, "topic", "produce_rate", rule.effective_window, now) if thr >= 0 else None
        for t in idle:
            if peaks is not None:
                produced = (peaks.get(t.topic) or 0.0) > thr
            else:
                rows = window(cs.lag.cluster, "topic", t.topic, rule.effective_window, now)
                produced = any((_num(r.get("produce_rate")) or 0.0) > thr for r in rows)
            if produced:
                out.append(Sample.of(t.produce_rate, cluster=cs.lag.cluster, topic=t.topic))
    return out


def _topics_above(snapshot: Snapshot, threshold: float, field: str, count: Callable[[Topic], int | None]
                  ) -> list[Sample]:
    """Topics whose count (`partition_health.topic_counts`) is above `threshold`."""
    return [
        Sample.of(n, cluster=cs.raw.cluster, topic=topic)
        for cs in snapshot.clusters
        for topic, n in sorted(topic_counts(cs, field, count).items())
        if n is not None and n > threshold
    ]


def under_replicated_partitions(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    return _topics_above(snapshot, rule.effective_threshold, "under_replicated",
                         lambda t: sum(1 for p in t.partitions if p.under_replicated))


def offline_partitions(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    return _topics_above(snapshot, rule.effective_threshold, "offline", lambda t: sum(1 for p in t.partitions if p.offline))


def group_offsets_unavailable(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Groups whose committed offsets a successful cycle could not fetch (a stale cluster is
    collector_down's): their lag is unknown, so no lag alert can fire for them."""
    thr = rule.effective_threshold
    out = []
    for cs in snapshot.clusters:
        if cs.stale or not cs.raw.ok:
            continue
        failed = len(cs.raw.failed_groups)
        if failed > thr:
            out.append(Sample.of(failed, cluster=cs.raw.cluster))
    return out


def log_dirs_unavailable(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Clusters whose last DescribeLogDirs round left directories unknown (`log_dirs_error`):
    disk use and the size-based retention headroom may be out of date meanwhile."""
    return _clusters_incomplete(snapshot, "log_dirs_complete")


def topic_configs_unavailable(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Clusters with topics whose settings are unknown, or the last DescribeConfigs failed
    (`topic_configs_error`): retention headroom and under-min-ISR counts need them."""
    return _clusters_incomplete(snapshot, "topic_configs_complete")


def _clusters_incomplete(snapshot: Snapshot, complete: str) -> list[Sample]:
    """Value 1 per cluster whose successful cycle has `complete` False (a stale cluster is
    collector_down's)."""
    return [Sample.of(1.0, cluster=cs.raw.cluster) for cs in snapshot.clusters
            if not cs.stale and cs.raw.ok and getattr(cs.raw, complete) is False]


def broker_count_dropped(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    thr = rule.effective_threshold
    out = []
    for cs in snapshot.clusters:
        if cs.stale or not cs.raw.ok:
            continue  # unknown now; collector_down covers it
        current = len(cs.raw.brokers)
        rows = window(cs.raw.cluster, "cluster", "", rule.effective_window, now)
        seen = [int(b) for b in (_num(r.get("brokers")) for r in rows) if b is not None]
        peak = max([current, *seen])
        drop = peak - current
        if drop > 0 and drop >= thr:
            out.append(Sample.of(drop, cluster=cs.raw.cluster))
    return out


def under_min_isr_partitions(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Topics whose min.insync.replicas is known and some partitions are below it."""
    return _topics_above(snapshot, rule.effective_threshold, "under_min_isr", topic_under_min_isr)


def retention_headroom(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Groups that would lose unread records within `threshold` seconds if they stopped. An
    upper bound below the threshold fires (the truth is even less); one above it holds."""
    thr = rule.effective_threshold
    out = []
    for cs in snapshot.clusters:
        for r in cs.lag.retention:
            if r.headroom_seconds is None or r.lost:
                continue  # compacted or unknown; records already lost: records_lost says so
            labels = {"cluster": cs.lag.cluster, "group": r.group, "topic": r.topic}
            if r.headroom_seconds < thr:
                out.append(Sample.of(r.headroom_seconds, **labels))
            elif r.upper_bound:
                out.append(Sample.held(min(r.headroom_seconds, 1e18), **labels))
    return out


def records_lost(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    thr = rule.effective_threshold
    return [Sample.of(r.lost, cluster=cs.lag.cluster, group=r.group, topic=r.topic)
            for cs in snapshot.clusters for r in cs.lag.retention if r.lost > thr]


def probe_failing(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    out = []
    for cs in snapshot.clusters:
        probe = cs.probe
        if probe is None or probe.up or probe.rounds_total == 0:
            continue
        since = max(0.0, now - probe.last_success_at) if probe.last_success_at is not None else 0.0
        out.append(Sample.of(since, cluster=cs.raw.cluster))
    return out


# ------------------------------------------------------------------------------------ collectors


def _collector_cluster(name: str, kind: str, clusters: set[str]) -> str | None:
    if kind != "kafka":
        return None
    # health names look like "kafka:<cluster>"
    return name.split(":", 1)[1] if name.startswith("kafka:") else name


def collector_down(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    clusters = {cs.raw.cluster for cs in snapshot.clusters}
    out: dict[tuple, Sample] = {}
    covered: set[str] = set()
    for h in snapshot.health:
        cluster = _collector_cluster(h.name, h.kind, clusters)
        if cluster:
            covered.add(cluster)
        if not h.up:
            s = Sample.of(1, collector=h.name, kind=h.kind, cluster=cluster)
            out[s.labels] = s
    for cs in snapshot.clusters:
        if (cs.stale or not cs.raw.ok) and cs.raw.cluster not in covered:
            s = Sample.of(1, collector=f"kafka:{cs.raw.cluster}", kind="kafka", cluster=cs.raw.cluster)
            out[s.labels] = s
    return list(out.values())


def history_down(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    history = snapshot.history
    if history is None or history.up:
        return []
    return [Sample.of(history.failures_total)]


def data_stale(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    thr = rule.effective_threshold
    clusters = {cs.raw.cluster for cs in snapshot.clusters}
    out = []
    for h in snapshot.health:
        if h.last_success_at is None:
            continue  # never succeeded: collector_down says so
        age = max(0.0, now - h.last_success_at)
        if age > thr:
            out.append(Sample.of(age, collector=h.name, kind=h.kind, cluster=_collector_cluster(h.name, h.kind, clusters)))
    return out


# ------------------------------------------------------------------------------------ Spark
#
# Spark rules read the snapshot's typed Spark views (`collectors.spark.views`): apps and queries
# are labelled exactly as the exporter labels them, and a query restarted under its name is
# counted once (`SparkAppView.current_queries`).


def _running_queries(snapshot: Snapshot) -> Iterator[tuple[str, SparkQueryView]]:
    for app in snapshot.spark:
        for q in app.current_queries:
            if not q.stopped:
                yield app.label, q


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


def spark_batch_over_trigger(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    n = rule.effective_consecutive
    ratio = rule.effective_threshold
    out = []
    for app, q in _running_queries(snapshot):
        trigger = q.trigger_interval_seconds
        if not trigger:
            continue  # default trigger (as fast as possible): nothing to compare with
        batches = q.finished_batches[-n:]
        if len(batches) < n:
            continue
        durations = [_seconds(b.measured_duration_ms) for b in batches]
        if all(d is not None and d > trigger * ratio for d in durations):
            out.append(Sample.of(durations[-1], app=app, query=q.label))
    return out


def spark_processing_below_input(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Processed rows/s below `threshold` x input rows/s in every batch of the window (the
    batches the query carries; the window rows when its batches have no trigger time)."""
    ratio = rule.effective_threshold
    span = rule.effective_window
    out = []
    for app, q in _running_queries(snapshot):
        batches = q.finished_batches
        if batches and all(b.timestamp is not None for b in batches):
            pairs = [(b.input_rows_per_second, b.processed_rows_per_second) for b in batches
                     if b.timestamp >= now - span]
        else:
            pairs = [(_num(r.get("input_rows_per_second")), _num(r.get("processed_rows_per_second")))
                     for r in window(app, "spark_query", q.label, span, now)]
            if not pairs and batches:
                pairs = [(batches[-1].input_rows_per_second, batches[-1].processed_rows_per_second)]
        usable = [(i, p) for i, p in pairs if i is not None and p is not None and i > 0]
        if usable and all(p < ratio * i for i, p in usable):
            i, p = usable[-1]
            out.append(Sample.of(p / i, app=app, query=q.label))
    return out


def spark_query_lag(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    thr = rule.effective_threshold
    return [Sample.of(t.messages, app=app.label, query=q.label, topic=t.topic)
            for app in snapshot.spark for q in app.current_queries for t in q.kafka_lag if t.messages > thr]


def spark_query_failed(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    return [Sample.of(1, app=app.label, query=q.label)
            for app in snapshot.spark for q in app.current_queries if q.failed]


def spark_app_down(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    return [Sample.of(1, app=app.label) for app in snapshot.spark if app.unreachable]


def spark_failed_jobs(snapshot: Snapshot, window: WindowFn, rule: RuleSpec, now: float) -> list[Sample]:
    """Jobs that failed within the window: from the listed failed jobs and their times, else from
    the failed-jobs counter against its value at the window's start."""
    thr = rule.effective_threshold
    span = rule.effective_window
    out = []
    for app in snapshot.spark:
        failed = app.failed_jobs_since(now - span)
        if failed is None:
            total = app.failed_jobs
            values = [v for v in (_num(r.get("failed_jobs")) for r in window(app.label, "spark_app", app.label, span, now))
                      if v is not None]
            if total is None or not values:
                continue
            baseline = values[0]
            # counter semantics: a drop means the app restarted; count from zero then
            failed = total - baseline if total >= baseline else total
        if failed > thr:
            out.append(Sample.of(failed, app=app.label))
    return out


KIND_FUNCTIONS: dict[RuleKind, KindFn] = {
    RuleKind.CONSUMER_LAG_MESSAGES: consumer_lag_messages,
    RuleKind.CONSUMER_LAG_SECONDS: consumer_lag_seconds,
    RuleKind.GROUP_STATUS: group_status,
    RuleKind.EMPTY_GROUP_WITH_LAG: empty_group_with_lag,
    RuleKind.TOPIC_PRODUCE_STOPPED: topic_produce_stopped,
    RuleKind.UNDER_REPLICATED_PARTITIONS: under_replicated_partitions,
    RuleKind.OFFLINE_PARTITIONS: offline_partitions,
    RuleKind.BROKER_COUNT_DROPPED: broker_count_dropped,
    RuleKind.UNDER_MIN_ISR_PARTITIONS: under_min_isr_partitions,
    RuleKind.RETENTION_HEADROOM: retention_headroom,
    RuleKind.RECORDS_LOST: records_lost,
    RuleKind.GROUP_OFFSETS_UNAVAILABLE: group_offsets_unavailable,
    RuleKind.LOG_DIRS_UNAVAILABLE: log_dirs_unavailable,
    RuleKind.TOPIC_CONFIGS_UNAVAILABLE: topic_configs_unavailable,
    RuleKind.PROBE_FAILING: probe_failing,
    RuleKind.COLLECTOR_DOWN: collector_down,
    RuleKind.HISTORY_DOWN: history_down,
    RuleKind.DATA_STALE: data_stale,
    RuleKind.SPARK_BATCH_OVER_TRIGGER: spark_batch_over_trigger,
    RuleKind.SPARK_PROCESSING_BELOW_INPUT: spark_processing_below_input,
    RuleKind.SPARK_QUERY_LAG: spark_query_lag,
    RuleKind.SPARK_QUERY_FAILED: spark_query_failed,
    RuleKind.SPARK_FAILED_JOBS: spark_failed_jobs,
    RuleKind.SPARK_APP_DOWN: spark_app_down,
}
assert set(KIND_FUNCTIONS) == set(RuleKind), "every rule kind needs a function"


class Windows:
    """What a kind reads of the past: a series' rows (called as the `WindowFn`) and, where the
    inputs have them, the peak of a field per series (`peaks`). A history that does not keep some
    kind of window (ValueError/KeyError/NotImplementedError) yields no rows, and no peaks (the
    kind then reads rows), instead of failing the rule."""

    def __init__(self, window: WindowFn, peaks: PeaksFn | None = None) -> None:
        self._window = window
        self._peaks = peaks

    def __call__(self, cluster: str, kind: str, key: str, seconds: float, now: float) -> list[dict]:
        try:
            return list(self._window(cluster, kind, key, seconds, now) or ())
        except (ValueError, KeyError, NotImplementedError) as exc:
            log.debug("no %s window for %s/%s: %s", kind, cluster, key, exc)
            return []

    def peaks(self, cluster: str, kind: str, field: str, seconds: float, now: float) -> dict[str, float] | None:
        """{key: the greatest finite `field` of its rows in the window} (keys without one left
        out), or None where the inputs cannot say."""
        if self._peaks is None:
            return None
        try:
            return self._peaks(cluster, kind, field, seconds, now)
        except (ValueError, KeyError, NotImplementedError) as exc:
            log.debug("no %s peaks of %s for %s: %s", kind, field, cluster, exc)
            return None


def evaluate_rule(rule: RuleSpec, snapshot: Snapshot, window: WindowFn, now: float,
                  peaks: PeaksFn | None = None) -> list[Sample]:
    """Samples of one rule after its matchers (matchers see the sample labels)."""
    samples = KIND_FUNCTIONS[rule.kind](snapshot, Windows(window, peaks), rule, now)
    matchers = rule.compiled_matchers
    if not matchers:
        return samples
    return [s for s in samples if all(m.matches(s.label_dict) for m in matchers)]
