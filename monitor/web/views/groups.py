"""The Consumer groups page's data: one row per consumer group and per Spark query reading
Kafka (sorting and filtering work on raw values, display text is added for the rows shown), and
the partitions of one group."""
from __future__ import annotations

from collectors.models import GroupLag, Snapshot
from monitor.web.views import format as fmt
from monitor.web.views.common import cluster_state, per_snapshot, row_id, status_level
from monitor.web.views.spark import QueryView, spark_queries

GROUP_COLUMNS = ("kind", "group", "status", "lag", "time_lag", "eta", "consume", "produce",
                 "members", "state", "topics")
GROUP_SORT_KEYS = {
    "lag": "_lag", "time_lag": "_time_lag", "eta": "_eta", "consume": "_consume",
    "produce": "_produce", "status": "_severity",
}
KIND_GROUP = "consumer group"
KIND_QUERY = "spark query"


def eta_text(g: GroupLag) -> str:
    """Catch-up ETA; a group with lag consuming as fast as the producers is 'keeping pace'
    (no ETA: the lag neither grows nor shrinks), slower is 'not catching up'."""
    if g.eta_seconds is None and g.lag and g.consume_rate and g.produce_rate \
            and g.consume_rate >= 0.97 * g.produce_rate:
        return "keeping pace"
    return fmt.eta(g.eta_seconds, g.lag)


def group_row(g: GroupLag, stale: bool, at: float) -> dict:
    """The raw row of a group: what sorting, filtering and the headline need. Display text is
    added by `display_rows` for the rows actually shown (a page), not for all groups."""
    state = g.state
    if g.is_empty and g.empty_since:
        state = f"{state} for {fmt.duration(max(0.0, at - g.empty_since))}"
    status = g.status.value
    level = "stale" if stale else ("err" if g.error else status_level(g.status))
    return {
        "_key": (KIND_GROUP, g.cluster, g.group), "_obj": g,
        "kind": KIND_GROUP, "group": g.group, "cluster": g.cluster,
        "status": status + " (stale)" if stale else status,
        "_severity": g.status.severity,
        "_lag": g.lag, "_time_lag": g.time_lag_seconds,
        "method": g.time_lag_method.value,
        "_eta": g.eta_seconds, "_consume": g.consume_rate, "_produce": g.produce_rate,
        "members": g.members, "state": state, "topics": ", ".join(g.topics),
        "partitions": len(g.partitions), "error": g.error or "", "_level": level,
    }


def query_row(q: QueryView) -> dict:
    status = {"ok": "OK", "warn": "WARN", "err": "ERR", "stale": "STALE"}.get(q.level, "—")
    eta = None
    if q.kafka_lag and q.processing_rate and q.input_rate is not None and q.processing_rate > q.input_rate:
        eta = q.kafka_lag / (q.processing_rate - q.input_rate)
    return {
        "_key": (KIND_QUERY, q.app_id, q.key), "_obj": q,
        "kind": KIND_QUERY, "group": q.label, "cluster": None, "app": q.app_id,
        "status": status, "_severity": {"ok": 0, "warn": 1, "err": 3}.get(q.level, 0),
        "_lag": q.kafka_lag, "_time_lag": None, "method": q.kafka_lag_method, "_eta": eta,
        "_consume": q.processing_rate, "_produce": q.input_rate,
        "members": None, "state": q.state, "topics": ", ".join(q.source_topics),
        "partitions": None, "error": (q.exception or "")[:300], "_level": q.level,
    }


def display_rows(rows: list[dict]) -> list[dict]:
    """Add the formatted columns (lag, time_lag, eta, consume, produce) and the row id."""
    out = []
    for r in rows:
        d = dict(r)
        obj = d.pop("_obj", None)
        d["id"] = row_id(*r["_key"])
        d.pop("_key", None)
        d["lag"] = fmt.count(r["_lag"])
        if r["kind"] == KIND_GROUP:
            g = obj
            d["lag"] = fmt.lag(g.lag, g.readable_lag)
            if g.uncommitted_partitions:
                d["lag"] += f" · {g.uncommitted_partitions} uncommitted"
            d["time_lag"] = fmt.time_lag(g.time_lag_seconds, g.time_lag_method,
                                         g.time_lag_lower_bound)
            d["eta"] = eta_text(g)
            d["consume"] = fmt.rate(r["_consume"])
            d["produce"] = fmt.rate(r["_produce"])
        else:
            q = obj
            behind = (q.input_rate is not None and q.processing_rate is not None
                      and q.processing_rate < q.input_rate)
            d["time_lag"] = fmt.MISSING
            d["eta"] = ("caught up" if q.kafka_lag == 0 else fmt.duration(r["_eta"]) if r["_eta"] is not None
                        else "not catching up" if behind else fmt.MISSING)
            d["consume"] = fmt.rate(r["_consume"], "rows/s")
            d["produce"] = fmt.rate(r["_produce"], "rows/s")
            d["members"] = fmt.MISSING
        out.append(d)
    return out


def group_rows(snap: Snapshot | None, cluster: str | None, *, include_spark: bool = True) -> list[dict]:
    """Raw rows: one per consumer group of `cluster`, plus one per Spark query reading Kafka
    (memoised per snapshot; treat as read-only). `display_rows` formats the shown ones."""
    if snap is None:
        return []
    return per_snapshot(snap, f"group_rows:{cluster}:{include_spark}",
                        lambda: _group_rows(snap, cluster, include_spark))


def _group_rows(snap: Snapshot, cluster: str | None, include_spark: bool) -> list[dict]:
    rows: list[dict] = []
    state = cluster_state(snap, cluster)
    at = snap.at
    if state is not None:
        rows.extend(group_row(g, state.stale, at) for g in state.lag.groups)
    if include_spark:
        for q in spark_queries(snap):
            if q.source_topics or q.kafka_lag is not None:
                rows.append(query_row(q))
    return rows


def find_group(snap: Snapshot | None, cluster: str | None, group: str | None) -> GroupLag | None:
    state = cluster_state(snap, cluster)
    for g in (state.lag.groups if state else ()):
        if g.group == group:
            return g
    return None


PARTITION_LAG_COLUMNS = ("topic", "partition", "committed", "end", "lag", "time_lag", "headroom", "consume",
                         "status", "owner", "host", "member")


def partition_lag_rows(g: GroupLag | None, owners: dict[tuple[str, int], dict] | None = None,
                       headrooms: dict[tuple[str, int], tuple[str, float | None]] | None = None) -> list[dict]:
    """The drill-down's partition table: `owners` (from `peers.owners`) adds the owning member's
    host and id, `headrooms` (from `peers.partition_retention`) the lagging partitions' headroom."""
    if g is None:
        return []
    owners, headrooms = owners or {}, headrooms or {}
    return [
        {"id": row_id(p.topic, str(p.partition)), "topic": p.topic, "partition": p.partition,
         "committed": "none (uncommitted)" if p.uncommitted else fmt.integer(p.committed_offset),
         "end": fmt.integer(p.end_offset),
         "lag": fmt.lag(p.lag, p.readable_lag), "_lag": p.lag,
         "time_lag": fmt.time_lag(p.time_lag_seconds, p.time_lag_method,
                                  p.time_lag_lower_bound),
         "_time_lag": p.time_lag_seconds, "consume": fmt.rate(p.consume_rate),
         "_consume": p.consume_rate, "status": p.status.value,
         "_severity": p.status.severity,
         "owner": p.owner or "—", "_level": status_level(p.status),
         "host": (owners.get((p.topic, p.partition)) or {}).get("owner_host") or "—",
         "member": (owners.get((p.topic, p.partition)) or {}).get("owner_member_id") or "—",
         "headroom": headrooms.get((p.topic, p.partition), ("∞ (nothing unread)" if p.readable_lag == 0
                                                            else fmt.MISSING, None))[0],
         "_headroom": headrooms.get((p.topic, p.partition), (None, None))[1]}
        for p in g.partitions
    ]
