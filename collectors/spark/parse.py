"""Pure parsers for what Spark serves: decoded JSON (or text/HTML) in, models out.

No I/O here. Every parser takes the decoded payload, `source` (the URL or path it came from, used
in error messages) and the fetch time, and returns models from `collectors.spark.models` (or small
intermediate records defined below). Anything that is not the expected shape raises
`SparkParseError` naming the source and what was wrong; the collector records that error for the
source and keeps the other sources of the cycle.

Parsers are lenient about optional fields (absent -> None/0) and strict about shape (a list where a
list is expected, objects inside, identifiers present, numbers that are numbers), so that a change
of Spark version that adds fields changes nothing and a response that is not what we think it is
fails loudly with context.
"""
from __future__ import annotations

import calendar
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any, Iterable, Mapping
from urllib.parse import urljoin

from collectors.spark.sinks import valid_topics

from collectors.spark.models import (
    BatchProgress,
    DriverMetrics,
    DStreamBatch,
    DStreamReceiver,
    DStreamStats,
    Executor,
    FailedJob,
    FailedStage,
    JobSummary,
    PartitionOffset,
    QueryGauges,
    QueryState,
    SourceProgress,
    SparkApp,
    StageSummary,
    StateOperatorProgress,
    StreamingQuery,
    TriggerDurations,
)


class SparkParseError(ValueError):
    """A Spark response was not what the parser expected."""

    def __init__(self, source: str, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def decode_json(text: str | bytes, source: str) -> Any:
    """Decode a JSON body; malformed JSON -> SparkParseError with the position and a snippet."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SparkParseError(source, f"body is not UTF-8: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        snippet = text[max(0, e.pos - 20): e.pos + 20].replace("\n", " ")
        raise SparkParseError(
            source, f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg} (near {snippet!r})"
        ) from None


_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"\s*(Z|GMT|UTC|[+-]\d{2}:?\d{2})?$"
)


def parse_spark_time(value: Any, source: str = "", field: str = "time") -> float | None:
    """Spark REST/progress timestamps -> UNIX seconds.

    Accepts "2026-11-25T11:49:01.300GMT" (REST), "2026-11-25T11:51:56.000Z" (progress), an
    epoch-milliseconds number, or None. Spark's "no time" values (-1 ms, 1969-12-31T23:59:59.999GMT)
    give None.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise SparkParseError(source, f"{field}: expected a timestamp, got {value!r}")
    if isinstance(value, (int, float)):
        return None if value < 0 else float(value) / 1000.0
    if not isinstance(value, str):
        raise SparkParseError(source, f"{field}: expected a timestamp, got {type(value).__name__}")
    m = _TIME_RE.match(value.strip())
    if not m:
        raise SparkParseError(source, f"{field}: unrecognised timestamp {value!r}")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    if frac:
        secs += int(frac) / (10 ** len(frac))
    if tz and tz not in ("Z", "GMT", "UTC"):
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        secs -= sign * (hh * 3600 + mm * 60)
    return None if secs < 0 else float(secs)


def _list(data: Any, source: str, what: str) -> list:
    if not isinstance(data, list):
        raise SparkParseError(source, f"expected a JSON list of {what}, got {type(data).__name__}")
    return data


def _obj(data: Any, source: str, what: str) -> dict:
    if not isinstance(data, dict):
        raise SparkParseError(source, f"expected a JSON object for {what}, got {type(data).__name__}")
    return data


def _int(d: Mapping, key: str, source: str, ctx: str, default: int | None = None) -> int | None:
    v = d.get(key)
    if v is None:
        return default
    if isinstance(v, bool):
        raise SparkParseError(source, f"{ctx}.{key}: expected an integer, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return default
        return int(v)
    if isinstance(v, str):
        try:
            return int(v)
        except ValueError:
            pass
    raise SparkParseError(source, f"{ctx}.{key}: expected an integer, got {v!r}")


def _req_int(d: Mapping, key: str, source: str, ctx: str) -> int:
    v = _int(d, key, source, ctx)
    if v is None:
        raise SparkParseError(source, f"{ctx}: missing {key!r}")
    return v


def _float(d: Mapping, key: str, source: str, ctx: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool):
        raise SparkParseError(source, f"{ctx}.{key}: expected a number, got {v!r}")
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):  # Kafka source metrics are strings; "NaN" also appears
        try:
            f = float(v)
        except ValueError:
            raise SparkParseError(source, f"{ctx}.{key}: expected a number, got {v!r}") from None
    else:
        raise SparkParseError(source, f"{ctx}.{key}: expected a number, got {type(v).__name__}")
    return None if math.isnan(f) or math.isinf(f) else f


def _str(d: Mapping, key: str, source: str, ctx: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise SparkParseError(source, f"{ctx}.{key}: expected a string, got {type(v).__name__}")
    return v


def _req_str(d: Mapping, key: str, source: str, ctx: str) -> str:
    v = _str(d, key, source, ctx)
    if v is None or v == "":
        raise SparkParseError(source, f"{ctx}: missing {key!r}")
    return v


def _time(d: Mapping, key: str, source: str, ctx: str) -> float | None:
    return parse_spark_time(d.get(key), source, f"{ctx}.{key}")


MAX_ERROR_CHARS = 4000  # stack traces are kept, clipped: snapshots are stored every cycle


def clip_error(text: str | None) -> str | None:
    if not text:
        return None
    text = text.strip()
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " …[clipped]"


# What Spark reports for a batch that was running when its query was stopped (or the
# SparkContext shut down): an interruption, not a failure of the query.
_INTERRUPTION_MARKERS = ("java.lang.InterruptedException", "ClosedByInterruptException",
                         "cancelled job group", "cancelled part of cancelled job group")


def is_interruption(error: str | None) -> bool:
    return bool(error) and any(m in error[:2000] for m in _INTERRUPTION_MARKERS)


# --------------------------------------------------------------------------------------------
# /api/v1/applications (driver UI, History Server), /api/v1/version
# --------------------------------------------------------------------------------------------


def parse_application(
    data: Any, *, source: str, fetched_at: float, ui_url: str | None = None,
    via: str = "ui", ctx: str = "application",
) -> SparkApp:
    """One entry of `/api/v1/applications` (or `/applications/{id}`): the latest attempt is used."""
    app = _obj(data, source, ctx)
    app_id = _req_str(app, "id", source, ctx)
    ctx = f"{ctx}[{app_id}]"
    name = _str(app, "name", source, ctx) or ""
    attempts = _list(app.get("attempts") or [], source, f"{ctx}.attempts")
    att: dict = {}
    if attempts:
        # Spark lists attempts newest first.
        att = _obj(attempts[0], source, f"{ctx}.attempts[0]")
    actx = f"{ctx}.attempts[0]"
    start = _time(att, "startTimeEpoch", source, actx) if "startTimeEpoch" in att \
        else _time(att, "startTime", source, actx)
    end = _time(att, "endTimeEpoch", source, actx) if "endTimeEpoch" in att \
        else _time(att, "endTime", source, actx)
    last = _time(att, "lastUpdatedEpoch", source, actx) if "lastUpdatedEpoch" in att \
        else _time(att, "lastUpdated", source, actx)
    completed = att.get("completed", False)
    if not isinstance(completed, bool):
        raise SparkParseError(source, f"{actx}.completed: expected true/false, got {completed!r}")
    attempt_id = att.get("attemptId")
    return SparkApp(
        id=app_id,
        name=name,
        ui_url=ui_url,
        attempt=None if attempt_id is None else str(attempt_id),
        start_time=start,
        end_time=end if completed else None,
        spark_version=_str(att, "appSparkVersion", source, actx),
        completed=completed,
        fetched_at=fetched_at,
        user=_str(att, "sparkUser", source, actx),
        last_updated=last,
        discovered_via=via,
    )


def parse_applications(
    data: Any, *, source: str, fetched_at: float, ui_url: str | None = None, via: str = "ui",
) -> tuple[SparkApp, ...]:
    """`/api/v1/applications` -> apps. A driver UI lists exactly its own app; a History Server
    lists many (`ui_url` is then left None: the collector derives `/history/{id}` per app)."""
    items = _list(data, source, "applications")
    return tuple(
        parse_application(item, source=source, fetched_at=fetched_at, ui_url=ui_url, via=via,
                          ctx=f"applications[{i}]")
        for i, item in enumerate(items)
    )


def parse_version(data: Any, *, source: str) -> str:
    """`/api/v1/version` -> "4.3.0"."""
    return _req_str(_obj(data, source, "version"), "spark", source, "version")


# --------------------------------------------------------------------------------------------
# /jobs, /stages, /executors
# --------------------------------------------------------------------------------------------


def parse_jobs(data: Any, *, source: str, fetched_at: float, filtered: bool = False) -> JobSummary:
    """`/applications/{id}/jobs[?status=...]` -> counts by status and the failed jobs.

    `filtered=True` means the request asked only for some statuses (running + failed), so the
    number of succeeded jobs is unknown (None) rather than 0.
    """
    jobs = _list(data, source, "jobs")
    active = failed = succeeded = 0
    failed_jobs: list[FailedJob] = []
    for i, raw in enumerate(jobs):
        ctx = f"jobs[{i}]"
        job = _obj(raw, source, ctx)
        job_id = _req_int(job, "jobId", source, ctx)
        status = _req_str(job, "status", source, ctx).upper()
        if status == "RUNNING":
            active += 1
        elif status == "SUCCEEDED":
            succeeded += 1
        elif status == "FAILED":
            failed += 1
            failed_jobs.append(FailedJob(
                job_id=job_id,
                name=_str(job, "name", source, ctx) or "",
                description=_str(job, "description", source, ctx),
                submission_time=_time(job, "submissionTime", source, ctx),
                completion_time=_time(job, "completionTime", source, ctx),
                failed_tasks=_int(job, "numFailedTasks", source, ctx, 0),
                failed_stages=_int(job, "numFailedStages", source, ctx, 0),
            ))
    failed_jobs.sort(key=lambda j: j.job_id)
    return JobSummary(
        active=active,
        failed=failed,
        succeeded=None if filtered else succeeded,
        failed_jobs=tuple(failed_jobs),
        fetched_at=fetched_at,
    )


def parse_stages(data: Any, *, source: str, fetched_at: float) -> StageSummary:
    """`/applications/{id}/stages[?status=FAILED]` -> failed stages and failed task count."""
    stages = _list(data, source, "stages")
    failed: list[FailedStage] = []
    failed_tasks = active = 0
    for i, raw in enumerate(stages):
        ctx = f"stages[{i}]"
        st = _obj(raw, source, ctx)
        stage_id = _req_int(st, "stageId", source, ctx)
        status = _req_str(st, "status", source, ctx).upper()
        n_failed = _int(st, "numFailedTasks", source, ctx, 0)
        failed_tasks += n_failed
        if status == "ACTIVE":
            active += 1
        elif status == "FAILED":
            failed.append(FailedStage(
                stage_id=stage_id,
                attempt_id=_int(st, "attemptId", source, ctx, 0),
                name=_str(st, "name", source, ctx) or "",
                failure_reason=clip_error(_str(st, "failureReason", source, ctx)),
                failed_tasks=n_failed,
                submission_time=_time(st, "submissionTime", source, ctx),
                completion_time=_time(st, "completionTime", source, ctx),
            ))
    failed.sort(key=lambda s: (s.stage_id, s.attempt_id))
    return StageSummary(failed_stages=tuple(failed), failed_tasks=failed_tasks, active=active,
                        fetched_at=fetched_at)


def parse_executors(data: Any, *, source: str, fetched_at: float) -> tuple[Executor, ...]:
    """`/applications/{id}/executors` or `/allexecutors` (the latter includes dead ones)."""
    items = _list(data, source, "executors")
    out = []
    for i, raw in enumerate(items):
        ctx = f"executors[{i}]"
        ex = _obj(raw, source, ctx)
        ex_id = ex.get("id")
        if ex_id is None or ex_id == "":
            raise SparkParseError(source, f"{ctx}: missing 'id'")
        peak = ex.get("peakMemoryMetrics")
        peak_heap = None
        if isinstance(peak, dict):
            peak_heap = _int(peak, "JVMHeapMemory", source, f"{ctx}.peakMemoryMetrics")
        active = ex.get("isActive", True)
        if not isinstance(active, bool):
            raise SparkParseError(source, f"{ctx}.isActive: expected true/false, got {active!r}")
        out.append(Executor(
            id=str(ex_id),
            host_port=_str(ex, "hostPort", source, ctx),
            active=active,
            memory_used_bytes=_int(ex, "memoryUsed", source, ctx, 0),
            max_memory_bytes=_int(ex, "maxMemory", source, ctx, 0),
            disk_used_bytes=_int(ex, "diskUsed", source, ctx, 0),
            total_gc_time_ms=_int(ex, "totalGCTime", source, ctx, 0),
            failed_tasks=_int(ex, "failedTasks", source, ctx, 0),
            active_tasks=_int(ex, "activeTasks", source, ctx, 0),
            completed_tasks=_int(ex, "completedTasks", source, ctx, 0),
            total_tasks=_int(ex, "totalTasks", source, ctx, 0),
            total_cores=_int(ex, "totalCores", source, ctx, 0),
            max_tasks=_int(ex, "maxTasks", source, ctx, 0),
            total_duration_ms=_int(ex, "totalDuration", source, ctx, 0),
            fetched_at=fetched_at,
            add_time=_time(ex, "addTime", source, ctx),
            remove_time=_time(ex, "removeTime", source, ctx),
            remove_reason=_str(ex, "removeReason", source, ctx),
            peak_jvm_heap_bytes=peak_heap,
            excluded=bool(ex.get("isExcluded", ex.get("isBlacklisted", False))),
        ))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# /sql?details=false: one execution (or more) per micro-batch
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchDescription:
    """What a micro-batch's job description says: `<name>\\nid = <id>\\nrunId = <run>\\nbatch = N`."""

    name: str | None  # None for unnamed queries
    query_id: str
    run_id: str
    batch_id: int | None  # None for "batch = init" (work before the first batch)


_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DESC_RE = re.compile(
    r"(?:^|\n)[ \t]*id[ \t]*=[ \t]*(?P<id>" + _UUID + r")[ \t]*\r?\n"
    r"[ \t]*runId[ \t]*=[ \t]*(?P<run>" + _UUID + r")[ \t]*\r?\n"
    r"[ \t]*batch[ \t]*=[ \t]*(?P<batch>\d+|init)[ \t]*(?:\r?\n|$)"
)


def parse_batch_description(description: Any) -> BatchDescription | None:
    """Parse a Structured Streaming batch description; None if it is not one."""
    if not isinstance(description, str) or "runId" not in description:
        return None
    m = _DESC_RE.search(description)
    if not m:
        return None
    name = description[: m.start()].strip() or None
    batch = m.group("batch")
    return BatchDescription(
        name=name,
        query_id=m.group("id").lower(),
        run_id=m.group("run").lower(),
        batch_id=None if batch == "init" else int(batch),
    )


def parse_sql(
    data: Any, *, source: str, fetched_at: float, max_batches: int = 50,
) -> tuple[StreamingQuery, ...]:
    """`/applications/{id}/sql?details=false` -> one partial StreamingQuery per query id.

    Executions are grouped by (query id, run id, batch id); a batch spans its executions
    (Spark runs a nested execution inside each batch, foreachBatch adds more). Non-streaming
    executions are ignored. State is FAILED when the latest batch failed (a failed batch stops a
    query); TERMINATED when it was interrupted (what `query.stop()` does to a running batch:
    Spark marks it FAILED with `java.lang.InterruptedException`; its status here is
    INTERRUPTED); UNKNOWN otherwise: the SQL listing cannot tell an active query from an idle one.
    """
    items = _list(data, source, "SQL executions")
    # (query, run, batch) -> [start_ms, end_ms, statuses, error]
    groups: dict[tuple[str, str, int], list] = {}
    names: dict[str, str | None] = {}
    for i, raw in enumerate(items):
        ctx = f"sql[{i}]"
        ex = _obj(raw, source, ctx)
        desc = parse_batch_description(ex.get("description"))
        if desc is None or desc.batch_id is None:
            continue
        sub = _time(ex, "submissionTime", source, ctx)
        if sub is None:
            continue
        start_ms = round(sub * 1000)
        duration = _int(ex, "duration", source, ctx, 0) or 0
        status = (_str(ex, "status", source, ctx) or "UNKNOWN").upper()
        err = _str(ex, "errorMessage", source, ctx) or None
        if status == "FAILED" and is_interruption(err):
            status = "INTERRUPTED"
        key = (desc.query_id, desc.run_id, desc.batch_id)
        g = groups.get(key)
        if g is None:
            groups[key] = [start_ms, start_ms + duration, {status}, err if status == "FAILED" else None]
        else:
            g[0] = min(g[0], start_ms)
            g[1] = max(g[1], start_ms + duration)
            g[2].add(status)
            if status == "FAILED":
                g[3] = g[3] or err
        if desc.name is not None or desc.query_id not in names:
            names[desc.query_id] = desc.name

    per_query: dict[str, list[BatchProgress]] = defaultdict(list)
    for (qid, run, bid), (start_ms, end_ms, statuses, err) in groups.items():
        status = next((st for st in ("FAILED", "INTERRUPTED", "RUNNING") if st in statuses),
                      "COMPLETED")
        per_query[qid].append(BatchProgress(
            batch_id=bid, run_id=run, origin="sql", received_at=fetched_at,
            timestamp=start_ms / 1000.0, duration_ms=end_ms - start_ms,
            status=status, error=clip_error(err) if status == "FAILED" else None,
        ))

    out = []
    for qid, batches in per_query.items():
        batches.sort(key=lambda b: (b.timestamp, b.batch_id))
        batches = batches[-max_batches:] if max_batches > 0 else batches
        last = batches[-1]
        state = {"FAILED": QueryState.FAILED, "INTERRUPTED": QueryState.TERMINATED}.get(
            last.status, QueryState.UNKNOWN)
        out.append(StreamingQuery(
            id=qid, name=names.get(qid), run_id=last.run_id, state=state,
            exception=last.error if state == QueryState.FAILED else None,
            last_batch_id=last.batch_id, batches=tuple(batches), updated_at=fetched_at,
            state_source=None if state == QueryState.UNKNOWN else "sql",
        ))
    out.sort(key=lambda q: (q.name or "", q.id or ""))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# /metrics/json/ (driver MetricsServlet)
# --------------------------------------------------------------------------------------------

_QUERY_GAUGES = {
    "inputRate-total": "input_rate",
    "processingRate-total": "processing_rate",
    "latency": "latency_ms",
    "eventTime-watermark": "watermark",
    "states-rowsTotal": "state_rows_total",
    "states-usedBytes": "state_used_bytes",
}
_DRIVER_GAUGES = {
    "DAGScheduler.job.activeJobs": "active_jobs",
    "DAGScheduler.job.allJobs": "all_jobs",
    "DAGScheduler.stage.runningStages": "running_stages",
    "DAGScheduler.stage.waitingStages": "waiting_stages",
    "DAGScheduler.stage.failedStages": "failed_stages",
    "ExecutorMetrics.JVMHeapMemory": "jvm_heap_bytes",
}
_DRIVER_COUNTERS = {
    "appStatus.jobs.succeededJobs": "jobs_succeeded_total",
    "appStatus.jobs.failedJobs": "jobs_failed_total",
    "appStatus.stages.completedStages": "stages_completed_total",
    "appStatus.stages.failedStages": "stages_failed_total",
    "appStatus.tasks.completedTasks": "tasks_completed_total",
    "appStatus.tasks.failedTasks": "tasks_failed_total",
    "appStatus.tasks.killedTasks": "tasks_killed_total",
}
_STREAMING_PREFIX = "spark.streaming."
_DRIVER_MARK = ".driver."


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return None if math.isnan(f) or math.isinf(f) else f


def parse_metrics_json(data: Any, *, source: str, fetched_at: float) -> DriverMetrics:
    """`/metrics/json/` of a driver -> selected driver metrics and per-query streaming gauges.

    Metric names are `<namespace>.driver.<source>.<name>`; the namespace is the app id unless
    `spark.metrics.namespace` is set. Streaming query gauges are
    `<namespace>.driver.spark.streaming.<query name or id>.<gauge>` (query names may contain dots;
    gauge names do not).
    """
    root = _obj(data, source, "metrics")
    if "gauges" not in root and "counters" not in root:
        raise SparkParseError(source, "not a metrics servlet response (no 'gauges' or 'counters')")
    gauges = _obj({} if root.get("gauges") is None else root["gauges"], source, "metrics.gauges")
    counters = _obj({} if root.get("counters") is None else root["counters"], source,
                    "metrics.counters")

    ns_count: dict[str, int] = defaultdict(int)
    for key in list(gauges) + list(counters):
        if _DRIVER_MARK in key:
            ns_count[key.split(_DRIVER_MARK, 1)[0]] += 1
    if not ns_count:
        raise SparkParseError(source, "no driver metrics (no '<namespace>.driver.' names)")
    namespace = max(ns_count.items(), key=lambda kv: kv[1])[0]
    prefix = namespace + _DRIVER_MARK

    fields: dict[str, Any] = {}
    per_query: dict[str, dict[str, Any]] = defaultdict(dict)
    dropped = None
    for key, entry in gauges.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        value = _num(entry.get("value")) if isinstance(entry, dict) else None
        if rest in _DRIVER_GAUGES:
            if value is not None:
                fields[_DRIVER_GAUGES[rest]] = int(value)
        elif rest.startswith(_STREAMING_PREFIX) and "." in rest[len(_STREAMING_PREFIX):]:
            query, gauge = rest[len(_STREAMING_PREFIX):].rsplit(".", 1)
            if gauge in _QUERY_GAUGES:
                per_query[query][_QUERY_GAUGES[gauge]] = value
    for key, entry in counters.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        value = _num(entry.get("count")) if isinstance(entry, dict) else None
        if value is None:
            continue
        if rest in _DRIVER_COUNTERS:
            fields[_DRIVER_COUNTERS[rest]] = int(value)
        elif rest.startswith("LiveListenerBus.queue.") and rest.endswith(".numDroppedEvents"):
            dropped = (dropped or 0) + int(value)

    queries = []
    for query, vals in sorted(per_query.items()):
        wm = vals.get("watermark")
        queries.append(QueryGauges(
            query=query,
            fetched_at=fetched_at,
            input_rate=vals.get("input_rate"),
            processing_rate=vals.get("processing_rate"),
            latency_ms=vals.get("latency_ms"),
            watermark=wm / 1000.0 if wm else None,
            state_rows_total=None if vals.get("state_rows_total") is None
            else int(vals["state_rows_total"]),
            state_used_bytes=None if vals.get("state_used_bytes") is None
            else int(vals["state_used_bytes"]),
        ))
    return DriverMetrics(namespace=namespace, fetched_at=fetched_at,
                         listener_events_dropped_total=dropped, queries=tuple(queries), **fields)


# --------------------------------------------------------------------------------------------
# /metrics/prometheus/ (PrometheusServlet, optional)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromSample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


_PROM_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)"
                        r"(?:\s+\d+)?\s*$")
_PROM_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_prometheus_text(text: str, *, source: str) -> tuple[PromSample, ...]:
    """Prometheus text exposition (as Spark's PrometheusServlet writes it) -> samples."""
    if not isinstance(text, str):
        raise SparkParseError(source, f"expected text, got {type(text).__name__}")
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _PROM_LINE.match(line)
        if not m:
            raise SparkParseError(source, f"line {lineno}: not a Prometheus sample: {line[:80]!r}")
        labels = []
        if m.group("labels"):
            pos, s = 0, m.group("labels")
            while pos < len(s):
                lm = _PROM_LABEL.match(s, pos)
                if not lm:
                    raise SparkParseError(source, f"line {lineno}: bad labels {s[:80]!r}")
                labels.append((lm.group(1), lm.group(2).replace('\\"', '"').replace("\\\\", "\\")))
                pos = lm.end()
        try:
            value = float(m.group("value"))
        except ValueError:
            raise SparkParseError(source, f"line {lineno}: bad value {m.group('value')!r}") from None
        out.append(PromSample(m.group("name"), tuple(labels), value))
    return tuple(out)


_PROM_QUERY = re.compile(
    r"^metrics_(?P<ns>.+?)_driver_spark_streaming_(?P<query>.+)_(?P<gauge>eventTime_watermark|"
    r"inputRate_total|latency|processingRate_total|states_rowsTotal|states_usedBytes)_Value$"
)


def query_gauges_from_prometheus(
    samples: Iterable[PromSample], *, fetched_at: float,
) -> tuple[QueryGauges, ...]:
    """Streaming query gauges from PrometheusServlet samples.

    The servlet replaces every non-alphanumeric character of the query name with `_`, so the
    `query` here may differ from the real name; prefer `/metrics/json/`.
    """
    per_query: dict[str, dict[str, float]] = defaultdict(dict)
    for s in samples:
        m = _PROM_QUERY.match(s.name)
        if m:
            per_query[m.group("query")][m.group("gauge")] = s.value
    out = []
    for q, v in sorted(per_query.items()):
        wm = v.get("eventTime_watermark")
        out.append(QueryGauges(
            query=q, fetched_at=fetched_at,
            input_rate=v.get("inputRate_total"),
            processing_rate=v.get("processingRate_total"),
            latency_ms=v.get("latency"),
            watermark=wm / 1000.0 if wm else None,
            state_rows_total=None if "states_rowsTotal" not in v else int(v["states_rowsTotal"]),
            state_used_bytes=None if "states_usedBytes" not in v else int(v["states_usedBytes"]),
        ))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# DStream: /streaming/statistics, /streaming/batches, /streaming/receivers
# --------------------------------------------------------------------------------------------


def is_not_dstream_response(http_status: int | None, body: str | None = None) -> bool:
    """A 404 from `/streaming/*` means "this app has no StreamingContext" (Structured Streaming
    apps, History Server apps): not an error. Spark answers "no streaming listener attached to
    <app>" (driver) or a plain 404."""
    return http_status == 404


def parse_streaming_statistics(data: Any, *, source: str, fetched_at: float) -> DStreamStats:
    st = _obj(data, source, "streaming statistics")
    ctx = "statistics"
    if "batchDuration" not in st:
        raise SparkParseError(source, f"{ctx}: missing 'batchDuration'")
    return DStreamStats(
        start_time=_time(st, "startTime", source, ctx),
        batch_duration_ms=_req_int(st, "batchDuration", source, ctx),
        num_receivers=_int(st, "numReceivers", source, ctx, 0),
        num_active_receivers=_int(st, "numActiveReceivers", source, ctx, 0),
        num_inactive_receivers=_int(st, "numInactiveReceivers", source, ctx, 0),
        total_completed_batches=_int(st, "numTotalCompletedBatches", source, ctx, 0),
        retained_completed_batches=_int(st, "numRetainedCompletedBatches", source, ctx, 0),
        active_batches=_int(st, "numActiveBatches", source, ctx, 0),
        processed_records=_int(st, "numProcessedRecords", source, ctx, 0),
        received_records=_int(st, "numReceivedRecords", source, ctx, 0),
        avg_input_rate=_float(st, "avgInputRate", source, ctx),
        avg_scheduling_delay_ms=_float(st, "avgSchedulingDelay", source, ctx),
        avg_processing_time_ms=_float(st, "avgProcessingTime", source, ctx),
        avg_total_delay_ms=_float(st, "avgTotalDelay", source, ctx),
        fetched_at=fetched_at,
    )


def parse_streaming_batches(data: Any, *, source: str) -> tuple[DStreamBatch, ...]:
    items = _list(data, source, "streaming batches")
    out = []
    for i, raw in enumerate(items):
        ctx = f"batches[{i}]"
        b = _obj(raw, source, ctx)
        out.append(DStreamBatch(
            batch_id=_req_int(b, "batchId", source, ctx),
            batch_time=_time(b, "batchTime", source, ctx),
            status=(_str(b, "status", source, ctx) or "UNKNOWN").upper(),
            input_size=_int(b, "inputSize", source, ctx, 0),
            scheduling_delay_ms=_int(b, "schedulingDelay", source, ctx),
            processing_time_ms=_int(b, "processingTime", source, ctx),
            total_delay_ms=_int(b, "totalDelay", source, ctx),
            num_active_output_ops=_int(b, "numActiveOutputOps", source, ctx, 0),
            num_completed_output_ops=_int(b, "numCompletedOutputOps", source, ctx, 0),
            num_failed_output_ops=_int(b, "numFailedOutputOps", source, ctx, 0),
            num_total_output_ops=_int(b, "numTotalOutputOps", source, ctx, 0),
            first_failure_reason=_str(b, "firstFailureReason", source, ctx),
        ))
    out.sort(key=lambda b: b.batch_id, reverse=True)
    return tuple(out)


def parse_streaming_receivers(data: Any, *, source: str) -> tuple[DStreamReceiver, ...]:
    items = _list(data, source, "streaming receivers")
    out = []
    for i, raw in enumerate(items):
        ctx = f"receivers[{i}]"
        r = _obj(raw, source, ctx)
        active = r.get("isActive")
        out.append(DStreamReceiver(
            stream_id=_req_int(r, "streamId", source, ctx),
            name=_str(r, "streamName", source, ctx) or "",
            active=active if isinstance(active, bool) else None,
            executor_id=_str(r, "executorId", source, ctx),
            executor_host=_str(r, "executorHost", source, ctx),
            avg_event_rate=_float(r, "avgEventRate", source, ctx),
            last_error=_str(r, "lastError", source, ctx) or _str(r, "lastErrorMessage", source, ctx),
            last_error_time=_time(r, "lastErrorTime", source, ctx),
        ))
    out.sort(key=lambda r: r.stream_id)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# /StreamingQuery/ UI page (HTML): state of every query run, with no metrics or listener needed
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UiQueryRow:
    name: str | None
    status: str  # RUNNING | FINISHED | FAILED (as the page shows it)
    query_id: str
    run_id: str
    start_time_text: str | None  # driver-local time as displayed; only used for ordering
    avg_input_rate: float | None
    avg_process_rate: float | None
    latest_batch: int | None
    error: str | None
    active: bool  # from the "active" table (else the "completed" table)


class _TableParser(HTMLParser):
    def __init__(self, table_ids: tuple[str, ...]):
        super().__init__(convert_charrefs=True)
        self.table_ids = table_ids
        self.tables: dict[str, tuple[list[str], list[list[str]]]] = {}
        self._table: str | None = None
        self._depth = 0
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            if self._table is not None:
                self._depth += 1
                return
            tid = dict(attrs).get("id")
            if tid in self.table_ids:
                self._table, self._depth = tid, 0
                self.tables[tid] = ([], [])
        elif self._table is None:
            return
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if self._table is None:
            return
        if tag == "table":
            if self._depth:
                self._depth -= 1
            else:
                self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            heads, rows = self.tables[self._table]
            if tag == "th":
                heads.append(text)
            elif self._row is not None:
                self._row.append(text)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.tables[self._table][1].append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


_UI_COLUMNS = ("name", "status", "id", "run id", "start time", "duration", "avg input /sec",
               "avg process /sec", "latest batch", "error")


def _ui_column(header: str) -> str | None:
    h = " ".join(re.sub(r"[^a-z0-9/ ]", " ", header.lower()).split())
    for col in _UI_COLUMNS:
        if h == col or h.startswith(col + " "):
            return col
    return None


def _ui_float(text: str | None) -> float | None:
    if not text:
        return None
    try:
        f = float(text.replace(",", ""))
    except ValueError:
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def parse_streaming_ui_html(html: str, *, source: str) -> tuple[UiQueryRow, ...]:
    """The Structured Streaming tab (`/StreamingQuery/`): active and completed query runs.

    Raises SparkParseError when the page has none of the expected tables and does not say
    there are no queries (i.e. it is not that page).
    """
    if not isinstance(html, str):
        raise SparkParseError(source, f"expected HTML text, got {type(html).__name__}")
    p = _TableParser(("active-table", "completed-table"))
    try:
        p.feed(html)
        p.close()
    except Exception as e:  # HTMLParser is lenient; this is belt and braces
        raise SparkParseError(source, f"unparseable HTML: {e}") from None
    if not p.tables:
        if "Streaming Quer" in html:
            return ()  # the page, with no queries yet
        raise SparkParseError(source, "not the Structured Streaming page (no query tables)")
    out = []
    for tid, (heads, rows) in p.tables.items():
        cols = [_ui_column(h) for h in heads]
        if "id" not in cols or "run id" not in cols:
            raise SparkParseError(source, f"{tid}: unexpected columns {heads!r}")
        for r_i, row in enumerate(rows):
            cells = dict(zip(cols, row))
            qid, run = cells.get("id", ""), cells.get("run id", "")
            if not re.fullmatch(_UUID, qid or "") or not re.fullmatch(_UUID, run or ""):
                raise SparkParseError(source, f"{tid} row {r_i}: bad query/run id {qid!r}/{run!r}")
            latest = cells.get("latest batch")
            err = (cells.get("error") or "").split(" +details", 1)[0].strip()
            out.append(UiQueryRow(
                name=cells.get("name") or None,
                status=(cells.get("status") or "").upper(),
                query_id=qid.lower(),
                run_id=run.lower(),
                start_time_text=cells.get("start time") or None,
                avg_input_rate=_ui_float(cells.get("avg input /sec")),
                avg_process_rate=_ui_float(cells.get("avg process /sec")),
                latest_batch=int(latest) if latest and latest.isdigit() else None,
                error=None if not err or err == "-" else clip_error(err),
                active=tid == "active-table",
            ))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Progress JSON (StreamingQueryListener / query.lastProgress / recentProgress / progress.json)
# --------------------------------------------------------------------------------------------


def _offsets(value: Any) -> tuple[str | None, tuple[PartitionOffset, ...]]:
    """A source offset as Spark reports it -> (raw JSON text, Kafka partitions if Kafka-shaped)."""
    if value is None:
        return None, ()
    if isinstance(value, str):
        raw = value
        try:
            value = json.loads(value)
        except ValueError:
            return raw, ()
    else:
        raw = json.dumps(value, sort_keys=True, separators=(",", ":"))
    parts = []
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        for topic, pmap in value.items():
            for p, off in pmap.items():
                if isinstance(off, bool):
                    return raw, ()
                try:
                    parts.append(PartitionOffset(str(topic), int(p), int(off)))
                except (TypeError, ValueError):
                    return raw, ()
    parts.sort(key=lambda po: (po.topic, po.partition))
    return raw, tuple(parts)


_DURATION_FIELDS = {
    "addBatch": "add_batch_ms",
    "getBatch": "get_batch_ms",
    "latestOffset": "latest_offset_ms",
    "queryPlanning": "query_planning_ms",
    "walCommit": "wal_commit_ms",
    "commitOffsets": "commit_offsets_ms",
    "triggerExecution": "trigger_execution_ms",
}


def parse_progress(data: Any, *, source: str, received_at: float) -> tuple[str, str | None, BatchProgress]:
    """One `StreamingQueryProgress` JSON object -> (query id, query name, BatchProgress)."""
    p = _obj(data, source, "progress")
    ctx = "progress"
    qid = _req_str(p, "id", source, ctx).lower()
    run = _req_str(p, "runId", source, ctx).lower()
    name = _str(p, "name", source, ctx) or None
    batch_id = _req_int(p, "batchId", source, ctx)
    ctx = f"progress[{name or qid} batch {batch_id}]"

    durations = None
    dm = p.get("durationMs")
    if dm is not None:
        dm = _obj(dm, source, f"{ctx}.durationMs")
        known, other = {}, []
        for k in dm:
            v = _int(dm, k, source, f"{ctx}.durationMs")
            if v is None:
                continue
            if k in _DURATION_FIELDS:
                known[_DURATION_FIELDS[k]] = v
            else:
                other.append((k, v))
        durations = TriggerDurations(other=tuple(sorted(other)), **known)

    et = _obj(p.get("eventTime") or {}, source, f"{ctx}.eventTime")
    watermark = _time(et, "watermark", source, f"{ctx}.eventTime")
    if watermark == 0.0:
        watermark = None  # "1970-01-01T00:00:00.000Z": no watermark yet

    ops = []
    for i, raw in enumerate(_list(p.get("stateOperators") or [], source, f"{ctx}.stateOperators")):
        octx = f"{ctx}.stateOperators[{i}]"
        op = _obj(raw, source, octx)
        ops.append(StateOperatorProgress(
            operator_name=_str(op, "operatorName", source, octx) or "",
            num_rows_total=_int(op, "numRowsTotal", source, octx, 0),
            num_rows_updated=_int(op, "numRowsUpdated", source, octx, 0),
            memory_used_bytes=_int(op, "memoryUsedBytes", source, octx, 0),
            num_rows_dropped_by_watermark=_int(op, "numRowsDroppedByWatermark", source, octx, 0),
        ))

    sources = []
    for i, raw in enumerate(_list(p.get("sources") or [], source, f"{ctx}.sources")):
        sctx = f"{ctx}.sources[{i}]"
        s = _obj(raw, source, sctx)
        start_raw, start = _offsets(s.get("startOffset"))
        end_raw, end = _offsets(s.get("endOffset"))
        latest_raw, latest = _offsets(s.get("latestOffset"))
        metrics = s.get("metrics")
        metrics = _obj(metrics, source, f"{sctx}.metrics") if metrics is not None else {}
        sources.append(SourceProgress(
            description=_str(s, "description", source, sctx) or "",
            start_offset=start_raw, end_offset=end_raw, latest_offset=latest_raw,
            start_offsets=start, end_offsets=end, latest_offsets=latest,
            num_input_rows=_int(s, "numInputRows", source, sctx),
            input_rows_per_second=_float(s, "inputRowsPerSecond", source, sctx),
            processed_rows_per_second=_float(s, "processedRowsPerSecond", source, sctx),
            min_offsets_behind_latest=_float(metrics, "minOffsetsBehindLatest", source, f"{sctx}.metrics"),
            avg_offsets_behind_latest=_float(metrics, "avgOffsetsBehindLatest", source, f"{sctx}.metrics"),
            max_offsets_behind_latest=_float(metrics, "maxOffsetsBehindLatest", source, f"{sctx}.metrics"),
        ))

    sink = p.get("sink")
    sink = _obj(sink, source, f"{ctx}.sink") if sink is not None else {}
    duration = _int(p, "batchDuration", source, ctx)
    if duration is None and durations is not None:
        duration = durations.trigger_execution_ms
    batch = BatchProgress(
        batch_id=batch_id,
        run_id=run,
        origin="listener",
        received_at=received_at,
        timestamp=_time(p, "timestamp", source, ctx),
        duration_ms=duration,
        durations=durations,
        num_input_rows=_int(p, "numInputRows", source, ctx),
        input_rows_per_second=_float(p, "inputRowsPerSecond", source, ctx),
        processed_rows_per_second=_float(p, "processedRowsPerSecond", source, ctx),
        watermark=watermark,
        event_time_min=_time(et, "min", source, f"{ctx}.eventTime"),
        event_time_avg=_time(et, "avg", source, f"{ctx}.eventTime"),
        event_time_max=_time(et, "max", source, f"{ctx}.eventTime"),
        state_operators=tuple(ops),
        sources=tuple(sources),
        sink_description=_str(sink, "description", source, f"{ctx}.sink"),
        sink_output_rows=_int(sink, "numOutputRows", source, f"{ctx}.sink"),
    )
    return qid, name, batch


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """A StreamingQueryListener event, normalised."""

    kind: str  # started | progress | idle | terminated
    query_id: str
    run_id: str | None
    name: str | None
    received_at: float
    timestamp: float | None = None  # event time as Spark stamped it (started/progress/idle)
    app_id: str | None = None
    app_name: str | None = None
    batch: BatchProgress | None = None  # progress only
    exception: str | None = None  # terminated only
    error_class: str | None = None


def _event_kind(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    k = raw.lower()
    for kind in ("started", "progress", "idle", "terminated"):
        if kind[:5] in k:  # "QueryStartedEvent", "started", "QueryTerminatedEvent", ...
            return kind
    return None


def parse_progress_event(data: Any, *, source: str, received_at: float) -> ProgressEvent:
    """One item of the progress feed.

    Accepted shapes:
    - an envelope `{"event": "started"|"progress"|"idle"|"terminated", "payload": {...},
      "wall": <unix s>, "app_id": ..., "app_name": ..., "query_name": ...,
      "sink": {"topics": [...]}}` (what `collectors.spark_listener.envelope` publishes;
      camelCase `appId`/`appName` and `type`/`progress` are accepted as alternative keys);
    - a bare `progress.json` object (has `batchId`) -> progress;
    - a bare terminated event `{"id", "runId", "exception"}`; a bare started event
      `{"id", "runId", "name", "timestamp"}`.
    `received_at` is used unless the envelope says when it was received (`wall`/`received_at`).
    """
    obj = _obj(data, source, "progress event")
    kind = _event_kind(obj.get("event", obj.get("type")))
    payload = obj.get("payload", obj.get("progress"))
    app_id = obj.get("app_id", obj.get("appId"))
    app_name = obj.get("app_name", obj.get("appName"))
    env_name = obj.get("query_name") if payload is not None else None
    wall = obj.get("wall", obj.get("received_at"))
    if kind is not None or payload is not None:
        if kind is None:
            raise SparkParseError(
                source, f"progress event: unknown event type {obj.get('event', obj.get('type'))!r}")
        payload = _obj(payload, source, f"{kind} event payload")
    else:
        payload = obj
        if "batchId" in obj:
            kind = "progress"
        elif "exception" in obj or "errorClassOnException" in obj:
            kind = "terminated"
        else:
            kind = "started"
    if isinstance(wall, (int, float)) and not isinstance(wall, bool):
        received_at = float(wall)
    app_id = app_id if isinstance(app_id, str) and app_id else None
    app_name = app_name if isinstance(app_name, str) and app_name else None

    if kind == "progress":
        qid, name, batch = parse_progress(payload, source=source, received_at=received_at)
        # the listener's envelope names the Kafka sink's topics (a bare progress' own "sink"
        # is Spark's {"description", "numOutputRows"}, read by parse_progress)
        listener_sink = obj.get("sink") if payload is not obj else None
        if isinstance(listener_sink, Mapping):
            batch = replace(batch, sink_topics=valid_topics(listener_sink.get("topics")))
        return ProgressEvent(kind=kind, query_id=qid, run_id=batch.run_id, name=name,
                             received_at=received_at, timestamp=batch.timestamp, app_id=app_id,
                             app_name=app_name, batch=batch)
    ctx = f"{kind} event"
    qid = _req_str(payload, "id", source, ctx).lower()
    run = _str(payload, "runId", source, ctx)
    exc = payload.get("exception")
    return ProgressEvent(
        kind=kind, query_id=qid, run_id=run.lower() if run else None,
        name=_str(payload, "name", source, ctx) or (env_name if isinstance(env_name, str) and
                                                     env_name else None),
        received_at=received_at,
        timestamp=_time(payload, "timestamp", source, ctx),
        app_id=app_id, app_name=app_name,
        exception=clip_error(str(exc)) if exc not in (None, "") else None,
        error_class=_str(payload, "errorClassOnException", source, ctx),
    )


def parse_progress_lines(text: str, *, source: str, received_at: float) -> tuple[ProgressEvent, ...]:
    """JSON Lines of progress events (e.g. a file the listener wrote). Strict: a bad line raises."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        src = f"{source}:{lineno}"
        out.append(parse_progress_event(decode_json(line, src), source=src, received_at=received_at))
    return tuple(out)


def parse_recent_progress(data: Any, *, source: str, received_at: float) -> tuple[ProgressEvent, ...]:
    """`query.recentProgress` as a JSON list of progress objects."""
    items = _list(data, source, "progress objects")
    return tuple(parse_progress_event(item, source=f"{source}[{i}]", received_at=received_at)
                 for i, item in enumerate(items))


# --------------------------------------------------------------------------------------------
# Standalone master: /json/ and the index page (driver UI links)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MasterApp:
    id: str
    name: str
    state: str  # RUNNING, WAITING, FINISHED, KILLED, FAILED, UNKNOWN
    start_time: float | None
    cores: int | None
    user: str | None
    duration_ms: int | None
    active: bool


@dataclass(frozen=True, slots=True)
class MasterState:
    url: str | None  # spark://host:7077
    status: str | None  # ALIVE / STANDBY / ...
    alive_workers: int | None
    cores: int | None
    cores_used: int | None
    apps: tuple[MasterApp, ...]
    fetched_at: float


def parse_master_json(data: Any, *, source: str, fetched_at: float) -> MasterState:
    """Standalone master `/json/` -> its state and applications (active and completed).

    The master does not report driver UI URLs in JSON: see `parse_master_index_html`, or use
    the reverse proxy (`<master>/proxy/<app-id>/`).
    """
    m = _obj(data, source, "master state")
    if "activeapps" not in m and "workers" not in m:
        raise SparkParseError(source, "not a standalone master /json/ response (no 'activeapps')")
    apps = []
    for key, active in (("activeapps", True), ("completedapps", False)):
        for i, raw in enumerate(_list(m.get(key) or [], source, key)):
            ctx = f"{key}[{i}]"
            a = _obj(raw, source, ctx)
            apps.append(MasterApp(
                id=_req_str(a, "id", source, ctx),
                name=_str(a, "name", source, ctx) or "",
                state=(_str(a, "state", source, ctx) or "UNKNOWN").upper(),
                start_time=_time(a, "starttime", source, ctx),
                cores=_int(a, "cores", source, ctx),
                user=_str(a, "user", source, ctx),
                duration_ms=_int(a, "duration", source, ctx),
                active=active,
            ))
    return MasterState(
        url=_str(m, "url", source, "master"),
        status=_str(m, "status", source, "master"),
        alive_workers=_int(m, "aliveworkers", source, "master"),
        cores=_int(m, "cores", source, "master"),
        cores_used=_int(m, "coresused", source, "master"),
        apps=tuple(apps),
        fetched_at=fetched_at,
    )


class _RowLinks(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag == "a" and self._row is not None:
            href = dict(attrs).get("href")
            if href:
                self._row.append(href)

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None


_APP_ID_IN_HREF = re.compile(r"[?&]appId=([^&#]+)")


def parse_master_index_html(html: str, *, base_url: str, source: str) -> dict[str, str]:
    """The master's index page -> {app id: driver UI URL} for apps whose name is a link.

    Each application row links `app/?appId=<id>` and, when the driver UI is up, the app name to
    the driver UI (`http://driver:4040`, or `/proxy/<id>/` under `spark.ui.reverseProxy`);
    relative links are resolved against `base_url`.
    """
    if not isinstance(html, str):
        raise SparkParseError(source, f"expected HTML text, got {type(html).__name__}")
    p = _RowLinks()
    p.feed(html)
    p.close()
    out: dict[str, str] = {}
    for hrefs in p.rows:
        app_id = None
        for h in hrefs:
            m = _APP_ID_IN_HREF.search(h)
            if m and "app/" in h and "logPage" not in h:
                app_id = m.group(1)
                break
        if not app_id:
            continue
        for h in hrefs:
            if h.startswith("#") or h.lower().startswith("javascript") or "appId=" in h \
                    or "/kill" in h:
                continue
            out.setdefault(app_id, urljoin(base_url if base_url.endswith("/") else base_url + "/", h))
            break
    return out


# --------------------------------------------------------------------------------------------
# Merging (pure): combine what several sources said about the queries of one app
# --------------------------------------------------------------------------------------------


def _union_sql_span(old: BatchProgress, new: BatchProgress) -> BatchProgress:
    if None in (old.timestamp, new.timestamp, old.duration_ms, new.duration_ms):
        return new
    start = min(old.timestamp, new.timestamp)
    end = max(old.timestamp + old.duration_ms / 1000.0, new.timestamp + new.duration_ms / 1000.0)
    return replace(new, timestamp=start, duration_ms=round((end - start) * 1000))


def merge_batches(
    *groups: Iterable[BatchProgress], max_batches: int,
) -> tuple[BatchProgress, ...]:
    """Union of batch records keyed by (run id, batch id); listener records win over SQL ones.
    Oldest first, at most `max_batches`."""
    by_key: dict[tuple[str | None, int], BatchProgress] = {}
    for group in groups:
        for b in group:
            k = (b.run_id, b.batch_id)
            old = by_key.get(k)
            if old is not None and old.origin == b.origin == "sql" and b.received_at >= old.received_at:
                b = _union_sql_span(old, b)  # a listing tail may start inside a batch
            if old is None or (old.origin != "listener" and b.origin == "listener") or \
                    (old.origin == b.origin and b.received_at >= old.received_at):
                by_key[k] = b
    out = sorted(by_key.values(), key=lambda b: (b.timestamp or 0.0, b.batch_id))
    if max_batches > 0:
        out = out[-max_batches:]
    return tuple(out)


def estimate_trigger_interval_ms(batches: Iterable[BatchProgress], min_batches: int = 6) -> int | None:
    """Estimate a ProcessingTime trigger interval from batch start times.

    Spark fires such a trigger at epoch multiples of the interval, so the start times of the
    batches share one phase modulo the interval (listener timestamps within a few ms of it, SQL
    submission times a little later but consistently). Candidates are the (rounded) gaps
    between consecutive batches, smallest first; the first for which at least 3/4 of the start
    times sit near a common phase (2% of the interval for listener timestamps, 10% for SQL
    submission times) wins. Back-to-back batches (the default trigger), batches overrunning
    their interval (Spark then starts the next one at once), once/availableNow and fewer than
    `min_batches` batches give None.
    """
    bs = [b for b in batches if b.timestamp is not None and b.status != "RUNNING"]
    listener = [b for b in bs if b.origin == "listener"]
    precise = len(listener) >= min_batches
    if precise:
        bs = listener
    if len(bs) < min_batches:
        return None
    run = bs[-1].run_id
    ts = sorted({round(b.timestamp * 1000) for b in bs if b.run_id == run})
    if len(ts) < min_batches:
        return None
    gaps = [b - a for a, b in zip(ts, ts[1:]) if b - a >= 50]
    candidates = sorted({round(g, -1) if g < 1000 else round(g, -2) for g in gaps})
    for c in candidates[:8]:
        if c <= 0:
            continue
        tol = max(20.0, (0.02 if precise else 0.1) * c)
        phases = [t % c for t in ts]
        best = 0
        for ref in phases:
            near = sum(1 for p in phases if min(abs(p - ref), c - abs(p - ref)) <= tol)
            best = max(best, near)
        if best >= 0.75 * len(ts):
            return int(c)
    return None


def apply_gauges(
    queries: Iterable[StreamingQuery], gauges: Iterable[QueryGauges],
) -> tuple[StreamingQuery, ...]:
    """Attach metrics gauges to queries by name (or id for unnamed queries). Gauges exist only
    for active queries, so a match makes an UNKNOWN query ACTIVE. Gauges of queries that no other
    source knows become name-only queries."""
    qs = list(queries)
    for g in gauges:
        for i, q in enumerate(qs):
            if g.query in (q.name, q.id):
                state, src = q.state, q.state_source
                if state == QueryState.UNKNOWN:
                    state, src = QueryState.ACTIVE, "metrics"
                qs[i] = replace(q, gauges=g, state=state, state_source=src,
                                updated_at=max(q.updated_at, g.fetched_at))
                break
        else:
            qs.append(StreamingQuery(
                id=None, name=g.query, run_id=None, state=QueryState.ACTIVE, exception=None,
                last_batch_id=None, batches=(), updated_at=g.fetched_at, gauges=g,
                state_source="metrics",
            ))
    return tuple(qs)


def apply_ui_rows(
    queries: Iterable[StreamingQuery], rows: Iterable[UiQueryRow], *, fetched_at: float,
) -> tuple[StreamingQuery, ...]:
    """Apply the `/StreamingQuery/` page: for each query id the row of its current run (the
    active one, else the latest started) decides the state."""
    best: dict[str, UiQueryRow] = {}
    for r in rows:
        cur = best.get(r.query_id)
        if cur is None or (r.active, r.start_time_text or "") > (cur.active, cur.start_time_text or ""):
            best[r.query_id] = r
    qs = list(queries)
    seen = set()
    for i, q in enumerate(qs):
        r = best.get(q.id or "")
        if r is None:
            continue
        seen.add(r.query_id)
        qs[i] = _with_ui_row(q, r, fetched_at)
    for qid, r in best.items():
        if qid in seen:
            continue
        q = StreamingQuery(id=qid, name=r.name, run_id=r.run_id, state=QueryState.UNKNOWN,
                           exception=None, last_batch_id=r.latest_batch, batches=(),
                           updated_at=fetched_at)
        qs.append(_with_ui_row(q, r, fetched_at))
    return tuple(qs)


_UI_STATE = {"RUNNING": QueryState.ACTIVE, "FINISHED": QueryState.TERMINATED,
             "FAILED": QueryState.FAILED}


def _with_ui_row(q: StreamingQuery, r: UiQueryRow, fetched_at: float) -> StreamingQuery:
    state = _UI_STATE.get(r.status, QueryState.ACTIVE if r.active else QueryState.UNKNOWN)
    # A newer run seen in SQL than the page shows (page lag): keep what SQL says.
    if q.run_id and q.run_id != r.run_id and q.batches and \
            any(b.run_id == q.run_id for b in q.batches) and not r.active:
        return replace(q, ui_status=r.status, updated_at=max(q.updated_at, fetched_at))
    last = q.last_batch_id
    if r.latest_batch is not None and (last is None or r.latest_batch > last):
        last = r.latest_batch
    return replace(
        q, name=q.name or r.name, run_id=r.run_id, state=state,
        exception=(r.error or q.exception) if state == QueryState.FAILED else None,
        last_batch_id=last, ui_status=r.status, state_source="ui",
        updated_at=max(q.updated_at, fetched_at),
    )
