"""Data access for the dashboard.

Reads ONLY `monitor.store.latest()` (the latest frozen Snapshot) and `monitor.history` (range
queries); never Kafka or Spark. Page callbacks call these functions, then hand the result to
`figures` (pure figure builders); nothing here imports Dash, so all of it is unit tested with
hand-built snapshots and a real History on a temporary SQLite file.

Spark snapshots (`collectors.spark.models`) are still evolving: they are read defensively, with
`_get()` (several attribute spellings, defaults), so a renamed field shows "—" instead of a crash.
The alert engine is optional: see `alerts_view()` for the shape it is expected to return.
"""
from __future__ import annotations

import collections
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from collectors.models import ClusterState, GroupLag, Snapshot, Status
from collectors.spark.sinks import KAFKA as KAFKA_SINK, SinkInfo, sink_info
from collectors.values import finite_float as _num

from . import format as fmt
from .urlstate import DEFAULT_RANGE, RANGES

log = logging.getLogger(__name__)

MONITOR_KEY = "streamscope.monitor"

# Status levels drive colours everywhere: ok (green), warn (amber), err (red), stale (grey).
LEVELS = ("ok", "warn", "err", "stale", "unknown")
_LEVEL_OF_STATUS = {
    Status.OK: "ok", Status.WARN: "warn", Status.STALL: "err", Status.STOP: "err",
    Status.REWIND: "err", Status.ERR: "err",
}
_LEVEL_RANK = {"ok": 0, "unknown": 1, "stale": 1, "warn": 2, "err": 3}

SPARK_EMPTY_NOTICE = (
    "No Spark application found — point streamscope at one: spark.ui_urls in the config "
    "(e.g. http://127.0.0.1:4040), or spark.scan_host to probe a host's driver UI ports "
    "(spark.scan_ports), or spark.master_url / spark.history_server_url, or spark.progress_topic "
    "for the streamscope listener's progress feed."
)
ALERTING_NOTICE = (
    "alert evaluation is turned off (`alerting.enabled: false` in the config): remove that line "
    "to evaluate the built-in rules."
)
NO_RECEIVERS_HINT = (
    "No receivers configured: alerts are evaluated and shown here, but no notification is sent. "
    "Add receivers under `alerting:` (docs/alerts.md)."
)


# --------------------------------------------------------------------------------------------
# the monitor, time, clusters
# --------------------------------------------------------------------------------------------


def current_monitor():
    """The Monitor of the Flask app serving this request (set by mount_dashboard)."""
    from flask import current_app

    return current_app.extensions[MONITOR_KEY]


def now(monitor) -> float:
    clock = getattr(monitor, "clock", None)
    return float(clock()) if callable(clock) else time.time()


def snapshot(monitor) -> Snapshot | None:
    store = getattr(monitor, "store", None)
    return store.latest() if store is not None else None


def snapshot_at(snap: Snapshot | None) -> float | None:
    return None if snap is None else snap.at


def interval_seconds(monitor) -> float:
    try:
        return float(monitor.config.collection.interval_seconds)
    except AttributeError:
        return 15.0


def stale_after_seconds(monitor) -> float:
    try:
        return float(monitor.config.stale_after_seconds)
    except (AttributeError, TypeError):
        return 3 * interval_seconds(monitor)


def window(range_key: str | None, at: float) -> tuple[float, float]:
    """(start, end) of a time range ending at `at`."""
    seconds = RANGES.get(range_key or DEFAULT_RANGE, RANGES[DEFAULT_RANGE])
    return at - seconds, at


def cluster_names(monitor, snap: Snapshot | None = None) -> list[str]:
    snap = snap if snap is not None else snapshot(monitor)
    names = [c.raw.cluster for c in (snap.clusters if snap else ())]
    if names:
        return names
    history = getattr(monitor, "history", None)
    try:
        return list(history.kafka.clusters()) if history is not None else []
    except Exception:  # history closed or unreadable: the page still renders
        log.debug("history.kafka.clusters() failed", exc_info=True)
        return []


def resolve_cluster(monitor, requested: str | None, snap: Snapshot | None = None) -> str | None:
    """The requested cluster if known, else the first one (None when there is none)."""
    names = cluster_names(monitor, snap)
    if requested in names:
        return requested
    return names[0] if names else None


def cluster_state(snap: Snapshot | None, cluster: str | None) -> ClusterState | None:
    for state in (snap.clusters if snap else ()):
        if state.raw.cluster == cluster:
            return state
    return None


def status_level(status: Any) -> str:
    if isinstance(status, Status):
        return _LEVEL_OF_STATUS[status]
    text = str(getattr(status, "value", status) or "").upper()
    try:
        return _LEVEL_OF_STATUS[Status(text)]
    except ValueError:
        return "unknown"


def worst_level(levels: Iterable[str]) -> str:
    out = "ok"
    for level in levels:
        if _LEVEL_RANK.get(level, 1) > _LEVEL_RANK.get(out, 0):
            out = level
    return out


_memo_lock = threading.Lock()
_memo: "collections.OrderedDict[tuple[int, str], tuple[Any, Any]]" = collections.OrderedDict()
_MEMO_SIZE = 64


def per_snapshot(snap: Any, key: str, compute):
    """`compute()` once per (snapshot, key): snapshots are immutable, and every callback of a
    tick (and every open browser tab) reads the same one. Keeps the last few entries."""
    if snap is None:
        return compute()
    k = (id(snap), key)
    with _memo_lock:
        hit = _memo.get(k)
        if hit is not None and hit[0] is snap:
            _memo.move_to_end(k)
            return hit[1]
    value = compute()
    with _memo_lock:
        _memo[k] = (snap, value)
        while len(_memo) > _MEMO_SIZE:
            _memo.popitem(last=False)
    return value


def _enum_text(value: Any) -> str:
    return str(getattr(value, "value", value)) if value is not None else ""


# --------------------------------------------------------------------------------------------
# defensive access to Spark snapshots
# --------------------------------------------------------------------------------------------

_MISSING = object()


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    """First present, non-None attribute (or mapping key) among names."""
    if obj is None:
        return default
    for name in names:
        value = obj.get(name, _MISSING) if isinstance(obj, Mapping) else getattr(obj, name, _MISSING)
        if value is not _MISSING and value is not None:
            return value
    return default


def _seq(value: Any) -> list:
    if value is None or isinstance(value, (str, bytes, Mapping)):
        return []
    try:
        return list(value)
    except TypeError:
        return []


def _call(obj: Any, name: str) -> Any:
    """A property or zero-argument method value, None if absent or failing."""
    try:
        value = getattr(obj, name, None)
        return value() if callable(value) else value
    except Exception:
        return None


_TOPIC_IN_DESC = re.compile(r"(?:Subscribe(?:Pattern)?|Assign)\[([^\]]*)\]")


def source_topics(source: Any) -> list[str]:
    """Kafka topics a Spark source reads: from its offsets, else its description
    ('KafkaV2[Subscribe[clickstream]]')."""
    topics: list[str] = []
    for attr in ("end_offsets", "start_offsets", "latest_offsets"):
        for po in _seq(_get(source, attr)):
            t = _get(po, "topic")
            if t and t not in topics:
                topics.append(str(t))
    if topics:
        return topics
    for t in _seq(_get(source, "topics")):
        topics.append(str(t))
    if topics:
        return topics
    desc = str(_get(source, "description", default=""))
    m = _TOPIC_IN_DESC.search(desc)
    if m and desc.lower().startswith("kafka"):
        topics = [t.strip() for t in m.group(1).split(",") if t.strip() and "=" not in t]
    return topics


@dataclass
class BatchView:
    batch_id: int | None
    timestamp: float | None
    duration_s: float | None
    input_rate: float | None
    processing_rate: float | None
    input_rows: int | None
    watermark_delay_s: float | None
    event_time_delay_s: float | None
    state_rows: int | None
    state_bytes: int | None
    status: str
    origin: str


@dataclass
class QueryView:
    app_id: str
    app_name: str
    key: str
    label: str
    state: str  # active / terminated / failed / unknown
    exception: str | None
    batches: list[BatchView]
    trigger_interval_s: float | None
    trigger_inferred: bool  # True: not reported, the median spacing of batch start times
    source_topics: list[str]
    output_topics: list[str]  # Kafka topics the sink writes, when known
    sink: str  # what the sink is: "clickstream-stats (Kafka)", "console", "unknown"
    sink_kind: str | None  # collectors.spark.sinks kinds; None: not known
    input_rate: float | None
    processing_rate: float | None
    last_duration_s: float | None
    watermark_delay_s: float | None
    state_rows: int | None
    state_bytes: int | None
    kafka_lag: int | None  # messages behind the topics' end offsets (None = unknown)
    kafka_lag_method: str  # how kafka_lag was obtained
    keeping_up: bool | None
    level: str
    stale: bool
    last_batch_id: int | None
    updated_at: float | None


@dataclass
class DStreamView:
    batch_interval_s: float | None
    batches: list[dict]  # oldest first: batch_time, scheduling_delay_s, processing_s, total_delay_s, input_size, status
    receivers: list[dict]
    avg_input_rate: float | None
    avg_scheduling_delay_s: float | None
    avg_processing_s: float | None
    keeping_up: bool | None


@dataclass
class AppView:
    id: str
    name: str
    ui_url: str | None
    spark_version: str | None
    user: str | None
    start_time: float | None
    completed: bool
    stale: bool
    level: str
    queries: list[QueryView]
    dstream: DStreamView | None
    jobs_active: int | None
    jobs_failed: int | None
    jobs_succeeded: int | None
    failed_jobs: list[dict]
    failed_stages: list[dict]
    executors: list[dict]
    source_errors: list[dict]
    collected_at: float | None


def _batch_view(b: Any) -> BatchView:
    duration_ms = _num(_get(b, "duration_ms"))
    if duration_ms is None:
        duration_ms = _num(_get(_get(b, "durations"), "trigger_execution_ms"))
    ts = _num(_get(b, "timestamp"))
    wm_delay = _num(_call(b, "watermark_delay_seconds"))
    if wm_delay is None:
        wm = _num(_get(b, "watermark"))
        wm_delay = ts - wm if ts is not None and wm is not None else None
    ev_delay = _num(_call(b, "event_time_delay_seconds"))
    ops = _seq(_get(b, "state_operators"))
    state_rows = _num(_call(b, "state_rows_total"))
    state_bytes = _num(_call(b, "state_memory_bytes"))
    if state_rows is None and ops:
        state_rows = sum(_num(_get(o, "num_rows_total")) or 0 for o in ops)
    if state_bytes is None and ops:
        state_bytes = sum(_num(_get(o, "memory_used_bytes")) or 0 for o in ops)
    bid = _num(_get(b, "batch_id"))
    rows = _num(_get(b, "num_input_rows"))
    return BatchView(
        batch_id=None if bid is None else int(bid), timestamp=ts,
        duration_s=None if duration_ms is None else duration_ms / 1000.0,
        input_rate=_num(_get(b, "input_rows_per_second")),
        processing_rate=_num(_get(b, "processed_rows_per_second")),
        input_rows=None if rows is None else int(rows), watermark_delay_s=wm_delay,
        event_time_delay_s=ev_delay,
        state_rows=None if state_rows is None else int(state_rows),
        state_bytes=None if state_bytes is None else int(state_bytes),
        status=str(_get(b, "status", default="COMPLETED")), origin=str(_get(b, "origin", default="")),
    )


def _end_offsets_index(snap: Snapshot | None) -> dict[tuple[str, int], int]:
    """(topic, partition) -> latest offset over all clusters (first cluster wins)."""
    out: dict[tuple[str, int], int] = {}
    for state in (snap.clusters if snap else ()):
        for t in state.raw.topics:
            for p in t.partitions:
                if p.latest_offset is not None:
                    out.setdefault((t.name, p.partition), p.latest_offset)
    return out


def _trigger_interval(query: Any) -> float | None:
    ms = _num(_get(query, "trigger_interval_ms"))
    if ms is not None:
        return ms / 1000.0
    sec = _num(_get(query, "trigger_interval_seconds", "trigger_interval"))
    if sec is not None:
        return sec
    text = _get(query, "trigger")
    if isinstance(text, str):
        m = re.search(r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|seconds?)\b", text)
        if m:
            v = float(m.group(1))
            return v / 1000.0 if m.group(2).startswith("m") else v
    return None


def _query_kafka_lag(query: Any, progress: Any, ends: dict[tuple[str, int], int]) -> tuple[int | None, str]:
    """Messages the query is behind: its processed (end) offsets against the topics' end offsets
    from the Kafka snapshot; else the progress' own latest offsets; else Spark's
    maxOffsetsBehindLatest metric. Returns (lag, method)."""
    direct = _get(query, "kafka_lag", "lag")
    if isinstance(direct, Mapping):
        vals = [_num(v) for v in direct.values()]
        if any(v is not None for v in vals):
            return int(sum(v or 0 for v in vals)), "reported"
    elif _num(direct) is not None:
        return int(_num(direct)), "reported"
    if progress is None:
        return None, "none"
    total, known, method = 0, False, "none"
    for src in _seq(_get(progress, "sources")):
        end = _seq(_get(src, "end_offsets"))
        if not end:
            continue
        latest = {(po.topic, po.partition): po.offset for po in _seq(_get(src, "latest_offsets"))
                  if _get(po, "topic") is not None}
        for po in end:
            key = (_get(po, "topic"), _get(po, "partition"))
            off = _num(_get(po, "offset"))
            if off is None:
                continue
            if key in ends:
                total += max(0, ends[key] - int(off))
                known, method = True, "vs topic end offsets"
            elif key in latest:
                total += max(0, int(latest[key]) - int(off))
                known = True
                method = method if method != "none" else "vs latest offsets at batch"
    if known:
        return total, method
    behind = [_num(_get(s, "max_offsets_behind_latest")) for s in _seq(_get(progress, "sources"))]
    behind = [b for b in behind if b is not None]
    if behind:
        return int(sum(behind)), "maxOffsetsBehindLatest"
    return None, "none"


def spark_apps(snap: Snapshot | None) -> list[AppView]:
    """Every Spark application of the snapshot, with its queries, read defensively."""
    if snap is None or not _seq(getattr(snap, "spark", ())):
        return []
    return per_snapshot(snap, "spark_apps", lambda: _spark_apps(snap))


def _spark_apps(snap: Snapshot) -> list[AppView]:
    out: list[AppView] = []
    ends = _end_offsets_index(snap)
    for s in _seq(getattr(snap, "spark", ())):
        try:
            out.append(_app_view(s, ends))
        except Exception:  # a model change must not take the page down
            log.exception("cannot read a Spark app snapshot")
    return out


def _app_view(s: Any, ends: dict) -> AppView:
    app = _get(s, "app")
    app_id = str(_get(app, "id", default=_get(s, "id", default="?")))
    app_name = str(_get(app, "name", default=app_id))
    stale = bool(_get(s, "stale", default=False))
    queries = []
    for q in _seq(_get(s, "queries")):
        queries.append(_query_view(q, app_id, app_name, stale, ends))
    dstream = _dstream_view(_get(s, "dstream"))
    jobs = _get(s, "jobs")
    stages = _get(s, "stages")
    failed_jobs = [
        {"job": _get(j, "job_id"), "name": str(_get(j, "name", default="")),
         "description": str(_get(j, "description", default="") or ""),
         "failed_tasks": _get(j, "failed_tasks"), "failed_stages": _get(j, "failed_stages"),
         "completed": fmt.timestamp(_get(j, "completion_time"))}
        for j in _seq(_get(jobs, "failed_jobs"))
    ]
    failed_stages = [
        {"stage": f"{_get(st, 'stage_id')} (attempt {_get(st, 'attempt_id', default=0)})",
         "name": str(_get(st, "name", default="")),
         "reason": str(_get(st, "failure_reason", default="") or "")[:500],
         "failed_tasks": _get(st, "failed_tasks"),
         "completed": fmt.timestamp(_get(st, "completion_time"))}
        for st in _seq(_get(stages, "failed_stages"))
    ]
    executors = []
    for e in _seq(_get(s, "executors")):
        executors.append({
            "id": str(_get(e, "id", default="")), "host": str(_get(e, "host_port", default="") or ""),
            "active": fmt.yes_no(_get(e, "active")),
            "cores": _get(e, "total_cores"), "active_tasks": _get(e, "active_tasks"),
            "completed_tasks": _get(e, "completed_tasks"), "failed_tasks": _get(e, "failed_tasks"),
            "memory": f"{fmt.bytes_(_get(e, 'memory_used_bytes'))} / {fmt.bytes_(_get(e, 'max_memory_bytes'))}",
            "gc": fmt.duration_ms(_get(e, "total_gc_time_ms")),
            "removed": str(_get(e, "remove_reason", default="") or ""),
        })
    errors = []
    for src in _seq(_get(s, "sources")):
        if not _get(src, "ok", default=True):
            errors.append({"source": str(_get(src, "source", default="")),
                           "url": str(_get(src, "url", default="")),
                           "error": str(_get(src, "error", default="error"))[:300]})
    levels = [q.level for q in queries]
    if dstream is not None and dstream.keeping_up is False:
        levels.append("warn")
    if failed_jobs or failed_stages:
        levels.append("warn")
    level = "stale" if stale else worst_level(levels) if levels else "ok"
    return AppView(
        id=app_id, name=app_name, ui_url=_get(app, "ui_url"),
        spark_version=_get(app, "spark_version"), user=_get(app, "user"),
        start_time=_num(_get(app, "start_time")), completed=bool(_get(app, "completed", default=False)),
        stale=stale, level=level, queries=queries, dstream=dstream,
        jobs_active=_get(jobs, "active"), jobs_failed=_get(jobs, "failed"),
        jobs_succeeded=_get(jobs, "succeeded"), failed_jobs=failed_jobs, failed_stages=failed_stages,
        executors=executors, source_errors=errors, collected_at=_num(_get(s, "collected_at")),
    )


def _query_view(q: Any, app_id: str, app_name: str, app_stale: bool, ends: dict) -> QueryView:
    batches_raw = _seq(_get(q, "batches"))
    batches = [_batch_view(b) for b in batches_raw]
    batches.sort(key=lambda b: (b.batch_id is None, b.batch_id if b.batch_id is not None else 0))
    progress = _call(q, "last_progress")
    if progress is None:
        listener = [b for b in batches_raw if _get(b, "origin") == "listener"]
        progress = listener[-1] if listener else None
    topics: list[str] = []
    for src in _seq(_get(progress, "sources")):
        for t in source_topics(src):
            if t not in topics:
                topics.append(t)
    sink = query_sink(q, progress)
    gauges = _get(q, "gauges")
    last = batches[-1] if batches else None
    last_full = _batch_view(progress) if progress is not None else None
    input_rate = _num(_get(gauges, "input_rate"))
    processing_rate = _num(_get(gauges, "processing_rate"))
    if input_rate is None and last_full is not None:
        input_rate = last_full.input_rate
    if processing_rate is None and last_full is not None:
        processing_rate = last_full.processing_rate
    last_duration = last.duration_s if last is not None else None
    if last_duration is None:
        lat = _num(_get(gauges, "latency_ms"))
        last_duration = None if lat is None else lat / 1000.0
    trigger = _trigger_interval(q)
    inferred = None
    if trigger is None:
        inferred = _infer_trigger(batches)
    lag, method = _query_kafka_lag(q, progress, ends)
    state = _enum_text(_get(q, "state", default="unknown")).lower() or "unknown"
    keeping_up: bool | None = None
    if state == "failed":
        keeping_up = False
    else:
        checks = []
        if input_rate is not None and processing_rate is not None and input_rate > 0:
            checks.append(processing_rate >= 0.95 * input_rate)
        if trigger and last_duration is not None:
            checks.append(last_duration <= trigger * 1.05)
        if checks:
            keeping_up = all(checks)
    if app_stale:
        level = "stale"
    elif state == "failed":
        level = "err"
    elif state == "terminated":
        level = "warn"
    elif keeping_up is False:
        level = "warn"
    elif state == "active":
        level = "ok"
    else:
        level = "unknown"
    wm_delay = last_full.watermark_delay_s if last_full is not None else None
    state_rows = last_full.state_rows if last_full is not None else None
    state_bytes = last_full.state_bytes if last_full is not None else None
    if state_rows is None:
        v = _num(_get(gauges, "state_rows_total"))
        state_rows = None if v is None else int(v)
    if state_bytes is None:
        v = _num(_get(gauges, "state_used_bytes"))
        state_bytes = None if v is None else int(v)
    label = str(_call(q, "label") or _get(q, "name", "id", default="query"))
    key = str(_call(q, "key") or _get(q, "id", default=label))
    lbid = _num(_get(q, "last_batch_id"))
    return QueryView(
        app_id=app_id, app_name=app_name, key=key, label=label, state=state,
        exception=_get(q, "exception"), batches=batches,
        trigger_interval_s=trigger if trigger is not None else inferred,
        trigger_inferred=trigger is None and inferred is not None,
        source_topics=topics, output_topics=list(sink.topics) if sink else [],
        sink=sink.text if sink else "unknown", sink_kind=sink.kind if sink else None, input_rate=input_rate,
        processing_rate=processing_rate, last_duration_s=last_duration, watermark_delay_s=wm_delay,
        state_rows=state_rows, state_bytes=state_bytes, kafka_lag=lag, kafka_lag_method=method,
        keeping_up=keeping_up, level=level, stale=app_stale,
        last_batch_id=None if lbid is None else int(lbid), updated_at=_num(_get(q, "updated_at")),
    )


def query_sink(q: Any, progress: Any) -> SinkInfo | None:
    """What a query writes to: its latest full progress' sink (`collectors.spark.sinks`), or
    the topics the query object names itself."""
    named = [str(t) for t in _seq(_get(q, "output_topics"))]
    description = _get(progress, "sink_description")
    info = sink_info(description if isinstance(description, str) else None,
                     named or [str(t) for t in _seq(_get(progress, "sink_topics"))])
    if info is None and named:
        return SinkInfo(KAFKA_SINK, tuple(named))
    return info


def _infer_trigger(batches: list[BatchView]) -> float | None:
    """Median spacing of batch start times: the trigger interval of a processing-time trigger
    while batches finish in time. Display only (never used to decide 'keeping up')."""
    times = sorted(b.timestamp for b in batches if b.timestamp is not None)
    gaps = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    if len(gaps) < 3:
        return None
    return gaps[len(gaps) // 2]


def _dstream_view(d: Any) -> DStreamView | None:
    if d is None:
        return None
    batch_ms = _num(_get(d, "batch_duration_ms"))
    batches = []
    for b in _seq(_get(d, "batches")):
        sd = _num(_get(b, "scheduling_delay_ms"))
        pt = _num(_get(b, "processing_time_ms"))
        td = _num(_get(b, "total_delay_ms"))
        batches.append({
            "batch_time": _num(_get(b, "batch_time")),
            "scheduling_delay_s": None if sd is None else sd / 1000.0,
            "processing_s": None if pt is None else pt / 1000.0,
            "total_delay_s": None if td is None else td / 1000.0,
            "input_size": _get(b, "input_size"), "status": str(_get(b, "status", default="")),
        })
    batches.sort(key=lambda r: r["batch_time"] or 0)  # Spark lists newest first
    receivers = [
        {"stream": _get(r, "stream_id"), "name": str(_get(r, "name", default="")),
         "active": fmt.yes_no(_get(r, "active")), "executor": str(_get(r, "executor_id", default="") or ""),
         "rate": fmt.rate(_get(r, "avg_event_rate"), "ev/s"),
         "last_error": str(_get(r, "last_error", default="") or "")[:300]}
        for r in _seq(_get(d, "receivers"))
    ]
    avg_proc_ms = _num(_get(d, "avg_processing_time_ms"))
    avg_sched_ms = _num(_get(d, "avg_scheduling_delay_ms"))
    keeping_up = None
    completed = [b for b in batches if b["processing_s"] is not None]
    if batch_ms and completed:
        keeping_up = completed[-1]["processing_s"] <= batch_ms / 1000.0
    return DStreamView(
        batch_interval_s=None if batch_ms is None else batch_ms / 1000.0, batches=batches,
        receivers=receivers, avg_input_rate=_num(_get(d, "avg_input_rate")),
        avg_scheduling_delay_s=None if avg_sched_ms is None else avg_sched_ms / 1000.0,
        avg_processing_s=None if avg_proc_ms is None else avg_proc_ms / 1000.0,
        keeping_up=keeping_up,
    )


def spark_queries(snap: Snapshot | None) -> list[QueryView]:
    return [q for app in spark_apps(snap) for q in app.queries]


# --------------------------------------------------------------------------------------------
# consumer groups (and Spark queries reading Kafka)
# --------------------------------------------------------------------------------------------

GROUP_COLUMNS = ("kind", "group", "status", "lag", "time_lag", "eta", "consume", "produce",
                 "members", "state", "topics")
GROUP_SORT_KEYS = {
    "lag": "_lag", "time_lag": "_time_lag", "eta": "_eta", "consume": "_consume",
    "produce": "_produce", "status": "_severity",
}
KIND_GROUP = "consumer group"
KIND_QUERY = "spark query"


def row_id(*parts: str | None) -> str:
    """A table row id that survives any name (JSON)."""
    return json.dumps(list(parts), ensure_ascii=False)


def parse_row_id(value: str | None) -> list | None:
    try:
        out = json.loads(value) if value else None
    except (TypeError, ValueError):
        return None
    return out if isinstance(out, list) else None


def _eta_text(g: GroupLag) -> str:
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
    status = g.status.value if isinstance(g.status, Status) else _enum_text(g.status)
    level = "stale" if stale else ("err" if g.error else status_level(g.status))
    return {
        "_key": (KIND_GROUP, g.cluster, g.group), "_obj": g,
        "kind": KIND_GROUP, "group": g.group, "cluster": g.cluster,
        "status": status + " (stale)" if stale else status,
        "_severity": g.status.severity if isinstance(g.status, Status) else 0,
        "_lag": g.lag, "_time_lag": g.time_lag_seconds,
        "method": g.time_lag_method.value if isinstance(g.time_lag_method, Enum) else str(g.time_lag_method),
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
                                         getattr(g, "time_lag_lower_bound", False))
            d["eta"] = _eta_text(g)
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


PARTITION_LAG_COLUMNS = ("topic", "partition", "committed", "end", "lag", "time_lag", "consume",
                         "status", "owner")


def partition_lag_rows(g: GroupLag | None) -> list[dict]:
    if g is None:
        return []
    return [
        {"id": row_id(p.topic, str(p.partition)), "topic": p.topic, "partition": p.partition,
         "committed": "none (uncommitted)" if p.uncommitted else fmt.integer(p.committed_offset),
         "end": fmt.integer(p.end_offset),
         "lag": fmt.lag(p.lag, p.readable_lag), "_lag": p.lag,
         "time_lag": fmt.time_lag(p.time_lag_seconds, p.time_lag_method,
                                  getattr(p, "time_lag_lower_bound", False)),
         "_time_lag": p.time_lag_seconds, "consume": fmt.rate(p.consume_rate),
         "_consume": p.consume_rate, "status": _enum_text(p.status),
         "_severity": p.status.severity if isinstance(p.status, Status) else 0,
         "owner": p.owner or "—", "_level": status_level(p.status)}
        for p in g.partitions
    ]


# --------------------------------------------------------------------------------------------
# topics
# --------------------------------------------------------------------------------------------

TOPIC_COLUMNS = ("topic", "partitions", "rate", "messages", "urp", "offline")
TOPIC_SORT_KEYS = {"rate": "_rate", "messages": "_messages"}
PARTITION_COLUMNS = ("partition", "leader", "replicas", "isr", "urp", "earliest", "latest",
                     "retained", "rate")
PARTITION_SORT_KEYS = {"earliest": "_earliest", "latest": "_latest", "retained": "_retained",
                       "rate": "_rate", "urp": "_urp", "leader": "_leader"}


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
    rows = []
    for t in state.lag.topics:
        level = "err" if t.offline else "warn" if t.under_replicated else "ok"
        rows.append({
            "id": t.topic, "topic": t.topic, "partitions": t.partitions,
            "rate": fmt.rate(t.produce_rate), "_rate": t.produce_rate,
            "messages": fmt.count(t.message_count), "_messages": t.message_count,
            "urp": t.under_replicated, "offline": t.offline, "internal": t.topic in internal,
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
                "leader": "offline" if p.offline else str(p.leader), "_leader": p.leader,
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


# --------------------------------------------------------------------------------------------
# history ranges
# --------------------------------------------------------------------------------------------

def _history_call(monitor, name: str, *args, **kwargs) -> list:
    history = getattr(monitor, "history", None)
    fn = getattr(getattr(history, "kafka", None), name, None)
    if fn is None:
        return []
    try:
        return list(fn(*args, **kwargs))
    except Exception:
        log.warning("history.%s failed", name, exc_info=True)
        return []


def after(rows: list[dict], since: float | None) -> list[dict]:
    return rows if since is None else [r for r in rows if (r.get("at") or 0) > since]


def group_series(monitor, cluster, group, start, end, max_points=300) -> list[dict]:
    return _history_call(monitor, "group_series", cluster, group, start, end, max_points=max_points)


def partition_lag_series(monitor, cluster, group, start, end, max_points=120) -> list[dict]:
    return _history_call(monitor, "partition_lag_series", cluster, group, start, end,
                         max_points=max_points)


def topic_series(monitor, cluster, topic, start, end, max_points=300) -> list[dict]:
    return _history_call(monitor, "topic_series", cluster, topic, start, end, max_points=max_points)


def partition_rate_series(monitor, cluster, topic, start, end, max_points=120) -> list[dict]:
    return _history_call(monitor, "partition_rate_series", cluster, topic, start, end,
                         max_points=max_points)


def cluster_series(monitor, cluster, start, end, max_points=300) -> list[dict]:
    return _history_call(monitor, "cluster_series", cluster, start, end, max_points=max_points)


def points_per_series(series: int, budget: int = 6000, low: int = 30, high: int = 200) -> int:
    """max_points per series so a chart of `series` lines/rows stays near `budget` points."""
    if series <= 0:
        return high
    return max(low, min(high, budget // series))


def topic_throughput(monitor, cluster, topics: list[str], start, end, since=None,
                     max_points=300) -> dict[str, list[dict]]:
    return {t: after(topic_series(monitor, cluster, t, since if since is not None else start, end,
                                  max_points), since) for t in topics}


# --------------------------------------------------------------------------------------------
# overview: headline figures, topology, collector health, status line
# --------------------------------------------------------------------------------------------


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


def headline(monitor, snap: Snapshot | None, cluster: str | None) -> Headline:
    """The overview's headline figures (straight from the snapshot: no per-group formatting)."""
    state = cluster_state(snap, cluster)
    rate = None
    topics = 0
    by_level: dict[str, int] = {}
    worst_lag = None
    worst_tl = None
    if state is not None:
        internal = {t.name for t in state.raw.topics if t.internal}
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
            worst_tl = (best_tl.group, best_tl.time_lag_seconds, _enum_text(best_tl.time_lag_method),
                        bool(getattr(best_tl, "time_lag_lower_bound", False)))
    queries = spark_queries(snap)
    for q in queries:
        if q.kafka_lag is not None and (q.source_topics or q.kafka_lag) and (
                worst_lag is None or q.kafka_lag > worst_lag[1]):
            worst_lag = (q.label, q.kafka_lag, KIND_QUERY)
    view = alerts_view(monitor)
    return Headline(
        cluster=cluster, produce_rate=rate, topics=topics,
        groups=sum(by_level.values()), groups_by_level=by_level, worst_lag=worst_lag,
        worst_time_lag=worst_tl, queries=len(queries),
        queries_keeping_up=sum(1 for q in queries if q.keeping_up is True),
        queries_unknown=sum(1 for q in queries if q.keeping_up is None),
        alerts_firing=len(view.firing) if view.configured else None,
        stale=bool(state.stale) if state is not None else False,
        at=snap.at if snap else None,
    )


def partition_count(snap: Snapshot | None, cluster: str | None, topic: str | None) -> int:
    state = cluster_state(snap, cluster)
    for t in (state.raw.topics if state else ()):
        if t.name == topic:
            return len(t.partitions)
    return 0


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


def internal_topics(monitor) -> frozenset[str]:
    """Topic names this monitor's own configuration makes internal (the progress topic)."""
    spark = getattr(getattr(monitor, "config", None), "spark", None)
    topic = getattr(spark, "progress_topic", None)
    return frozenset([topic]) if isinstance(topic, str) and topic else frozenset()


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
    return [f"consumer group {g.group}", f"status {_enum_text(g.status)}",
            f"lag {fmt.count(g.lag)} messages",
            f"time lag {fmt.time_lag(g.time_lag_seconds, g.time_lag_method, getattr(g, 'time_lag_lower_bound', False))}",
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
        consumers.append((-_LEVEL_RANK.get(level, 0), g.group, "group", g, level, g.topics, ()))
    for q in queries:
        consumers.append((-_LEVEL_RANK.get(q.level, 0), q.label, "query", q, q.level,
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


def health_rows(monitor, snap: Snapshot | None, at: float) -> list[dict]:
    stale_after = stale_after_seconds(monitor)
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


def status_line(monitor, snap: Snapshot | None, at: float) -> StatusLine:
    if snap is None:
        return StatusLine("waiting for the first collection cycle…", "unknown",
                          None)
    rows = health_rows(monitor, snap, at)
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


# --------------------------------------------------------------------------------------------
# alerts
# --------------------------------------------------------------------------------------------


@dataclass
class AlertsView:
    configured: bool
    notice: str | None
    firing: list[dict]
    pending: list[dict]
    resolved: list[dict]
    silences: list[dict]
    error: str | None = None
    notifications: list[dict] = field(default_factory=list)
    receivers: tuple[str, ...] | None = None  # None: unknown


ALERT_COLUMNS = ("alertname", "severity", "state", "labels", "value", "since", "summary")
SILENCE_COLUMNS = ("id", "matchers", "state", "starts", "ends", "created_by", "comment")


def _labels_text(labels: Any) -> str:
    if isinstance(labels, Mapping):
        return ", ".join(f"{k}={v}" for k, v in sorted(labels.items(), key=lambda kv: str(kv[0])))
    if labels is None:
        return ""
    return str(labels)


def _as_mapping(item: Any) -> Mapping:
    if isinstance(item, Mapping):
        return item
    try:
        import dataclasses

        if dataclasses.is_dataclass(item):
            return dataclasses.asdict(item)
    except Exception:
        pass
    return {k: getattr(item, k) for k in dir(item) if not k.startswith("_") and not callable(getattr(item, k, None))}


def _ts(value: Any) -> float | None:
    v = _num(value)
    if v is not None:
        return v
    if isinstance(value, str):
        from datetime import datetime

        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    ts = getattr(value, "timestamp", None)
    return ts() if callable(ts) else None


def alert_row(item: Any, at: float) -> dict:
    a = _as_mapping(item)
    labels = a.get("labels") or {}
    annotations = a.get("annotations") or {}
    name = a.get("alertname") or (labels.get("alertname") if isinstance(labels, Mapping) else None) or "?"
    since = _ts(a.get("active_since") or a.get("active_at") or a.get("activeAt") or a.get("fired_at")
                or a.get("since") or a.get("startsAt"))
    resolved = _ts(a.get("resolved_at") or a.get("resolvedAt") or a.get("endsAt"))
    value = a.get("value")
    vnum = _num(value)
    state = str(getattr(a.get("state"), "value", a.get("state")) or "").lower()
    status = a.get("status") if isinstance(a.get("status"), Mapping) else {}
    suppressed = status.get("state") == "suppressed"
    severity = str(a.get("severity") or (labels.get("severity") if isinstance(labels, Mapping) else "") or "")
    summary = a.get("summary") or (annotations.get("summary") if isinstance(annotations, Mapping) else None)
    return {
        "id": row_id(str(a.get("fingerprint") or name), _labels_text(labels), str(since)),
        "alertname": str(name), "severity": severity,
        "state": state + (" (silenced)" if suppressed else ""), "_state": state,
        "labels": _labels_text({k: v for k, v in labels.items() if k not in ("alertname", "severity")}
                               if isinstance(labels, Mapping) else labels),
        "value": fmt.si(vnum) if vnum is not None else ("" if value is None else str(value)),
        "since": (f"{fmt.timestamp(since)} ({fmt.age(since, at)})" if since else fmt.MISSING),
        "_since": since,
        "resolved": fmt.timestamp(resolved) if resolved else "",
        "summary": str(summary or ""),
        "_level": "stale" if suppressed else "err" if severity in ("critical", "error", "page") else "warn",
    }


def silence_row(item: Any, at: float) -> dict:
    s = _as_mapping(item)
    matchers = s.get("matchers_text") or s.get("matchers")
    if isinstance(matchers, (list, tuple)):
        parts = []
        for m in matchers:
            if isinstance(m, str):
                parts.append(m)
                continue
            mm = _as_mapping(m)
            op = mm.get("op")
            if op is None:
                regex = mm.get("isRegex") or mm.get("is_regex")
                equal = mm.get("isEqual", True)
                op = ("=~" if equal else "!~") if regex else ("=" if equal else "!=")
            parts.append(f"{mm.get('name')}{op}{mm.get('value')}")
        matchers = ", ".join(parts)
    elif isinstance(matchers, Mapping):
        matchers = _labels_text(matchers)
    starts = _ts(s.get("starts_at") or s.get("startsAt"))
    ends = _ts(s.get("ends_at") or s.get("endsAt"))
    status = s.get("status") if isinstance(s.get("status"), Mapping) else {}
    state = s.get("state") or status.get("state") or (
        "expired" if ends is not None and ends <= at else
        "pending" if starts is not None and starts > at else "active")
    return {
        "id": str(s.get("id", "")), "matchers": str(matchers or ""), "state": str(state),
        "starts": fmt.timestamp(starts), "ends": fmt.timestamp(ends),
        "created_by": str(s.get("created_by") or s.get("createdBy") or ""),
        "comment": str(s.get("comment") or ""),
    }


def notification_row(item: Any, at: float) -> dict:
    """A row of the notification log (`alerts.notification_log.notification_entry`)."""
    n = _as_mapping(item)
    result = str(n.get("result") or "")
    retry = _ts(n.get("next_attempt_at"))
    outcome = {"delivered": "delivered", "pending": "pending (not tried yet)"}.get(result, result)
    if result == "failed":
        outcome = "failed" + (f", retry {fmt.timestamp(retry)}" if retry else "")
    alerts = [str(a) for a in _seq(n.get("alerts"))]
    more = (_num(n.get("alerts_total")) or len(alerts)) - len(alerts)
    created = _ts(n.get("created_at"))
    return {
        "id": str(n.get("id", "")),
        "time": f"{fmt.timestamp(created)} ({fmt.age(created, at)})" if created else fmt.MISSING,
        "receiver": f"{n.get('receiver', '')} ({n.get('receiver_type', '')})",
        "status": str(n.get("status") or ""),
        "alerts": "; ".join(alerts) + (f"; +{int(more)} more" if more > 0 else ""),
        "attempts": n.get("attempts"),
        "result": outcome,
        "error": str(n.get("error") or ""),
        "_level": "ok" if result == "delivered" else "err" if result == "failed" else "warn",
    }


def alerts_view(monitor) -> AlertsView:
    """Alerts and silences from the alert engine, defensively.

    Expected: `monitor.alerting` is None when not configured, else an object with
    `list_alerts()` → list of dicts (or objects) with keys alertname, state ("firing" |
    "pending" | "resolved" | "inactive"), severity, labels (dict), value, active_since (UNIX
    seconds or RFC 3339; `active_at`/`fired_at`/`startsAt` are read too), summary (or
    annotations.summary), optionally resolved_at and status.state == "suppressed"; and
    `list_silences()` → list of dicts with id, matchers (list of {name, value, op} or
    {name, value, isRegex, isEqual} or text; `matchers_text` preferred), starts_at, ends_at,
    created_by/createdBy, comment, state or status.state; optionally `list_notifications()` →
    the notification log (`alerts.notification_log`) and `receivers` (configured receiver
    names). This is what `monitor.alerting.AlertingWiring` returns today. Anything missing
    shows as "—"; an exception becomes a notice on the page.
    """
    engine = getattr(monitor, "alerting", None)
    if engine is None:
        return AlertsView(False, ALERTING_NOTICE, [], [], [], [])
    at = now(monitor)
    error = None
    alerts: list = []
    silences: list = []
    try:
        fn = getattr(engine, "list_alerts", None)
        alerts = list(fn() or []) if callable(fn) else []
    except Exception as exc:
        log.warning("alerting.list_alerts() failed", exc_info=True)
        error = f"cannot list alerts: {exc}"
    try:
        fn = getattr(engine, "list_silences", None)
        silences = list(fn() or []) if callable(fn) else []
    except Exception as exc:
        log.warning("alerting.list_silences() failed", exc_info=True)
        error = (error + "; " if error else "") + f"cannot list silences: {exc}"
    rows = []
    for a in alerts:
        try:
            rows.append(alert_row(a, at))
        except Exception:
            log.debug("unreadable alert %r", a, exc_info=True)
    sil = []
    for s in silences:
        try:
            sil.append(silence_row(s, at))
        except Exception:
            log.debug("unreadable silence %r", s, exc_info=True)
    notes: list[dict] = []
    try:
        fn = getattr(engine, "list_notifications", None)
        for n in (list(fn() or []) if callable(fn) else []):
            notes.append(notification_row(n, at))
    except Exception as exc:
        log.warning("alerting.list_notifications() failed", exc_info=True)
        error = (error + "; " if error else "") + f"cannot list notifications: {exc}"
    receivers = getattr(engine, "receivers", None)
    firing = [r for r in rows if r["_state"] == "firing"]
    pending = [r for r in rows if r["_state"] == "pending"]
    resolved = [r for r in rows if r["_state"] not in ("firing", "pending")]
    for group in (firing, pending):
        group.sort(key=lambda r: (r["_level"] != "err", -(r["_since"] or 0)))
    resolved.sort(key=lambda r: -(r["_since"] or 0))
    return AlertsView(True, None, firing, pending, resolved, sil, error, notes,
                      tuple(receivers) if isinstance(receivers, (list, tuple)) else None)
