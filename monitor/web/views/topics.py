"""The Topics page's data: one row per topic, one per partition of the selected topic, and the
busiest topics for the throughput chart."""
from __future__ import annotations

from collections.abc import Iterable

from collectors.kafka.log_dirs import topic_bytes
from collectors.kafka.partition_health import min_insync_replicas, preferred_leader
from collectors.models import Snapshot, TopicConfig
from monitor.web.views import format as fmt
from monitor.web.views.common import cluster_state

TOPIC_COLUMNS = ("topic", "partitions", "rate", "messages", "size", "retention", "urp", "under_min_isr", "offline")
TOPIC_SORT_KEYS = {"rate": "_rate", "messages": "_messages", "size": "_size", "under_min_isr": "_under_min_isr"}
PARTITION_COLUMNS = ("partition", "leader", "replicas", "isr", "urp", "earliest", "latest",
                     "retained", "size", "rate")
PARTITION_SORT_KEYS = {"earliest": "_earliest", "latest": "_latest", "retained": "_retained",
                       "rate": "_rate", "urp": "_urp", "leader": "_leader", "size": "_size"}


def retention_text(config: TopicConfig | None) -> str:
    """"compact", "delete · 7d", "delete · 1h or 1 GB", "delete · unlimited"."""
    if config is None:
        return fmt.MISSING
    limits = []
    if config.retention_ms is not None and config.retention_ms >= 0:
        limits.append(fmt.duration(config.retention_ms / 1000.0))
    if config.retention_bytes is not None and config.retention_bytes >= 0:
        limits.append(f"{fmt.bytes_(config.retention_bytes)} per partition")
    policy = config.cleanup_policy or fmt.MISSING
    if not config.deletes:
        return policy
    return f"{policy} · {' or '.join(limits) if limits else 'unlimited'}"


def topic_names(snap: Snapshot | None, cluster: str | None, *, internal: bool = False) -> list[str]:
    state = cluster_state(snap, cluster)
    if state is None:
        return []
    return sorted(t.name for t in state.raw.topics if internal or not t.internal)


def topic_rows(snap: Snapshot | None, cluster: str | None) -> list[dict]:
    state = cluster_state(snap, cluster)
    if state is None:
        return []
    internal = {t.name for t in state.raw.topics if t.internal}
    raw = {t.name: t for t in state.raw.topics}
    sizes = topic_bytes(state.raw.log_dirs)
    rows = []
    for t in state.lag.topics:
        topic = raw.get(t.topic)
        under_min = t.under_min_isr
        level = "err" if t.offline or under_min else "warn" if t.under_replicated else "ok"
        min_isr = min_insync_replicas(topic) if topic is not None else None
        rows.append({
            "id": t.topic, "topic": t.topic, "partitions": t.partitions,
            "rate": fmt.rate(t.produce_rate), "_rate": t.produce_rate,
            "messages": fmt.count(t.message_count), "_messages": t.message_count,
            "size": fmt.bytes_(sizes.get(t.topic)), "_size": sizes.get(t.topic),
            "retention": retention_text(topic.config if topic is not None else None),
            "urp": t.under_replicated, "offline": t.offline, "internal": t.topic in internal,
            "under_min_isr": fmt.MISSING if under_min is None else f"{under_min} (min ISR {min_isr})",
            "_under_min_isr": under_min,
            "_level": "stale" if state.stale else level,
        })
    return rows


def partition_rows(snap: Snapshot | None, cluster: str | None, topic: str | None) -> list[dict]:
    state = cluster_state(snap, cluster)
    if state is None or topic is None:
        return []
    rates: tuple = ()
    for t in state.lag.topics:
        if t.topic == topic:
            rates = t.partition_produce_rates
    for t in state.raw.topics:
        if t.name != topic:
            continue
        rows = []
        for p in sorted(t.partitions, key=lambda p: p.partition):
            rate = rates[p.partition] if 0 <= p.partition < len(rates) else None
            rows.append({
                "id": str(p.partition), "partition": p.partition,
                "leader": "offline" if p.offline else str(p.leader) + ("" if preferred_leader(p) else " (not preferred)"),
                "_leader": p.leader,
                "size": fmt.bytes_(p.size_bytes), "_size": p.size_bytes,
                "replicas": ", ".join(map(str, p.replicas)), "isr": ", ".join(map(str, p.isr)),
                "urp": "yes" if p.under_replicated else "no", "_urp": int(p.under_replicated),
                "earliest": fmt.integer(p.earliest_offset), "_earliest": p.earliest_offset,
                "latest": fmt.integer(p.latest_offset), "_latest": p.latest_offset,
                "retained": fmt.count(p.message_count), "_retained": p.message_count,
                "rate": fmt.rate(rate), "_rate": rate,
                "_level": "err" if p.offline else "warn" if p.under_replicated else "ok",
            })
        return rows
    return []


def top_topics(snap: Snapshot | None, cluster: str | None, n: int = 8,
               include: Iterable[str] = ()) -> list[str]:
    """The n busiest non-internal topics (by produce rate), plus `include`."""
    state = cluster_state(snap, cluster)
    if state is None:
        return [t for t in include if t]
    internal = {t.name for t in state.raw.topics if t.internal}
    ranked = sorted((t for t in state.lag.topics if t.topic not in internal),
                    key=lambda t: (-(t.produce_rate or 0.0), t.topic))
    out = [t.topic for t in ranked[:n]]
    for t in include:
        if t and t not in out:
            out.append(t)
    return out




def partition_count(snap: Snapshot | None, cluster: str | None, topic: str | None) -> int:
    state = cluster_state(snap, cluster)
    for t in (state.raw.topics if state else ()):
        if t.name == topic:
            return len(t.partitions)
    return 0
