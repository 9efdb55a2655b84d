"""The overview's pipeline graph: producers → topics → consumer groups / Spark queries →
output topics."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from collectors.models import ClusterState, GroupLag, Snapshot
from monitor.web.views import format as fmt
from monitor.web.views.common import LEVEL_RANK, cluster_state, enum_text, per_snapshot, status_level, worst_level
from monitor.web.views.spark import QueryView, spark_queries

@dataclass
class Node:
    id: str
    kind: str  # producers | topic | group | query | more
    label: str
    level: str
    detail: list[str] = field(default_factory=list)  # hover lines (raw text; figures escape)
    layer: int = 0
    link: dict | None = None  # url state changes to drill down: {"page": "/groups", "group": ..}


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""


# Topics that are plumbing, not the user's pipeline: Kafka's own (__consumer_offsets,
# __transaction_state), Schema Registry, Kafka Connect's config/offset/status topics, Confluent
# internals and streamscope's own (the progress topic's default name, streamscope-*).
INTERNAL_TOPIC = re.compile(
    r"__.*|_schemas|_confluent.*|_?connect-(?:.+-)?(?:configs|offsets|status)|streamscope-.*",
    re.DOTALL)


def is_internal_topic(name: str, extra: Iterable[str] = ()) -> bool:
    """True for an internal topic (INTERNAL_TOPIC, or one of `extra`, e.g. the configured
    Spark progress topic)."""
    return name in extra or INTERNAL_TOPIC.fullmatch(name) is not None



def topology(snap: Snapshot | None, cluster: str | None, *, max_topics: int = 12,
             max_consumers: int = 16, show_internal: bool = False,
             extra_internal: frozenset[str] = frozenset()) -> tuple[list[Node], list[Edge]]:
    """Producers → topics → consumer groups / Spark queries → output topics.

    Kafka cannot tell who produces: one "producers" node feeds every topic with a produce rate
    that no consumer in the picture writes. Spark queries read their source topics (from their
    progress) and write their output topics where known. Internal topics (`is_internal_topic`,
    Kafka's own flag, `extra_internal`) and the groups that read only them are left out unless
    `show_internal`. The worst consumers (status, then name: a stable set, so live updates only
    recolour) and the topics they touch are kept; the rest fold into "+N more" nodes. Memoised
    per snapshot.
    """
    if snap is None:
        return [], []
    key = f"topology:{cluster}:{max_topics}:{max_consumers}:{show_internal}:{sorted(extra_internal)}"
    return per_snapshot(snap, key, lambda: _topology(snap, cluster, max_topics, max_consumers,
                                                     show_internal, extra_internal))


def _group_detail(g: GroupLag) -> list[str]:
    return [f"consumer group {g.group}", f"status {enum_text(g.status)}",
            f"lag {fmt.count(g.lag)} messages",
            f"time lag {fmt.time_lag(g.time_lag_seconds, g.time_lag_method, g.time_lag_lower_bound)}",
            f"consume {fmt.rate(g.consume_rate)}", f"members {g.members} · {g.state}"]


def _query_detail(q: QueryView) -> list[str]:
    return [f"Spark query {q.label} ({q.app_name})", f"state {q.state}",
            f"input {fmt.rate(q.input_rate, 'rows/s')} · processed {fmt.rate(q.processing_rate, 'rows/s')}",
            f"last batch {fmt.duration(q.last_duration_s)}"
            + (f" (trigger {fmt.duration(q.trigger_interval_s)})" if q.trigger_interval_s else ""),
            f"Kafka lag {fmt.count(q.kafka_lag)}"]


def _hidden_topics(state: ClusterState | None, queries: list[QueryView], show_internal: bool,
                   extra_internal: frozenset[str]) -> set[str]:
    if show_internal:
        return set()
    names = {t.name for t in state.raw.topics} | {t.topic for t in state.lag.topics} if state else set()
    for q in queries:
        names.update(q.source_topics, q.output_topics)
    hidden = {name for name in names if is_internal_topic(name, extra_internal)}
    return hidden | ({t.name for t in state.raw.topics if t.internal} if state else set())


def _topology(snap: Snapshot, cluster: str | None, max_topics: int, max_consumers: int,
              show_internal: bool = False,
              extra_internal: frozenset[str] = frozenset()) -> tuple[list[Node], list[Edge]]:
    state = cluster_state(snap, cluster)
    queries = spark_queries(snap)
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []
    if state is None and not queries:
        return [], []
    stale = bool(state.stale) if state else False
    internal = _hidden_topics(state, queries, show_internal, extra_internal)
    rates = {t.topic: t for t in state.lag.topics} if state else {}
    # (rank, name, kind, object, level, inputs, outputs): worst level first, then by name
    consumers = []
    for g in (state.lag.groups if state else ()):
        if g.topics and all(t in internal for t in g.topics):
            continue  # reads internal topics only (e.g. a Connect worker, a progress reader)
        level = "stale" if stale else ("err" if g.error else status_level(g.status))
        consumers.append((-LEVEL_RANK.get(level, 0), g.group, "group", g, level, g.topics, ()))
    for q in queries:
        consumers.append((-LEVEL_RANK.get(q.level, 0), q.label, "query", q, q.level,
                          tuple(q.source_topics), tuple(q.output_topics)))
    consumers.sort(key=lambda c: (c[0], c[1]))
    shown, hidden = consumers[:max_consumers], consumers[max_consumers:]
    wanted: list[str] = []
    for c in shown:
        for t in (*c[5], *c[6]):
            if t not in wanted and t not in internal:
                wanted.append(t)
    for t in sorted((t for t in rates.values() if t.topic not in internal),
                    key=lambda t: (-(t.produce_rate or 0.0), t.topic)):
        if t.topic not in wanted:
            wanted.append(t.topic)
    shown_topics, hidden_topics = wanted[:max_topics], set(wanted[max_topics:])
    outputs_of = {t for c in consumers for t in c[6]}
    producers_needed = False
    for name in shown_topics:
        t = rates.get(name)
        detail = [f"topic {name}"]
        if t is not None:
            level = "stale" if stale else "err" if t.offline else "warn" if t.under_replicated else "ok"
            detail += [f"{t.partitions} partitions", f"produce {fmt.rate(t.produce_rate)}",
                       f"retained {fmt.count(t.message_count)} messages"]
            if t.under_replicated:
                detail.append(f"{t.under_replicated} under-replicated partitions")
            if t.offline:
                detail.append(f"{t.offline} offline partitions")
        else:
            level = "unknown"
            detail.append("not in this cluster's metadata")
        nodes[f"t:{name}"] = Node(f"t:{name}", "topic", name, level, detail,
                                  link={"page": "/topics", "topic": name})
        if t is not None and (t.produce_rate or 0) > 0 and name not in outputs_of:
            producers_needed = True
            edges.append(Edge("producers", f"t:{name}", fmt.rate(t.produce_rate)))
    if producers_needed:
        nodes["producers"] = Node("producers", "producers", "producers", "ok",
                                  ["producers (Kafka does not name them)"])
    if hidden_topics:
        nodes["more:topics"] = Node("more:topics", "more", f"+{len(hidden_topics)} more topics",
                                    "ok", [f"{len(hidden_topics)} more topics: see the Topics page"],
                                    link={"page": "/topics"})
    for _, name, kind, obj, level, ins, outs in shown:
        if kind == "group":
            node = Node(f"g:{name}", "group", name, level, _group_detail(obj),
                        link={"page": "/groups", "group": name})
        else:
            node = Node(f"q:{obj.app_id}:{obj.key}", "query", name, level, _query_detail(obj),
                        link={"page": "/spark", "app": obj.app_id})
        nodes[node.id] = node
        for t in ins:
            src = f"t:{t}" if f"t:{t}" in nodes else ("more:topics" if t in hidden_topics else None)
            if src:
                edges.append(Edge(src, node.id))
        for t in outs:
            if f"t:{t}" in nodes:
                edges.append(Edge(node.id, f"t:{t}"))
    if hidden:
        worst = worst_level(c[4] for c in hidden)
        nodes["more:consumers"] = Node(
            "more:consumers", "more", f"+{len(hidden)} more consumers", worst,
            [f"{len(hidden)} more consumer groups / queries: see the Consumer groups page"],
            link={"page": "/groups"})
        sources = set()
        for c in hidden:
            for t in c[5]:
                sources.add(f"t:{t}" if f"t:{t}" in nodes else "more:topics")
        for src in sorted(sources):
            if src in nodes:
                edges.append(Edge(src, "more:consumers"))
    seen: set[tuple[str, str]] = set()
    unique = []
    for e in edges:
        if (e.source, e.target) not in seen and e.source in nodes and e.target in nodes:
            seen.add((e.source, e.target))
            unique.append(e)
    _assign_layers(nodes, unique)
    return list(nodes.values()), unique


def _assign_layers(nodes: dict[str, Node], edges: list[Edge]) -> None:
    """Longest-path layering: producers 0, a node one right of its furthest source."""
    preds: dict[str, list[str]] = {}
    for e in edges:
        preds.setdefault(e.target, []).append(e.source)
    for n in nodes.values():
        n.layer = 0 if n.kind == "producers" else 1 if n.kind in ("topic", "more") and n.id != "more:consumers" else 2
    for _ in range(len(nodes) + 1):  # bounded: cycles (a query writing its own input) stop here
        changed = False
        for n in nodes.values():
            if n.kind == "producers":
                continue
            want = max([nodes[p].layer + 1 for p in preds.get(n.id, ()) if p in nodes], default=n.layer)
            want = max(want, n.layer)
            if want != n.layer and want <= len(nodes):
                n.layer = want
                changed = True
        if not changed:
            break
