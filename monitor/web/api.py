"""The JSON API over the latest snapshot and the history: clusters, groups, topics, the pipeline
topology, Spark queries, and lag and throughput history (README, "Endpoints")."""
from __future__ import annotations

import time

from flask import Blueprint, abort, jsonify, request

from collectors.models import ClusterState
from monitor.web.context import current_context
from monitor.web.views import peers as peers_data
from monitor.web.views import spark as spark_data
from monitor.web.views import topology as topology_data
from monitor.web.jsonable import to_jsonable

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")


def _cluster(name: str) -> ClusterState:
    snapshot = current_context().latest()
    for state in (snapshot.clusters if snapshot else ()):
        if state.raw.cluster == name:
            return state
    abort(404, description=f"unknown cluster {name!r}")


@blueprint.get("/clusters")
def clusters():
    snapshot = current_context().latest()
    return jsonify([
        {
            "cluster": s.raw.cluster, "stale": s.stale, "fetched_at": s.raw.finished_at,
            "brokers": to_jsonable(s.raw.brokers), "controller_id": s.raw.controller_id,
            "topics": len(s.lag.topics), "groups": len(s.lag.groups), "error": s.raw.error,
            "log_dirs": to_jsonable(s.raw.log_dirs), "log_dirs_fetched_at": s.raw.log_dirs_fetched_at,
            "probe": to_jsonable(s.probe),
        }
        for s in (snapshot.clusters if snapshot else ())
    ])


@blueprint.get("/clusters/<cluster>/groups")
def groups(cluster: str):
    state = _cluster(cluster)
    rows = []
    for g in state.lag.groups:
        row = to_jsonable(g, leave_out=("partitions",))  # not converted to be dropped: 100,000s on a large cluster
        row["stale"] = state.stale
        row.update(peers_data.group_summary_json(state, g))
        rows.append(row)
    return jsonify(rows)


@blueprint.get("/clusters/<cluster>/groups/<name:group>")
def group(cluster: str, group: str):
    state = _cluster(cluster)
    for g in state.lag.groups:
        if g.group == group:
            return jsonify({**peers_data.group_json(state, g), "stale": state.stale})
    abort(404, description=f"unknown group {group!r}")


@blueprint.get("/clusters/<cluster>/topics")
def topics(cluster: str):
    state = _cluster(cluster)
    meta = {t.name: t for t in state.raw.topics}
    rows = []
    for t in state.lag.topics:
        row = to_jsonable(t)
        topic = meta.get(t.topic)
        row["partition_detail"] = to_jsonable(topic.partitions) if topic else []
        row["config"] = to_jsonable(topic.config) if topic else None
        rows.append(row)
    return jsonify(rows)


@blueprint.get("/clusters/<cluster>/topology")
def topology(cluster: str):
    """The overview's pipeline graph: producers → topics → groups / Spark queries → output
    topics; internal topics only with ?internal=true."""
    _cluster(cluster)
    ctx = current_context()
    show_internal = request.args.get("internal", "").lower() in ("1", "true", "yes")
    nodes, edges = topology_data.topology(ctx.latest(), cluster, show_internal=show_internal,
                                          extra_internal=ctx.settings.internal_topics)
    return jsonify({
        "nodes": [{"id": n.id, "kind": n.kind, "label": n.label, "level": n.level} for n in nodes],
        "edges": [{"source": e.source, "target": e.target, "label": e.label} for e in edges],
    })


@blueprint.get("/spark/queries")
def spark_queries():
    """Every Structured Streaming query: what it reads, what it writes, how it keeps up."""
    return jsonify([{
        "app_id": q.app_id, "app_name": q.app_name, "query": q.label, "id": q.key, "state": q.state,
        "source_topics": q.source_topics, "sink": q.sink, "sink_kind": q.sink_kind,
        "output_topics": q.output_topics, "kafka_lag": q.kafka_lag, "kafka_lag_method": q.kafka_lag_method,
        "input_rows_per_second": to_jsonable(q.input_rate),
        "processed_rows_per_second": to_jsonable(q.processing_rate),
        "keeping_up": q.keeping_up, "last_batch_id": q.last_batch_id, "stale": q.stale,
    } for q in spark_data.spark_queries(current_context().latest())])


@blueprint.get("/history/groups/<cluster>/<name:group>")
def group_history(cluster: str, group: str):
    start, end = _time_range()
    return jsonify(_history().group_series(cluster, group, start, end, max_points=_max_points()))


@blueprint.get("/history/commits/<cluster>/<name:group>")
def group_commits(cluster: str, group: str):
    """The last `limit` (default 10, at most 100) commits per partition within the range
    (default the last 6 h), as the collection saw them: `at` the first cycle that saw the
    offset, `after` the cycle before (the commit happened in between)."""
    start, end = _time_range(default_seconds=peers_data.COMMITS_SECONDS)
    try:
        limit = max(1, min(100, int(request.args.get("limit", 10))))
    except ValueError:
        abort(400, description="limit must be an integer")
    return jsonify(_history().commit_history(cluster, group, start, end, limit=limit))


@blueprint.get("/history/topics/<cluster>/<name:topic>")
def topic_history(cluster: str, topic: str):
    start, end = _time_range()
    return jsonify(_history().topic_series(cluster, topic, start, end, max_points=_max_points()))


def _history():
    history = current_context().history
    if history is None:
        abort(404, description="no history is kept")
    return history


def _time_range(default_seconds: float = 3600.0) -> tuple[float, float]:
    now = time.time()
    try:
        end = float(request.args.get("end", now))
        start = float(request.args.get("start", end - float(request.args.get("seconds", default_seconds))))
    except ValueError:
        abort(400, description="start, end and seconds must be numbers (UNIX seconds)")
    if start >= end:
        abort(400, description="start must be before end")
    return start, end


def _max_points() -> int:
    try:
        return max(2, min(5000, int(request.args.get("max_points", 500))))
    except ValueError:
        abort(400, description="max_points must be an integer")
