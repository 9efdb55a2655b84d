"""`/api/v1/applications/{id}/sql?details=false`: one execution (or more) per micro-batch, named
by the batch description."""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from collectors.spark.models import BatchProgress, QueryState, StreamingQuery
from collectors.spark.parse.common import (
    UUID_PATTERN, clip_error, is_interruption, optional_int, optional_str, optional_time, require_list,
    require_obj,
)


@dataclass(frozen=True, slots=True)
class BatchDescription:
    """What a micro-batch's job description says: `<name>\\nid = <id>\\nrunId = <run>\\nbatch = N`."""

    name: str | None  # None for unnamed queries
    query_id: str
    run_id: str
    batch_id: int | None  # None for "batch = init" (work before the first batch)


_DESC_RE = re.compile(
    r"(?:^|\n)[ \t]*id[ \t]*=[ \t]*(?P<id>" + UUID_PATTERN + r")[ \t]*\r?\n"
    r"[ \t]*runId[ \t]*=[ \t]*(?P<run>" + UUID_PATTERN + r")[ \t]*\r?\n"
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
    items = require_list(data, source, "SQL executions")
    # (query, run, batch) -> [start_ms, end_ms, statuses, error]
    groups: dict[tuple[str, str, int], list] = {}
    names: dict[str, str | None] = {}
    for i, raw in enumerate(items):
        ctx = f"sql[{i}]"
        ex = require_obj(raw, source, ctx)
        desc = parse_batch_description(ex.get("description"))
        if desc is None or desc.batch_id is None:
            continue
        sub = optional_time(ex, "submissionTime", source, ctx)
        if sub is None:
            continue
        start_ms = round(sub * 1000)
        duration = optional_int(ex, "duration", source, ctx, 0) or 0
        status = (optional_str(ex, "status", source, ctx) or "UNKNOWN").upper()
        err = optional_str(ex, "errorMessage", source, ctx) or None
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
