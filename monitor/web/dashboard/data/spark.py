"""The Spark page's data: applications with their queries (batches, rates, lag, sink), DStream
statistics, failed jobs and stages, executors."""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collectors.models import Snapshot
from collectors.spark.sinks import KAFKA as KAFKA_SINK, SinkInfo, sink_info
from collectors.values import finite_float as _num
from monitor.web.dashboard import format as fmt
from monitor.web.dashboard.data.common import enum_text, per_snapshot, worst_level

log = logging.getLogger(__name__)

SPARK_EMPTY_NOTICE = (
    "No Spark application found — point streamscope at one: spark.ui_urls in the config "
    "(e.g. http://127.0.0.1:4040), or spark.scan_host to probe a host's driver UI ports "
    "(spark.scan_ports), or spark.master_url / spark.history_server_url, or spark.progress_topic "
    "for the streamscope listener's progress feed."
)


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
    state = enum_text(_get(q, "state", default="unknown")).lower() or "unknown"
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
