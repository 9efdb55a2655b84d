"""`/api/v1/applications` (driver UI, History Server), `/api/v1/version`, and an app's `/jobs`,
`/stages` and `/executors`."""
from __future__ import annotations

from typing import Any

from collectors.spark.models import Executor, FailedJob, FailedStage, JobSummary, SparkApp, StageSummary
from collectors.spark.parse.common import (
    SparkParseError, clip_error, optional_int, optional_str, optional_time, require_list, require_obj,
    required_int, required_str,
)


def parse_application(
    data: Any, *, source: str, fetched_at: float, ui_url: str | None = None,
    via: str = "ui", ctx: str = "application",
) -> SparkApp:
    """One entry of `/api/v1/applications` (or `/applications/{id}`): the latest attempt is used."""
    app = require_obj(data, source, ctx)
    app_id = required_str(app, "id", source, ctx)
    ctx = f"{ctx}[{app_id}]"
    name = optional_str(app, "name", source, ctx) or ""
    attempts = require_list(app.get("attempts") or [], source, f"{ctx}.attempts")
    att: dict = {}
    if attempts:
        # Spark lists attempts newest first.
        att = require_obj(attempts[0], source, f"{ctx}.attempts[0]")
    actx = f"{ctx}.attempts[0]"
    start = optional_time(att, "startTimeEpoch", source, actx) if "startTimeEpoch" in att \
        else optional_time(att, "startTime", source, actx)
    end = optional_time(att, "endTimeEpoch", source, actx) if "endTimeEpoch" in att \
        else optional_time(att, "endTime", source, actx)
    last = optional_time(att, "lastUpdatedEpoch", source, actx) if "lastUpdatedEpoch" in att \
        else optional_time(att, "lastUpdated", source, actx)
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
        spark_version=optional_str(att, "appSparkVersion", source, actx),
        completed=completed,
        fetched_at=fetched_at,
        user=optional_str(att, "sparkUser", source, actx),
        last_updated=last,
        discovered_via=via,
    )


def parse_applications(
    data: Any, *, source: str, fetched_at: float, ui_url: str | None = None, via: str = "ui",
) -> tuple[SparkApp, ...]:
    """`/api/v1/applications` -> apps. A driver UI lists exactly its own app; a History Server
    lists many (`ui_url` is then left None: the collector derives `/history/{id}` per app)."""
    items = require_list(data, source, "applications")
    return tuple(
        parse_application(item, source=source, fetched_at=fetched_at, ui_url=ui_url, via=via,
                          ctx=f"applications[{i}]")
        for i, item in enumerate(items)
    )


def parse_version(data: Any, *, source: str) -> str:
    """`/api/v1/version` -> "4.3.0"."""
    return required_str(require_obj(data, source, "version"), "spark", source, "version")



def parse_jobs(data: Any, *, source: str, fetched_at: float, filtered: bool = False) -> JobSummary:
    """`/applications/{id}/jobs[?status=...]` -> counts by status and the failed jobs.

    `filtered=True` means the request asked only for some statuses (running + failed), so the
    number of succeeded jobs is unknown (None) rather than 0.
    """
    jobs = require_list(data, source, "jobs")
    active = failed = succeeded = 0
    failed_jobs: list[FailedJob] = []
    for i, raw in enumerate(jobs):
        ctx = f"jobs[{i}]"
        job = require_obj(raw, source, ctx)
        job_id = required_int(job, "jobId", source, ctx)
        status = required_str(job, "status", source, ctx).upper()
        if status == "RUNNING":
            active += 1
        elif status == "SUCCEEDED":
            succeeded += 1
        elif status == "FAILED":
            failed += 1
            failed_jobs.append(FailedJob(
                job_id=job_id,
                name=optional_str(job, "name", source, ctx) or "",
                description=optional_str(job, "description", source, ctx),
                submission_time=optional_time(job, "submissionTime", source, ctx),
                completion_time=optional_time(job, "completionTime", source, ctx),
                failed_tasks=optional_int(job, "numFailedTasks", source, ctx, 0),
                failed_stages=optional_int(job, "numFailedStages", source, ctx, 0),
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
    stages = require_list(data, source, "stages")
    failed: list[FailedStage] = []
    failed_tasks = active = 0
    for i, raw in enumerate(stages):
        ctx = f"stages[{i}]"
        st = require_obj(raw, source, ctx)
        stage_id = required_int(st, "stageId", source, ctx)
        status = required_str(st, "status", source, ctx).upper()
        n_failed = optional_int(st, "numFailedTasks", source, ctx, 0)
        failed_tasks += n_failed
        if status == "ACTIVE":
            active += 1
        elif status == "FAILED":
            failed.append(FailedStage(
                stage_id=stage_id,
                attempt_id=optional_int(st, "attemptId", source, ctx, 0),
                name=optional_str(st, "name", source, ctx) or "",
                failure_reason=clip_error(optional_str(st, "failureReason", source, ctx)),
                failed_tasks=n_failed,
                submission_time=optional_time(st, "submissionTime", source, ctx),
                completion_time=optional_time(st, "completionTime", source, ctx),
            ))
    failed.sort(key=lambda s: (s.stage_id, s.attempt_id))
    return StageSummary(failed_stages=tuple(failed), failed_tasks=failed_tasks, active=active,
                        fetched_at=fetched_at)


def parse_executors(data: Any, *, source: str, fetched_at: float) -> tuple[Executor, ...]:
    """`/applications/{id}/executors` or `/allexecutors` (the latter includes dead ones)."""
    items = require_list(data, source, "executors")
    out = []
    for i, raw in enumerate(items):
        ctx = f"executors[{i}]"
        ex = require_obj(raw, source, ctx)
        ex_id = ex.get("id")
        if ex_id is None or ex_id == "":
            raise SparkParseError(source, f"{ctx}: missing 'id'")
        peak = ex.get("peakMemoryMetrics")
        peak_heap = None
        if isinstance(peak, dict):
            peak_heap = optional_int(peak, "JVMHeapMemory", source, f"{ctx}.peakMemoryMetrics")
        active = ex.get("isActive", True)
        if not isinstance(active, bool):
            raise SparkParseError(source, f"{ctx}.isActive: expected true/false, got {active!r}")
        out.append(Executor(
            id=str(ex_id),
            host_port=optional_str(ex, "hostPort", source, ctx),
            active=active,
            memory_used_bytes=optional_int(ex, "memoryUsed", source, ctx, 0),
            max_memory_bytes=optional_int(ex, "maxMemory", source, ctx, 0),
            disk_used_bytes=optional_int(ex, "diskUsed", source, ctx, 0),
            total_gc_time_ms=optional_int(ex, "totalGCTime", source, ctx, 0),
            failed_tasks=optional_int(ex, "failedTasks", source, ctx, 0),
            active_tasks=optional_int(ex, "activeTasks", source, ctx, 0),
            completed_tasks=optional_int(ex, "completedTasks", source, ctx, 0),
            total_tasks=optional_int(ex, "totalTasks", source, ctx, 0),
            total_cores=optional_int(ex, "totalCores", source, ctx, 0),
            max_tasks=optional_int(ex, "maxTasks", source, ctx, 0),
            total_duration_ms=optional_int(ex, "totalDuration", source, ctx, 0),
            fetched_at=fetched_at,
            add_time=optional_time(ex, "addTime", source, ctx),
            remove_time=optional_time(ex, "removeTime", source, ctx),
            remove_reason=optional_str(ex, "removeReason", source, ctx),
            peak_jvm_heap_bytes=peak_heap,
            excluded=bool(ex.get("isExcluded", ex.get("isBlacklisted", False))),
        ))
    return tuple(out)
