"""Progress JSON: the StreamingQueryListener's events (`query.lastProgress`, `recentProgress`,
`progress.json`, the streamscope listener's envelopes)."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping

from collectors.spark.models import (
    BatchProgress, PartitionOffset, SourceProgress, StateOperatorProgress, TriggerDurations,
)
from collectors.spark.parse.common import (
    SparkParseError, clip_error, decode_json, optional_float, optional_int, optional_str, optional_time,
    require_list, require_obj, required_int, required_str,
)
from collectors.spark.sinks import valid_topics


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
    p = require_obj(data, source, "progress")
    ctx = "progress"
    qid = required_str(p, "id", source, ctx).lower()
    run = required_str(p, "runId", source, ctx).lower()
    name = optional_str(p, "name", source, ctx) or None
    batch_id = required_int(p, "batchId", source, ctx)
    ctx = f"progress[{name or qid} batch {batch_id}]"

    durations = None
    dm = p.get("durationMs")
    if dm is not None:
        dm = require_obj(dm, source, f"{ctx}.durationMs")
        known, other = {}, []
        for k in dm:
            v = optional_int(dm, k, source, f"{ctx}.durationMs")
            if v is None:
                continue
            if k in _DURATION_FIELDS:
                known[_DURATION_FIELDS[k]] = v
            else:
                other.append((k, v))
        durations = TriggerDurations(other=tuple(sorted(other)), **known)

    et = require_obj(p.get("eventTime") or {}, source, f"{ctx}.eventTime")
    watermark = optional_time(et, "watermark", source, f"{ctx}.eventTime")
    if watermark == 0.0:
        watermark = None  # "1970-01-01T00:00:00.000Z": no watermark yet

    ops = []
    for i, raw in enumerate(require_list(p.get("stateOperators") or [], source, f"{ctx}.stateOperators")):
        octx = f"{ctx}.stateOperators[{i}]"
        op = require_obj(raw, source, octx)
        ops.append(StateOperatorProgress(
            operator_name=optional_str(op, "operatorName", source, octx) or "",
            num_rows_total=optional_int(op, "numRowsTotal", source, octx, 0),
            num_rows_updated=optional_int(op, "numRowsUpdated", source, octx, 0),
            memory_used_bytes=optional_int(op, "memoryUsedBytes", source, octx, 0),
            num_rows_dropped_by_watermark=optional_int(op, "numRowsDroppedByWatermark", source, octx, 0),
        ))

    sources = []
    for i, raw in enumerate(require_list(p.get("sources") or [], source, f"{ctx}.sources")):
        sctx = f"{ctx}.sources[{i}]"
        s = require_obj(raw, source, sctx)
        start_raw, start = _offsets(s.get("startOffset"))
        end_raw, end = _offsets(s.get("endOffset"))
        latest_raw, latest = _offsets(s.get("latestOffset"))
        metrics = s.get("metrics")
        metrics = require_obj(metrics, source, f"{sctx}.metrics") if metrics is not None else {}
        sources.append(SourceProgress(
            description=optional_str(s, "description", source, sctx) or "",
            start_offset=start_raw, end_offset=end_raw, latest_offset=latest_raw,
            start_offsets=start, end_offsets=end, latest_offsets=latest,
            num_input_rows=optional_int(s, "numInputRows", source, sctx),
            input_rows_per_second=optional_float(s, "inputRowsPerSecond", source, sctx),
            processed_rows_per_second=optional_float(s, "processedRowsPerSecond", source, sctx),
            min_offsets_behind_latest=optional_float(metrics, "minOffsetsBehindLatest", source, f"{sctx}.metrics"),
            avg_offsets_behind_latest=optional_float(metrics, "avgOffsetsBehindLatest", source, f"{sctx}.metrics"),
            max_offsets_behind_latest=optional_float(metrics, "maxOffsetsBehindLatest", source, f"{sctx}.metrics"),
        ))

    sink = p.get("sink")
    sink = require_obj(sink, source, f"{ctx}.sink") if sink is not None else {}
    duration = optional_int(p, "batchDuration", source, ctx)
    if duration is None and durations is not None:
        duration = durations.trigger_execution_ms
    batch = BatchProgress(
        batch_id=batch_id,
        run_id=run,
        origin="listener",
        received_at=received_at,
        timestamp=optional_time(p, "timestamp", source, ctx),
        duration_ms=duration,
        durations=durations,
        num_input_rows=optional_int(p, "numInputRows", source, ctx),
        input_rows_per_second=optional_float(p, "inputRowsPerSecond", source, ctx),
        processed_rows_per_second=optional_float(p, "processedRowsPerSecond", source, ctx),
        watermark=watermark,
        event_time_min=optional_time(et, "min", source, f"{ctx}.eventTime"),
        event_time_avg=optional_time(et, "avg", source, f"{ctx}.eventTime"),
        event_time_max=optional_time(et, "max", source, f"{ctx}.eventTime"),
        state_operators=tuple(ops),
        sources=tuple(sources),
        sink_description=optional_str(sink, "description", source, f"{ctx}.sink"),
        sink_output_rows=optional_int(sink, "numOutputRows", source, f"{ctx}.sink"),
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
    obj = require_obj(data, source, "progress event")
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
        payload = require_obj(payload, source, f"{kind} event payload")
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
    qid = required_str(payload, "id", source, ctx).lower()
    run = optional_str(payload, "runId", source, ctx)
    exc = payload.get("exception")
    return ProgressEvent(
        kind=kind, query_id=qid, run_id=run.lower() if run else None,
        name=optional_str(payload, "name", source, ctx) or (env_name if isinstance(env_name, str) and
                                                     env_name else None),
        received_at=received_at,
        timestamp=optional_time(payload, "timestamp", source, ctx),
        app_id=app_id, app_name=app_name,
        exception=clip_error(str(exc)) if exc not in (None, "") else None,
        error_class=optional_str(payload, "errorClassOnException", source, ctx),
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
    items = require_list(data, source, "progress objects")
    return tuple(parse_progress_event(item, source=f"{source}[{i}]", received_at=received_at)
                 for i, item in enumerate(items))
