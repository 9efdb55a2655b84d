"""Prometheus metric families of Spark applications (the Spark half of docs/metrics.md).

`spark_families(apps)` yields fresh families built from the `SparkAppView`s of one snapshot: no
global state, so an app or query that is gone is simply absent from the next output. An app whose
driver stopped answering is still in the snapshot for a while (the collector's `down_app_ttl`):
exported with `app_up 0`, `app_stale 1`, its queries `query_active 0`, and its last values. Labels
are the views' (`collectors.spark.views`): `app` unique in the snapshot, one `query` per label.

Units: Spark's milliseconds are exported as seconds. Per-batch values come from the query's
latest finished batch; fields only the listener's full progress carries (trigger phases, rows,
watermark, state) come from its latest listener batch, falling back to the driver's metrics
gauges (`spark.sql.streaming.metricsEnabled`) when there is no listener feed.

Kafka lag of a query against its topics is NOT exported here: the query joins the Kafka
derivation as the consumer group `spark-<query>` (kind `spark-query`), so
`streamscope_kafka_consumergroup_*{group="spark-<query>"}` carry its lag, time lag, rates, ETA
and status.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from collectors.spark.models import BatchProgress, QueryState, SparkAppView, SparkQueryView, TriggerDurations

__all__ = ["spark_families", "TRIGGER_PHASES"]

# TriggerDurations field -> Spark's `durationMs` key (the `phase` label value)
TRIGGER_PHASES: tuple[tuple[str, str], ...] = (
    ("add_batch_ms", "addBatch"),
    ("get_batch_ms", "getBatch"),
    ("latest_offset_ms", "latestOffset"),
    ("query_planning_ms", "queryPlanning"),
    ("wal_commit_ms", "walCommit"),
    ("commit_offsets_ms", "commitOffsets"),
    ("trigger_execution_ms", "triggerExecution"),
)


def trigger_phases(d: TriggerDurations | None) -> list[tuple[str, int]]:
    """(Spark phase name, milliseconds) of a progress report's `durationMs`."""
    if d is None:
        return []
    out = [(name, getattr(d, field)) for field, name in TRIGGER_PHASES
           if getattr(d, field) is not None]
    out.extend((name, ms) for name, ms in d.other if ms is not None)
    return out


# --------------------------------------------------------------------------------------------
# families
# --------------------------------------------------------------------------------------------


def _g(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _c(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    # CounterMetricFamily adds the `_total` suffix itself: pass the name without it
    return CounterMetricFamily(name.removesuffix("_total"), doc, labels=labels)


def spark_families(apps: Iterable[SparkAppView]) -> Iterator[Metric]:
    """Every Spark metric family of docs/metrics.md, from one snapshot's app views."""
    apps = list(apps)
    yield from _app_families(apps)
    yield from _query_families(apps)
    yield from _dstream_families(apps)


_A, _AQ = ["app"], ["app", "query"]


def _app_families(apps: list[SparkAppView]) -> Iterator[Metric]:
    app_info = InfoMetricFamily("streamscope_spark_app", "Spark application metadata.",
                                labels=["app", "app_id", "spark_version"])
    up = _g("streamscope_spark_app_up", "1 if the application is running and answered this cycle (0: finished, or unreachable and its last data is shown).", _A)
    stale = _g("streamscope_spark_app_stale", "1 if the application is not finished but its driver did not answer this cycle (gone or not responding): the values shown are its last good data.", _A)
    jobs_active = _g("streamscope_spark_jobs_active", "Jobs running now.", _A)
    jobs_failed = _c("streamscope_spark_jobs_failed_total", "Jobs that failed since the application started.", _A)
    stages_failed = _c("streamscope_spark_stages_failed_total", "Stages that failed since the application started.", _A)
    tasks_failed = _c("streamscope_spark_tasks_failed_total", "Tasks that failed since the application started.", _A)
    executors = _g("streamscope_spark_executors", "Executors (the driver included) by state: active or dead.", _A + ["state"])
    exec_mem = _g("streamscope_spark_executor_memory_used_bytes", "Storage memory used, summed over active executors (the driver included).", _A)
    exec_gc = _c("streamscope_spark_executor_gc_seconds_total", "JVM garbage-collection time summed over all executors, live and dead.", _A)
    for view in apps:
        snap, av = view.raw, [view.label]
        drv = snap.driver
        app_info.add_metric(av, {"app_id": snap.app.id, "spark_version": snap.app.spark_version or ""})
        up.add_metric(av, 1.0 if view.up else 0.0)
        stale.add_metric(av, 1.0 if view.unreachable else 0.0)
        _opt(jobs_active, av, view.jobs_active)
        _opt(jobs_failed, av, view.failed_jobs)
        _opt(stages_failed, av, drv.stages_failed_total if drv is not None else None,
             len(snap.stages.failed_stages) if snap.stages is not None else None)
        _opt(tasks_failed, av, drv.tasks_failed_total if drv is not None else None,
             sum(e.failed_tasks for e in snap.executors) if snap.executors else None)
        if snap.executors:
            live = snap.active_executors
            executors.add_metric(av + ["active"], len(live))
            executors.add_metric(av + ["dead"], len(snap.executors) - len(live))
            exec_mem.add_metric(av, sum(e.memory_used_bytes for e in live))
            exec_gc.add_metric(av, sum(e.total_gc_time_ms for e in snap.executors) / 1000.0)
    yield from (app_info, up, stale, jobs_active, jobs_failed, stages_failed, tasks_failed,
                executors, exec_mem, exec_gc)


class _QueryFamilies:
    """The per-query families, one `add` per (app, query)."""

    def __init__(self) -> None:
        self.info = InfoMetricFamily("streamscope_spark_query", "Structured Streaming query identity (current run).",
                                     labels=["app", "query", "query_id", "run_id"])
        self.active = _g("streamscope_spark_query_active", "1 if the query is active, 0 if it stopped or failed (absent while no source tells).", _AQ)
        self.failed = _g("streamscope_spark_query_failed", "1 if the query terminated with an exception.", _AQ)
        self.batch_id = _g("streamscope_spark_query_last_batch_id", "Id of the query's latest finished micro-batch.", _AQ)
        self.batch_ts = _g("streamscope_spark_query_last_batch_timestamp_seconds", "UNIX time the latest finished micro-batch was triggered.", _AQ)
        self.batch_dur = _g("streamscope_spark_query_batch_duration_seconds", "Duration of the latest finished micro-batch.", _AQ)
        self.phase = _g("streamscope_spark_query_trigger_phase_duration_seconds", "Time the latest reported micro-batch spent per trigger phase (Spark's durationMs).", _AQ + ["phase"])
        self.trigger = _g("streamscope_spark_query_trigger_interval_seconds", "ProcessingTime trigger interval, estimated from batch start times (the last trusted estimate is kept while batches overrun it).", _AQ)
        self.in_rps = _g("streamscope_spark_query_input_rows_per_second", "Rows per second arriving from the sources (latest batch).", _AQ)
        self.proc_rps = _g("streamscope_spark_query_processed_rows_per_second", "Rows per second the query processed (latest batch).", _AQ)
        self.in_rows = _g("streamscope_spark_query_batch_input_rows", "Rows read by the latest reported micro-batch.", _AQ)
        self.wm = _g("streamscope_spark_query_watermark_delay_seconds", "Trigger time minus the event-time watermark.", _AQ)
        self.evt = _g("streamscope_spark_query_event_time_delay_seconds", "Trigger time minus the newest event time in the latest batch.", _AQ)
        self.state_rows = _g("streamscope_spark_query_state_rows", "Rows in the query's state stores.", _AQ)
        self.state_mem = _g("streamscope_spark_query_state_memory_bytes", "Memory used by the query's state stores.", _AQ)
        self.behind = _g("streamscope_spark_query_offsets_behind_latest", "Spark's own Kafka source metric: offsets behind the latest available, per partition (min, avg, max over partitions).", _AQ + ["stat"])

    def families(self) -> tuple[Metric, ...]:
        return (self.info, self.active, self.failed, self.batch_id, self.batch_ts, self.batch_dur, self.phase,
                self.trigger, self.in_rps, self.proc_rps, self.in_rows, self.wm, self.evt, self.state_rows,
                self.state_mem, self.behind)

    def add(self, app: str, view: SparkQueryView) -> None:
        q, qv = view.raw, [app, view.label]
        self.info.add_metric(qv, {"query_id": q.id or "", "run_id": q.run_id or ""})
        if q.state != QueryState.UNKNOWN:
            self.active.add_metric(qv, 1.0 if view.active else 0.0)
        self.failed.add_metric(qv, 1.0 if view.failed else 0.0)
        self._last_batch(qv, view)
        _opt(self.trigger, qv, view.trigger_interval_seconds)
        self._progress(qv, view)

    def _last_batch(self, qv: list[str], view: SparkQueryView) -> None:
        last = view.last_finished_batch
        if last is None:
            _opt(self.batch_id, qv, view.raw.last_batch_id)
            return
        self.batch_id.add_metric(qv, last.batch_id)
        _opt(self.batch_ts, qv, last.timestamp)
        ms = last.measured_duration_ms
        _opt(self.batch_dur, qv, ms / 1000.0 if ms is not None else None)

    def _progress(self, qv: list[str], view: SparkQueryView) -> None:
        """Values of the latest full progress, else of the driver's metrics gauges."""
        prog, gauges = view.raw.last_progress, view.raw.gauges
        for phase, ms in trigger_phases(prog.durations if prog else None):
            self.phase.add_metric(qv + [phase], ms / 1000.0)
        _opt(self.in_rps, qv, prog.input_rows_per_second if prog else None,
             gauges.input_rate if gauges else None)
        _opt(self.proc_rps, qv, prog.processed_rows_per_second if prog else None,
             gauges.processing_rate if gauges else None)
        _opt(self.in_rows, qv, prog.num_input_rows if prog else None)
        gauge_wm = None
        if gauges is not None and gauges.watermark is not None:
            gauge_wm = max(0.0, gauges.fetched_at - gauges.watermark)
        _opt(self.wm, qv, prog.watermark_delay_seconds if prog else None, gauge_wm)
        _opt(self.evt, qv, prog.event_time_delay_seconds if prog else None)
        _opt(self.state_rows, qv, prog.state_rows_total if prog else None,
             gauges.state_rows_total if gauges else None)
        _opt(self.state_mem, qv, prog.state_memory_bytes if prog else None,
             gauges.state_used_bytes if gauges else None)
        if prog is not None:
            for stat, value in _offsets_behind(prog):
                self.behind.add_metric(qv + [stat], value)


def _query_families(apps: list[SparkAppView]) -> Iterator[Metric]:
    families = _QueryFamilies()
    for view in apps:
        for q in view.current_queries:
            families.add(view.label, q)
    yield from families.families()


def _dstream_families(apps: list[SparkAppView]) -> Iterator[Metric]:
    interval = _g("streamscope_spark_dstream_batch_interval_seconds", "DStream batch interval.", _A)
    sched = _g("streamscope_spark_dstream_scheduling_delay_seconds", "Scheduling delay of the latest completed DStream batch.", _A)
    proc = _g("streamscope_spark_dstream_processing_time_seconds", "Processing time of the latest completed DStream batch.", _A)
    total = _g("streamscope_spark_dstream_total_delay_seconds", "Total delay (scheduling + processing) of the latest completed DStream batch.", _A)
    active = _g("streamscope_spark_dstream_active_batches", "DStream batches queued or processing.", _A)
    rate = _g("streamscope_spark_dstream_input_rate", "Average DStream input rate, records per second, over the retained batches.", _A)
    for view in apps:
        ds, av = view.raw.dstream, [view.label]
        if ds is None:
            continue
        interval.add_metric(av, ds.batch_duration_ms / 1000.0)
        active.add_metric(av, ds.active_batches)
        _opt(rate, av, ds.avg_input_rate)
        b = ds.last_completed_batch
        for fam, ms in ((sched, b.scheduling_delay_ms if b else ds.avg_scheduling_delay_ms),
                        (proc, b.processing_time_ms if b else ds.avg_processing_time_ms),
                        (total, b.total_delay_ms if b else ds.avg_total_delay_ms)):
            _opt(fam, av, ms / 1000.0 if ms is not None else None)
    yield from (interval, sched, proc, total, active, rate)


def _opt(fam: GaugeMetricFamily | CounterMetricFamily, labels: list[str], *values: Any) -> None:
    """Add the first value that is not None (nothing when all are None)."""
    for v in values:
        if v is not None:
            fam.add_metric(labels, float(v))
            return


def _offsets_behind(b: BatchProgress) -> list[tuple[str, float]]:
    """Spark's min/avg/max offsets behind latest over the batch's Kafka sources (min of mins,
    mean of avgs, max of maxes)."""
    srcs = [s for s in b.sources if s.is_kafka]
    mins = [s.min_offsets_behind_latest for s in srcs if s.min_offsets_behind_latest is not None]
    avgs = [s.avg_offsets_behind_latest for s in srcs if s.avg_offsets_behind_latest is not None]
    maxs = [s.max_offsets_behind_latest for s in srcs if s.max_offsets_behind_latest is not None]
    out = []
    if mins:
        out.append(("min", min(mins)))
    if avgs:
        out.append(("avg", sum(avgs) / len(avgs)))
    if maxs:
        out.append(("max", max(maxs)))
    return out
