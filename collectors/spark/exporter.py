"""Prometheus metric families of Spark applications (the Spark half of docs/metrics.md).

`spark_families(apps)` yields fresh families built from the `SparkAppSnapshot`s of one cycle: no
global state, so an app or query that is gone is simply absent from the next output. An app whose
driver stopped answering is still in the snapshots for a while (the collector's
`down_app_ttl`): exported with `app_up 0`, `app_stale 1`, its queries `query_active 0`, and its
last values.
`collectors.exporter.SnapshotCollector` calls it with `snapshot.spark`.

Labels: `app` is the application name; when several apps in the snapshot share a name, the
only running one (the only answering one, when one is down) keeps the bare name and every other
one gets `"<name> (<app id>)"` (two running apps with one name both get the suffix), so series
never collide (`app_labels`). `query` is the query's name, or
its id when unnamed; if an app reports two queries with the same label (a query restarted
under the same name), only one is exported: the active one, else the most recently updated.

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

from collections import Counter
from typing import Any, Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from collectors.spark.models import (
    BatchProgress,
    QueryState,
    SparkAppSnapshot,
    StreamingQuery,
    TriggerDurations,
)

__all__ = ["app_labels", "app_liveness", "app_up", "batch_duration_ms", "disambiguate_app_names", "spark_families", "TRIGGER_PHASES",
           "pick_queries", "last_finished_batch"]

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


# --------------------------------------------------------------------------------------------
# labels
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


def app_labels(apps: Iterable[SparkAppSnapshot]) -> list[tuple[SparkAppSnapshot, str]]:
    """(snapshot, `app` label) for every app, with names shared by several apps disambiguated."""
    apps = list(apps)
    labels = disambiguate_app_names([(s.app.name, s.app.id, app_liveness(s)) for s in apps])
    return list(zip(apps, labels))


def app_up(snap: SparkAppSnapshot) -> bool:
    """Running and answered this cycle: not finished, not stale, some source read (an app
    snapshot without source statuses counts as answered)."""
    return snap.answered and not snap.app.completed


def pick_queries(queries: Iterable[StreamingQuery]) -> list[StreamingQuery]:
    """One query per label: the active one, else the most recently updated."""
    best: dict[str, StreamingQuery] = {}
    for q in queries:
        label = q.label
        cur = best.get(label)
        if cur is None or _query_rank(q) > _query_rank(cur):
            best[label] = q
    return [best[k] for k in sorted(best)]


def _query_rank(q: StreamingQuery) -> tuple:
    return (q.state == QueryState.ACTIVE, q.updated_at, q.last_batch_id or -1)


def last_finished_batch(q: StreamingQuery) -> BatchProgress | None:
    """The latest batch that is not RUNNING (batches are oldest first)."""
    for b in reversed(q.batches):
        if b.status != "RUNNING":
            return b
    return None


def batch_duration_ms(b: BatchProgress) -> int | None:
    if b.duration_ms is not None:
        return b.duration_ms
    if b.durations is not None:
        return b.durations.trigger_execution_ms
    return None


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


def spark_families(apps: Iterable[SparkAppSnapshot]) -> Iterator[Metric]:
    """Every Spark metric family of docs/metrics.md, from one cycle's app snapshots."""
    a, aq = ["app"], ["app", "query"]
    app_info = InfoMetricFamily("streamscope_spark_app", "Spark application metadata.",
                                labels=["app", "app_id", "spark_version"])
    up = _g("streamscope_spark_app_up", "1 if the application is running and answered this cycle (0: finished, or unreachable and its last data is shown).", a)
    stale = _g("streamscope_spark_app_stale", "1 if the application is not finished but its driver did not answer this cycle (gone or not responding): the values shown are its last good data.", a)
    jobs_active = _g("streamscope_spark_jobs_active", "Jobs running now.", a)
    jobs_failed = _c("streamscope_spark_jobs_failed_total", "Jobs that failed since the application started.", a)
    stages_failed = _c("streamscope_spark_stages_failed_total", "Stages that failed since the application started.", a)
    tasks_failed = _c("streamscope_spark_tasks_failed_total", "Tasks that failed since the application started.", a)
    executors = _g("streamscope_spark_executors", "Executors (the driver included) by state: active or dead.", a + ["state"])
    exec_mem = _g("streamscope_spark_executor_memory_used_bytes", "Storage memory used, summed over active executors (the driver included).", a)
    exec_gc = _c("streamscope_spark_executor_gc_seconds_total", "JVM garbage-collection time summed over all executors, live and dead.", a)

    q_info = InfoMetricFamily("streamscope_spark_query", "Structured Streaming query identity (current run).",
                              labels=["app", "query", "query_id", "run_id"])
    q_active = _g("streamscope_spark_query_active", "1 if the query is active, 0 if it stopped or failed (absent while no source tells).", aq)
    q_failed = _g("streamscope_spark_query_failed", "1 if the query terminated with an exception.", aq)
    q_batch_id = _g("streamscope_spark_query_last_batch_id", "Id of the query's latest finished micro-batch.", aq)
    q_batch_ts = _g("streamscope_spark_query_last_batch_timestamp_seconds", "UNIX time the latest finished micro-batch was triggered.", aq)
    q_batch_dur = _g("streamscope_spark_query_batch_duration_seconds", "Duration of the latest finished micro-batch.", aq)
    q_phase = _g("streamscope_spark_query_trigger_phase_duration_seconds", "Time the latest reported micro-batch spent per trigger phase (Spark's durationMs).", aq + ["phase"])
    q_trigger = _g("streamscope_spark_query_trigger_interval_seconds", "ProcessingTime trigger interval, estimated from batch start times (the last trusted estimate is kept while batches overrun it).", aq)
    q_in_rps = _g("streamscope_spark_query_input_rows_per_second", "Rows per second arriving from the sources (latest batch).", aq)
    q_proc_rps = _g("streamscope_spark_query_processed_rows_per_second", "Rows per second the query processed (latest batch).", aq)
    q_in_rows = _g("streamscope_spark_query_batch_input_rows", "Rows read by the latest reported micro-batch.", aq)
    q_wm = _g("streamscope_spark_query_watermark_delay_seconds", "Trigger time minus the event-time watermark.", aq)
    q_evt = _g("streamscope_spark_query_event_time_delay_seconds", "Trigger time minus the newest event time in the latest batch.", aq)
    q_state_rows = _g("streamscope_spark_query_state_rows", "Rows in the query's state stores.", aq)
    q_state_mem = _g("streamscope_spark_query_state_memory_bytes", "Memory used by the query's state stores.", aq)
    q_behind = _g("streamscope_spark_query_offsets_behind_latest", "Spark's own Kafka source metric: offsets behind the latest available, per partition (min, avg, max over partitions).", aq + ["stat"])

    ds_interval = _g("streamscope_spark_dstream_batch_interval_seconds", "DStream batch interval.", a)
    ds_sched = _g("streamscope_spark_dstream_scheduling_delay_seconds", "Scheduling delay of the latest completed DStream batch.", a)
    ds_proc = _g("streamscope_spark_dstream_processing_time_seconds", "Processing time of the latest completed DStream batch.", a)
    ds_total = _g("streamscope_spark_dstream_total_delay_seconds", "Total delay (scheduling + processing) of the latest completed DStream batch.", a)
    ds_active = _g("streamscope_spark_dstream_active_batches", "DStream batches queued or processing.", a)
    ds_rate = _g("streamscope_spark_dstream_input_rate", "Average DStream input rate, records per second, over the retained batches.", a)

    for snap, app in app_labels(apps):
        info = snap.app
        av = [app]
        app_info.add_metric(av, {"app_id": info.id, "spark_version": info.spark_version or ""})
        up.add_metric(av, 1.0 if app_up(snap) else 0.0)
        stale.add_metric(av, 1.0 if snap.unreachable else 0.0)
        drv = snap.driver
        jobs = snap.jobs
        active_jobs = jobs.active if jobs is not None else (drv.active_jobs if drv else None)
        if active_jobs is not None:
            jobs_active.add_metric(av, active_jobs)
        n = drv.jobs_failed_total if drv is not None and drv.jobs_failed_total is not None \
            else (jobs.failed if jobs is not None else None)
        if n is not None:
            jobs_failed.add_metric(av, n)
        n = drv.stages_failed_total if drv is not None and drv.stages_failed_total is not None \
            else (len(snap.stages.failed_stages) if snap.stages is not None else None)
        if n is not None:
            stages_failed.add_metric(av, n)
        n = drv.tasks_failed_total if drv is not None and drv.tasks_failed_total is not None \
            else (sum(e.failed_tasks for e in snap.executors) if snap.executors else None)
        if n is not None:
            tasks_failed.add_metric(av, n)
        if snap.executors:
            live = [e for e in snap.executors if e.active]
            executors.add_metric(av + ["active"], len(live))
            executors.add_metric(av + ["dead"], len(snap.executors) - len(live))
            exec_mem.add_metric(av, sum(e.memory_used_bytes for e in live))
            exec_gc.add_metric(av, sum(e.total_gc_time_ms for e in snap.executors) / 1000.0)

        for q in pick_queries(snap.queries):
            qv = [app, q.label]
            q_info.add_metric(qv, {"query_id": q.id or "", "run_id": q.run_id or ""})
            if q.state != QueryState.UNKNOWN:
                q_active.add_metric(qv, 1.0 if q.state == QueryState.ACTIVE else 0.0)
            failed = q.state == QueryState.FAILED or (
                q.state == QueryState.TERMINATED and bool(q.exception))
            q_failed.add_metric(qv, 1.0 if failed else 0.0)
            last = last_finished_batch(q)
            if last is not None:
                q_batch_id.add_metric(qv, last.batch_id)
                if last.timestamp is not None:
                    q_batch_ts.add_metric(qv, last.timestamp)
                ms = batch_duration_ms(last)
                if ms is not None:
                    q_batch_dur.add_metric(qv, ms / 1000.0)
            elif q.last_batch_id is not None:
                q_batch_id.add_metric(qv, q.last_batch_id)
            if q.trigger_interval_ms is not None:
                q_trigger.add_metric(qv, q.trigger_interval_ms / 1000.0)
            prog = q.last_progress
            gauges = q.gauges
            for phase, ms in trigger_phases(prog.durations if prog else None):
                q_phase.add_metric(qv + [phase], ms / 1000.0)
            _opt(q_in_rps, qv, prog.input_rows_per_second if prog else None,
                 gauges.input_rate if gauges else None)
            _opt(q_proc_rps, qv, prog.processed_rows_per_second if prog else None,
                 gauges.processing_rate if gauges else None)
            _opt(q_in_rows, qv, prog.num_input_rows if prog else None)
            gauge_wm = None
            if gauges is not None and gauges.watermark is not None:
                gauge_wm = max(0.0, gauges.fetched_at - gauges.watermark)
            _opt(q_wm, qv, prog.watermark_delay_seconds if prog else None, gauge_wm)
            _opt(q_evt, qv, prog.event_time_delay_seconds if prog else None)
            _opt(q_state_rows, qv, prog.state_rows_total if prog else None,
                 gauges.state_rows_total if gauges else None)
            _opt(q_state_mem, qv, prog.state_memory_bytes if prog else None,
                 gauges.state_used_bytes if gauges else None)
            if prog is not None:
                for stat, value in _offsets_behind(prog):
                    q_behind.add_metric(qv + [stat], value)

        ds = snap.dstream
        if ds is not None:
            ds_interval.add_metric(av, ds.batch_duration_ms / 1000.0)
            ds_active.add_metric(av, ds.active_batches)
            if ds.avg_input_rate is not None:
                ds_rate.add_metric(av, ds.avg_input_rate)
            b = ds.last_completed_batch
            sched = b.scheduling_delay_ms if b else ds.avg_scheduling_delay_ms
            proc = b.processing_time_ms if b else ds.avg_processing_time_ms
            total = b.total_delay_ms if b else ds.avg_total_delay_ms
            for fam, ms in ((ds_sched, sched), (ds_proc, proc), (ds_total, total)):
                if ms is not None:
                    fam.add_metric(av, ms / 1000.0)

    yield from (app_info, up, stale, jobs_active, jobs_failed, stages_failed, tasks_failed,
                executors, exec_mem, exec_gc,
                q_info, q_active, q_failed, q_batch_id, q_batch_ts, q_batch_dur, q_phase,
                q_trigger, q_in_rps, q_proc_rps, q_in_rows, q_wm, q_evt, q_state_rows,
                q_state_mem, q_behind,
                ds_interval, ds_sched, ds_proc, ds_total, ds_active, ds_rate)


def _opt(fam: GaugeMetricFamily, labels: list[str], *values: Any) -> None:
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
