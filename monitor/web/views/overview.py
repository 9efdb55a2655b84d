"""The overview's data: headline figures, collector health and the status line of every page."""
from __future__ import annotations

from dataclasses import dataclass

from collectors.models import ProbeStats, RetentionRisk, Snapshot
from monitor.web.context import WebContext
from monitor.web.views import format as fmt
from monitor.web.views.alerts import alerts_view
from monitor.web.views.common import cluster_state, enum_text, status_level
from monitor.web.views.groups import KIND_GROUP, KIND_QUERY
from monitor.web.views.peers import worst_risk
from monitor.web.views.spark import spark_queries

@dataclass
class Headline:
    cluster: str | None
    produce_rate: float | None
    topics: int
    groups: int
    groups_by_level: dict[str, int]
    worst_lag: tuple[str, int, str] | None  # (name, messages, kind)
    worst_time_lag: tuple[str, float, str, bool] | None  # (group, seconds, method, lower bound)
    queries: int
    queries_keeping_up: int
    queries_unknown: int
    alerts_firing: int | None  # None: alert evaluation turned off
    stale: bool
    at: float | None
    retention: RetentionRisk | None = None  # the group and topic closest to losing records (or that lost some)
    probe: ProbeStats | None = None  # the cluster's end-to-end probe, when it has one


def headline(ctx: WebContext, snap: Snapshot | None, cluster: str | None) -> Headline:
    """The overview's headline figures (straight from the snapshot: no per-group formatting)."""
    state = cluster_state(snap, cluster)
    rate = None
    topics = 0
    by_level: dict[str, int] = {}
    worst_lag = None
    worst_tl = None
    if state is not None:
        # internal topics, and streamscope's own (progress, probe): not the user's pipeline
        internal = {t.name for t in state.raw.topics if t.internal} | ctx.settings.internal_topics
        rates = [t.produce_rate for t in state.lag.topics if t.topic not in internal and t.produce_rate is not None]
        rate = sum(rates) if rates else None
        topics = len([t for t in state.lag.topics if t.topic not in internal])
        best_lag = best_tl = None
        for g in state.lag.groups:
            level = "stale" if state.stale else ("err" if g.error else status_level(g.status))
            by_level[level] = by_level.get(level, 0) + 1
            if g.lag is not None and (best_lag is None or g.lag > best_lag.lag):
                best_lag = g
            if g.time_lag_seconds is not None and (best_tl is None or g.time_lag_seconds > best_tl.time_lag_seconds):
                best_tl = g
        if best_lag is not None:
            worst_lag = (best_lag.group, best_lag.lag, KIND_GROUP)
        if best_tl is not None:
            worst_tl = (best_tl.group, best_tl.time_lag_seconds, enum_text(best_tl.time_lag_method),
                        best_tl.time_lag_lower_bound)
    queries = spark_queries(snap)
    for q in queries:
        if q.kafka_lag is not None and (q.source_topics or q.kafka_lag) and (
                worst_lag is None or q.kafka_lag > worst_lag[1]):
            worst_lag = (q.label, q.kafka_lag, KIND_QUERY)
    view = alerts_view(ctx)
    return Headline(
        cluster=cluster, produce_rate=rate, topics=topics,
        groups=sum(by_level.values()), groups_by_level=by_level, worst_lag=worst_lag,
        worst_time_lag=worst_tl, queries=len(queries),
        queries_keeping_up=sum(1 for q in queries if q.keeping_up is True),
        queries_unknown=sum(1 for q in queries if q.keeping_up is None),
        alerts_firing=len(view.firing) if view.configured else None,
        stale=bool(state.stale) if state is not None else False,
        at=snap.at if snap else None,
        retention=worst_risk(state.lag.retention) if state is not None else None,
        probe=state.probe if state is not None else None,
    )



def health_rows(ctx: WebContext, snap: Snapshot | None, at: float) -> list[dict]:
    stale_after = ctx.settings.stale_after_seconds
    rows = []
    for h in (snap.health if snap else ()):
        try:
            stale = h.stale(at, stale_after)
        except Exception:
            stale = h.last_success_at is None
        level = "err" if not h.up else "stale" if stale else "ok"
        rows.append({
            "id": h.name, "name": h.name, "kind": h.kind, "up": "up" if h.up else "down",
            "stale": "yes" if stale else "no",
            "age": fmt.age(h.last_success_at, at), "duration": fmt.duration(h.duration_seconds),
            "cycles": h.cycles_total, "failures": h.failures_total,
            "error": (h.error or "")[:300], "_level": level,
        })
    return rows


@dataclass
class StatusLine:
    text: str
    level: str
    banner: str | None  # shown when data is stale or a collector is down


def status_line(ctx: WebContext, snap: Snapshot | None, at: float) -> StatusLine:
    if snap is None:
        return StatusLine("waiting for the first collection cycle…", "unknown",
                          None)
    rows = health_rows(ctx, snap, at)
    down = [r for r in rows if r["up"] == "down"]
    stale = [r for r in rows if r["stale"] == "yes" and r["up"] == "up"]
    stale_clusters = [c.raw.cluster for c in snap.clusters if c.stale]
    parts = [f"updated {fmt.age(snap.at, at)}"]
    parts.append(f"{len(rows) - len(down)}/{len(rows)} collectors up" if rows else "no collectors")
    banner = None
    if down or stale_clusters or stale:
        names = [r["name"] for r in down] + [r["name"] for r in stale]
        errors = [r["error"] for r in down if r["error"]]
        banner = "Showing the last good data"
        if stale_clusters:
            banner += f" for {', '.join(stale_clusters)}"
        if names:
            banner += f" — collector {', '.join(names)} " + ("down" if down else "stale")
        if errors:
            banner += f": {errors[0]}"
    level = "err" if down else "warn" if (stale or stale_clusters) else "ok"
    return StatusLine(" · ".join(parts), level, banner)
