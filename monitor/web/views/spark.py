"""The Spark page's data: applications with their queries (batches, rates, lag, sink), DStream
statistics, failed jobs and stages, executors; read from the snapshot's typed Spark views."""
from __future__ import annotations

from dataclasses import dataclass

from collectors.models import Snapshot
from collectors.spark.models import BatchProgress, DStreamStats, QueryState, SparkAppView, SparkQueryView
from monitor.web.views import format as fmt
from monitor.web.views.common import per_snapshot, worst_level

SPARK_EMPTY_NOTICE = (
    "No Spark application found — point streamscope at one: spark.ui_urls in the config "
    "(e.g. http://127.0.0.1:4040), or spark.scan_host to probe a host's driver UI ports "
    "(spark.scan_ports), or spark.master_url / spark.history_server_url, or spark.progress_topic "
    "for the streamscope listener's progress feed."
)


@dataclass
class BatchView:
    batch_id: int
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


def spark_apps(snap: Snapshot | None) -> list[AppView]:
    """Every Spark application of the snapshot, with its queries (memoised per snapshot)."""
    if snap is None or not snap.spark:
        return []
    return per_snapshot(snap, "spark_apps", lambda: [_app_view(a) for a in snap.spark])


def spark_queries(snap: Snapshot | None) -> list[QueryView]:
    return [q for app in spark_apps(snap) for q in app.queries]


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def _batch_view(b: BatchProgress) -> BatchView:
    return BatchView(
        batch_id=b.batch_id, timestamp=b.timestamp, duration_s=_seconds(b.measured_duration_ms),
        input_rate=b.input_rows_per_second, processing_rate=b.processed_rows_per_second,
        input_rows=b.num_input_rows, watermark_delay_s=b.watermark_delay_seconds,
        event_time_delay_s=b.event_time_delay_seconds, state_rows=b.state_rows_total,
        state_bytes=b.state_memory_bytes, status=b.status, origin=b.origin,
    )


def _app_view(view: SparkAppView) -> AppView:
    s = view.raw
    queries = [_query_view(q, s.app.id, s.app.name, s.stale) for q in view.queries]
    dstream = _dstream_view(s.dstream) if s.dstream is not None else None
    failed_jobs = [
        {"job": j.job_id, "name": j.name, "description": j.description or "",
         "failed_tasks": j.failed_tasks, "failed_stages": j.failed_stages,
         "completed": fmt.timestamp(j.completion_time)}
        for j in (s.jobs.failed_jobs if s.jobs is not None else ())
    ]
    failed_stages = [
        {"stage": f"{st.stage_id} (attempt {st.attempt_id})", "name": st.name,
         "reason": (st.failure_reason or "")[:500], "failed_tasks": st.failed_tasks,
         "completed": fmt.timestamp(st.completion_time)}
        for st in (s.stages.failed_stages if s.stages is not None else ())
    ]
    executors = [{
        "id": e.id, "host": e.host_port or "", "active": fmt.yes_no(e.active),
        "cores": e.total_cores, "active_tasks": e.active_tasks,
        "completed_tasks": e.completed_tasks, "failed_tasks": e.failed_tasks,
        "memory": f"{fmt.bytes_(e.memory_used_bytes)} / {fmt.bytes_(e.max_memory_bytes)}",
        "gc": fmt.duration_ms(e.total_gc_time_ms), "removed": e.remove_reason or "",
    } for e in s.executors]
    errors = [{"source": src.source, "url": src.url, "error": (src.error or "error")[:300]}
              for src in s.sources if not src.ok]
    levels = [q.level for q in queries]
    if dstream is not None and dstream.keeping_up is False:
        levels.append("warn")
    if failed_jobs or failed_stages:
        levels.append("warn")
    level = "stale" if s.stale else worst_level(levels) if levels else "ok"
    return AppView(
        id=s.app.id, name=s.app.name, ui_url=s.app.ui_url, spark_version=s.app.spark_version, user=s.app.user,
        start_time=s.app.start_time, completed=s.app.completed, stale=s.stale, level=level, queries=queries,
        dstream=dstream, jobs_active=view.jobs_active, jobs_failed=view.failed_jobs,
        jobs_succeeded=s.jobs.succeeded if s.jobs is not None else None, failed_jobs=failed_jobs,
        failed_stages=failed_stages, executors=executors, source_errors=errors, collected_at=s.collected_at,
    )


def _query_view(view: SparkQueryView, app_id: str, app_name: str, app_stale: bool) -> QueryView:
    q = view.raw
    batches = sorted((_batch_view(b) for b in q.batches), key=lambda b: b.batch_id)
    progress = q.last_progress
    last_full = _batch_view(progress) if progress is not None else None
    gauges = q.gauges
    # the driver's gauges first, else the latest full progress (state: the other way round)
    input_rate = _first(gauges and gauges.input_rate, last_full and last_full.input_rate)
    processing_rate = _first(gauges and gauges.processing_rate, last_full and last_full.processing_rate)
    last_duration = _first(batches[-1].duration_s if batches else None, gauges and _seconds(gauges.latency_ms))
    trigger = view.trigger_interval_seconds
    keeping_up = _keeping_up(q.state, input_rate, processing_rate, trigger, last_duration)
    state_rows = _first(last_full and last_full.state_rows, gauges and gauges.state_rows_total)
    state_bytes = _first(last_full and last_full.state_bytes, gauges and gauges.state_used_bytes)
    sink = q.sink
    return QueryView(
        app_id=app_id, app_name=app_name, key=q.key, label=view.label, state=q.state.value,
        exception=q.exception, batches=batches, trigger_interval_s=trigger,
        source_topics=list(view.source_topics), output_topics=list(sink.topics) if sink else [],
        sink=sink.text if sink else "unknown", sink_kind=sink.kind if sink else None, input_rate=input_rate,
        processing_rate=processing_rate, last_duration_s=last_duration,
        watermark_delay_s=last_full.watermark_delay_s if last_full is not None else None,
        state_rows=state_rows, state_bytes=state_bytes, kafka_lag=view.kafka_lag_total,
        kafka_lag_method=view.kafka_lag_method, keeping_up=keeping_up,
        level=_query_level(q.state, keeping_up, app_stale), stale=app_stale,
        last_batch_id=q.last_batch_id, updated_at=q.updated_at,
    )


def _first(*values):
    """The first value that is known (not None)."""
    return next((v for v in values if v is not None), None)


def _keeping_up(state: QueryState, input_rate: float | None, processing_rate: float | None,
                trigger: float | None, last_duration: float | None) -> bool | None:
    """Processing as fast as the input arrives and batches within their trigger; None: unknown."""
    if state == QueryState.FAILED:
        return False
    checks = []
    if input_rate is not None and processing_rate is not None and input_rate > 0:
        checks.append(processing_rate >= 0.95 * input_rate)
    if trigger and last_duration is not None:
        checks.append(last_duration <= trigger * 1.05)
    return all(checks) if checks else None


def _query_level(state: QueryState, keeping_up: bool | None, app_stale: bool) -> str:
    if app_stale:
        return "stale"
    if state == QueryState.FAILED:
        return "err"
    if state == QueryState.TERMINATED or keeping_up is False:
        return "warn"
    return "ok" if state == QueryState.ACTIVE else "unknown"


def _dstream_view(d: DStreamStats) -> DStreamView:
    batches = [{
        "batch_time": b.batch_time, "scheduling_delay_s": _seconds(b.scheduling_delay_ms),
        "processing_s": _seconds(b.processing_time_ms), "total_delay_s": _seconds(b.total_delay_ms),
        "input_size": b.input_size, "status": b.status,
    } for b in d.batches]
    batches.sort(key=lambda r: r["batch_time"] or 0)  # Spark lists newest first
    receivers = [
        {"stream": r.stream_id, "name": r.name, "active": fmt.yes_no(r.active), "executor": r.executor_id or "",
         "rate": fmt.rate(r.avg_event_rate, "ev/s"), "last_error": (r.last_error or "")[:300]}
        for r in d.receivers
    ]
    completed = [b for b in batches if b["processing_s"] is not None]
    keeping_up = completed[-1]["processing_s"] <= d.batch_duration_ms / 1000.0 if d.batch_duration_ms and completed else None
    return DStreamView(
        batch_interval_s=d.batch_duration_ms / 1000.0, batches=batches, receivers=receivers,
        avg_input_rate=d.avg_input_rate, avg_scheduling_delay_s=_seconds(d.avg_scheduling_delay_ms),
        avg_processing_s=_seconds(d.avg_processing_time_ms), keeping_up=keeping_up,
    )
