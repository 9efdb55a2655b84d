"""The Spark read model: every value derived from Spark snapshots, computed once, here.

`spark_views(apps, clusters)` turns one cycle's `SparkAppSnapshot`s into the `SparkAppView`s a
`Snapshot` carries: each app with its `app` label (unique in the snapshot), each query with its
Kafka lag per topic (against the Kafka collector's end offsets of the same cycle) and the topics
it reads, and the one query per label that is exported and alerted on. Alerts, storage, the
exporter and the dashboard read these typed fields; none of them derives Spark values itself.

Labels: `app` is the application name; when several apps share a name, the only running one (the
only answering one, when one is down) keeps the bare name and every other one gets
`"<name> (<app id>)"` (`disambiguate_app_names`). `query` is the query's name, or its id when
unnamed.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from collectors.models import ClusterState
from collectors.spark.lag import AGAINST_END_OFFSETS, query_kafka_lag
from collectors.spark.models import (
    LAG_SPARK_METRIC,
    LAG_VS_BATCH_LATEST,
    LAG_VS_END_OFFSETS,
    QueryState,
    SourceProgress,
    SparkAppSnapshot,
    SparkAppView,
    SparkQueryView,
    StreamingQuery,
    TopicLag,
)


def spark_views(apps: Iterable[SparkAppSnapshot], clusters: Iterable[ClusterState] = ()) -> tuple[SparkAppView, ...]:
    """The read model of one cycle's apps; `clusters` give the topics' end offsets for the
    queries' lag (without them, lag is measured against what each source saw as latest)."""
    apps = list(apps)
    ends = topic_end_offsets(clusters) if apps else {}  # a walk over every partition: not for no app
    labels = disambiguate_app_names([(s.app.name, s.app.id, app_liveness(s)) for s in apps])
    out = []
    for snap, label in zip(apps, labels):
        queries = tuple(query_view(q, ends) for q in snap.queries)
        out.append(SparkAppView(raw=snap, label=label, queries=queries, current_queries=pick_queries(queries)))
    return tuple(out)


def topic_end_offsets(clusters: Iterable[ClusterState]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> end offset (high watermark) over all clusters (the first wins)."""
    out: dict[tuple[str, int], int] = {}
    for state in clusters:
        for t in state.raw.topics:
            for p in t.partitions:
                if p.latest_offset is not None:
                    out.setdefault((t.name, p.partition), p.latest_offset)
    return out


def query_view(query: StreamingQuery, end_offsets: Mapping[tuple[str, int], int]) -> SparkQueryView:
    progress = query.last_progress
    topics: list[str] = []
    for src in (progress.sources if progress is not None else ()):
        topics += [t for t in source_topics(src) if t not in topics]
    return SparkQueryView(raw=query, kafka_lag=query_topic_lag(query, end_offsets), source_topics=tuple(topics))


def query_topic_lag(query: StreamingQuery, end_offsets: Mapping[tuple[str, int], int]) -> tuple[TopicLag, ...]:
    """Messages the query is behind, per topic: its processed positions against the topics' end
    offsets (else against the latest offsets its source saw at that batch); without positions,
    Spark's own maxOffsetsBehindLatest of its latest full progress."""
    totals: dict[str, list] = {}
    for p in query_kafka_lag(query, end_offsets, latest_fallback=True):
        t = totals.setdefault(p.topic, [0, LAG_VS_BATCH_LATEST])
        t[0] += p.lag
        if p.against == AGAINST_END_OFFSETS:
            t[1] = LAG_VS_END_OFFSETS
    if totals:
        return tuple(TopicLag(topic, messages, method) for topic, (messages, method) in sorted(totals.items()))
    progress = query.last_progress
    behind: dict[str, float] = {}
    for src in (progress.sources if progress is not None else ()):
        if src.max_offsets_behind_latest is None:
            continue
        for topic in source_topics(src) or [src.description]:
            behind[topic] = behind.get(topic, 0.0) + src.max_offsets_behind_latest
    return tuple(TopicLag(topic, int(n), LAG_SPARK_METRIC) for topic, n in sorted(behind.items()))


_TOPIC_IN_DESC = re.compile(r"(?:Subscribe(?:Pattern)?|Assign)\[([^\]]*)\]")


def source_topics(source: SourceProgress) -> list[str]:
    """Kafka topics a source reads: from its offsets, else its description
    ('KafkaV2[Subscribe[clickstream]]')."""
    topics: list[str] = []
    for po in (*source.end_offsets, *source.start_offsets, *source.latest_offsets):
        if po.topic not in topics:
            topics.append(po.topic)
    if topics:
        return topics
    m = _TOPIC_IN_DESC.search(source.description)
    if m and source.description.lower().startswith("kafka"):
        topics = [t.strip() for t in m.group(1).split(",") if t.strip() and "=" not in t]
    return topics


# --------------------------------------------------------------------------------------------
# labels and the query per label
# --------------------------------------------------------------------------------------------


def disambiguate_app_names(entries: Sequence[tuple[str | None, str, int]]) -> list[str]:
    """`app` label per entry `(name, app id, liveness)`, in the same order.

    `liveness`: 2 running and answering, 1 running but not answering (its driver is gone or
    does not respond), 0 finished; a bool counts as 1 (running) or 0. A name is kept bare for
    exactly one app: among the apps sharing it, the only one at the highest liveness, unless
    that is "finished". Every other app sharing the name becomes `"<name> (<app id>)"`. So a
    restarted app (new id, same name) keeps its label even while a History Server still lists
    the finished run, or while the killed run is still shown down; two live apps with the same
    name never collide. An empty name is replaced by the app id.
    """
    names = [(n or app_id) for n, app_id, _ in entries]
    levels = [int(live) for _, _, live in entries]
    total = Counter(names)
    top: dict[str, int] = {}
    for name, level in zip(names, levels):
        top[name] = max(top.get(name, 0), level)
    at_top = Counter(name for name, level in zip(names, levels) if level == top[name])
    out = []
    for name, (_, app_id, _), level in zip(names, entries, levels):
        if total[name] == 1 or name == app_id:
            bare = True
        else:
            bare = level == top[name] > 0 and at_top[name] == 1
        out.append(name if bare else f"{name} ({app_id})")
    # the same id listed twice (should not happen): keep the labels unique anyway
    seen: Counter = Counter()
    for i, label in enumerate(out):
        seen[label] += 1
        if seen[label] > 1:
            out[i] = f"{label} #{seen[label]}"
    return out


def app_liveness(snap: SparkAppSnapshot) -> int:
    """2 running and answering, 1 running but not answering, 0 finished (see
    `disambiguate_app_names`)."""
    return 0 if snap.app.completed else 1 if snap.unreachable else 2


def pick_queries(queries: Iterable[SparkQueryView]) -> tuple[SparkQueryView, ...]:
    """One query per label: the active one, else the most recently updated; sorted by label."""
    best: dict[str, SparkQueryView] = {}
    for q in queries:
        cur = best.get(q.label)
        if cur is None or _query_rank(q.raw) > _query_rank(cur.raw):
            best[q.label] = q
    return tuple(best[k] for k in sorted(best))


def _query_rank(q: StreamingQuery) -> tuple:
    return (q.state == QueryState.ACTIVE, q.updated_at, q.last_batch_id or -1)
