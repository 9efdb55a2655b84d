"""DStream apps: `/streaming/statistics`, `/streaming/batches`, `/streaming/receivers`."""
from __future__ import annotations

from typing import Any

from collectors.spark.models import DStreamBatch, DStreamReceiver, DStreamStats
from collectors.spark.parse.common import (
    SparkParseError, optional_float, optional_int, optional_str, optional_time, require_list, require_obj,
    required_int,
)


def is_not_dstream_response(http_status: int | None, body: str | None = None) -> bool:
    """A 404 from `/streaming/*` means "this app has no StreamingContext" (Structured Streaming
    apps, History Server apps): not an error. Spark answers "no streaming listener attached to
    <app>" (driver) or a plain 404."""
    return http_status == 404


def parse_streaming_statistics(data: Any, *, source: str, fetched_at: float) -> DStreamStats:
    st = require_obj(data, source, "streaming statistics")
    ctx = "statistics"
    if "batchDuration" not in st:
        raise SparkParseError(source, f"{ctx}: missing 'batchDuration'")
    return DStreamStats(
        start_time=optional_time(st, "startTime", source, ctx),
        batch_duration_ms=required_int(st, "batchDuration", source, ctx),
        num_receivers=optional_int(st, "numReceivers", source, ctx, 0),
        num_active_receivers=optional_int(st, "numActiveReceivers", source, ctx, 0),
        num_inactive_receivers=optional_int(st, "numInactiveReceivers", source, ctx, 0),
        total_completed_batches=optional_int(st, "numTotalCompletedBatches", source, ctx, 0),
        retained_completed_batches=optional_int(st, "numRetainedCompletedBatches", source, ctx, 0),
        active_batches=optional_int(st, "numActiveBatches", source, ctx, 0),
        processed_records=optional_int(st, "numProcessedRecords", source, ctx, 0),
        received_records=optional_int(st, "numReceivedRecords", source, ctx, 0),
        avg_input_rate=optional_float(st, "avgInputRate", source, ctx),
        avg_scheduling_delay_ms=optional_float(st, "avgSchedulingDelay", source, ctx),
        avg_processing_time_ms=optional_float(st, "avgProcessingTime", source, ctx),
        avg_total_delay_ms=optional_float(st, "avgTotalDelay", source, ctx),
        fetched_at=fetched_at,
    )


def parse_streaming_batches(data: Any, *, source: str) -> tuple[DStreamBatch, ...]:
    items = require_list(data, source, "streaming batches")
    out = []
    for i, raw in enumerate(items):
        ctx = f"batches[{i}]"
        b = require_obj(raw, source, ctx)
        out.append(DStreamBatch(
            batch_id=required_int(b, "batchId", source, ctx),
            batch_time=optional_time(b, "batchTime", source, ctx),
            status=(optional_str(b, "status", source, ctx) or "UNKNOWN").upper(),
            input_size=optional_int(b, "inputSize", source, ctx, 0),
            scheduling_delay_ms=optional_int(b, "schedulingDelay", source, ctx),
            processing_time_ms=optional_int(b, "processingTime", source, ctx),
            total_delay_ms=optional_int(b, "totalDelay", source, ctx),
            num_active_output_ops=optional_int(b, "numActiveOutputOps", source, ctx, 0),
            num_completed_output_ops=optional_int(b, "numCompletedOutputOps", source, ctx, 0),
            num_failed_output_ops=optional_int(b, "numFailedOutputOps", source, ctx, 0),
            num_total_output_ops=optional_int(b, "numTotalOutputOps", source, ctx, 0),
            first_failure_reason=optional_str(b, "firstFailureReason", source, ctx),
        ))
    out.sort(key=lambda b: b.batch_id, reverse=True)
    return tuple(out)


def parse_streaming_receivers(data: Any, *, source: str) -> tuple[DStreamReceiver, ...]:
    items = require_list(data, source, "streaming receivers")
    out = []
    for i, raw in enumerate(items):
        ctx = f"receivers[{i}]"
        r = require_obj(raw, source, ctx)
        active = r.get("isActive")
        out.append(DStreamReceiver(
            stream_id=required_int(r, "streamId", source, ctx),
            name=optional_str(r, "streamName", source, ctx) or "",
            active=active if isinstance(active, bool) else None,
            executor_id=optional_str(r, "executorId", source, ctx),
            executor_host=optional_str(r, "executorHost", source, ctx),
            avg_event_rate=optional_float(r, "avgEventRate", source, ctx),
            last_error=optional_str(r, "lastError", source, ctx) or optional_str(r, "lastErrorMessage", source, ctx),
            last_error_time=optional_time(r, "lastErrorTime", source, ctx),
        ))
    out.sort(key=lambda r: r.stream_id)
    return tuple(out)
