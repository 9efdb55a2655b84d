"""Merging what several sources said about the queries of one app (pure), and the trigger
interval estimated from batch start times."""
from __future__ import annotations

from dataclasses import replace
from typing import Iterable

from collectors.spark.models import BatchProgress, QueryGauges, QueryState, StreamingQuery
from collectors.spark.parse.ui import UiQueryRow


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
